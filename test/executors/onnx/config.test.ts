// The `kind: onnx` entry's fields as parseOnnxEntry reads them: defaults that depend on other
// fields, and combinations refused at the line that says them.
import { describe, expect, it } from 'vitest'
import type { OnnxSpec } from '../../../src/executors/onnx/config.ts'
import { configFrom, issuesOf } from '../../helpers.ts'

const entry = (fields: string): string => `models:
  m:
    kind: onnx
    path: ../models/cancer_logreg.onnx
${fields}ensembles:
  e: { strategy: deadline-fallback, models: [m] }
`
const specOf = (fields: string): OnnxSpec => configFrom(entry(fields)).models.get('m')!.spec as OnnxSpec

describe('onnx entry: placement', () => {
  it('is auto by default, and worker for a model with dedicated_workers', () => {
    expect(specOf('').placement).toBe('auto')
    expect(specOf('    dedicated_workers: 1\n')).toMatchObject({ placement: 'worker', dedicatedWorkers: 1 })
    expect(specOf('    dedicated_workers: 2\n    placement: worker\n')).toMatchObject({ placement: 'worker', dedicatedWorkers: 2 })
  })

  it.each([
    ['inline', 'a model pinned inline uses no workers: drop dedicated_workers'],
    ['auto', 'dedicated_workers runs the model in workers of its own; auto would run it on the event loop whenever its warm-up (on zeros) is quick, its workers idle: leave placement out, or say worker'],
  ])('refuses placement %s beside dedicated_workers, at the placement line', (placement, message) => {
    expect(issuesOf(entry(`    dedicated_workers: 1\n    placement: ${placement}\n`))).toEqual([{ path: 'models.m.placement', line: 6, col: 16, message }])
  })
})
