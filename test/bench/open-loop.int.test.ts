// The bench's open-loop load client (bench/load/open-loop.ts, as the bench runs it: a child
// process) against a gateway that answers every request with a fast 500: every request
// is a deadline miss, by the client's clock and by the gateway's.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LoadResult } from '../../bench/lib/types.ts'
import { root } from '../helpers.ts'

let server: Server
let url: string

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.statusCode = 500
      res.setHeader('content-type', 'application/json')
      res.end('{"error":{"code":"INTERNAL","message":"broken"}}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/ensembles/slow-onnx/predict`
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('bench/load/open-loop.ts', () => {
  it('counts a fast 500 as a deadline miss, by both clocks', async () => {
    const spec = { url, body: '{}', rate: 100, connections: 4, durationS: 1, warmupS: 0, missAfterMs: 22, readBodies: true }
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'bench', 'load', 'open-loop.ts'), JSON.stringify(spec)])
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult
    expect(result.statuses).toEqual({ 500: 100 })
    expect(result.missRate).toBe(1)
    expect(result.serverMissRate).toBe(1)
  })
})
