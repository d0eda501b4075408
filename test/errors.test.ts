import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ErrorCatalogue, GrpcStatus, ModelErrorCode } from '../src/errors.ts'
import { root } from './helpers.ts'

const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8')
const grpcName = (n: number): string => Object.entries(GrpcStatus).find(([, v]) => v === n)?.[0] ?? String(n)

/** Rows of the markdown table under a heading: cells without the backticks. */
function table(heading: string): string[][] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(heading)) ?? ''
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')))
}

describe('docs/errors.md and src/errors.ts', () => {
  it('list the same request errors with the same HTTP and gRPC statuses', () => {
    const documented = table('Request errors').map(([code, http, grpc]) => [code, Number(http), grpc])
    const defined = Object.entries(ErrorCatalogue).map(([code, e]) => [code, e.http, grpcName(e.grpc)])
    expect(documented).toEqual(defined)
  })

  it('list the same model error codes', () => {
    const documented = table('Model errors').map(([code]) => code)
    expect(documented.sort()).toEqual(Object.values(ModelErrorCode).sort())
  })
})
