// The examples gate checks something: every example names the outputs it expects, and the
// file holds at least one example. A key misspelt (`output`) or an empty file is refused
// with its file and line, never passed as "0 of 0" or "every output listed matched".
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Executor, InferContext } from '../../src/executors/types.ts'
import { runGate } from '../../src/registry/gate.ts'
import type { Tensor, TensorMap } from '../../src/tensor/index.ts'
import { tempDir } from '../temp-dirs.ts'

/** A model that doubles its one input: `y` = 2 × `x`. */
const doubler: Executor = {
  name: 'doubler',
  kind: 'fake',
  metadata: () => ({ name: 'doubler', version: '1', kind: 'fake', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] }),
  load: async () => undefined,
  infer: async (inputs: TensorMap): Promise<TensorMap> => {
    const x = inputs.x as Tensor
    return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data as Float32Array, (v) => v * 2) } }
  },
  close: async () => undefined,
}

let dir: string
beforeEach(() => {
  dir = tempDir('specserve-gate-')
})

function examplesFile(lines: readonly string[]): string {
  const file = join(dir, 'examples.jsonl')
  writeFileSync(file, lines.join('\n'))
  return file
}

const gate = (file: string): ReturnType<typeof runGate> => runGate(doubler, { examples: file, dataset: undefined })

describe('the examples gate', () => {
  it('passes examples whose expected outputs match, and fails one that does not', async () => {
    const good = '{"inputs": {"x": [[1, 2]]}, "outputs": {"y": [[2, 4]]}}'
    expect(await gate(examplesFile([good, good]))).toEqual({ passed: true, reason: null, examples: { passed: 2, total: 2 }, dataset: null })
    const wrong = '{"inputs": {"x": [[1, 2]]}, "outputs": {"y": [[2, 5]]}}'
    expect(await gate(examplesFile([good, wrong]))).toMatchObject({ passed: false, reason: 'example 2, output "y": element 1 is 4, expected 5' })
  })

  it('refuses an example with no expected outputs (a misspelt key), naming the file and line', async () => {
    const file = examplesFile(['{"inputs": {"x": [[1, 2]]}, "outputs": {"y": [[2, 4]]}}', '', '{"inputs": {"x": [[3, 4]]}, "output": {"y": [[6, 8]]}}'])
    const report = await gate(file)
    expect(report.passed).toBe(false)
    expect(report.reason).toBe(`example 2 (${file} line 3): no expected "outputs" to compare, so it would check nothing (its keys: inputs, output)`)
  })

  it('refuses an example whose outputs are empty', async () => {
    const file = examplesFile(['{"inputs": {"x": [[1, 2]]}, "outputs": {}}'])
    expect(await gate(file)).toMatchObject({ passed: false, reason: `example 1 (${file} line 1): no expected "outputs" to compare, so it would check nothing (its keys: inputs, outputs)` })
  })

  it('refuses an examples file with no examples (empty, or blank lines only), naming the file', async () => {
    for (const lines of [[], ['', '  ', '']]) {
      const file = examplesFile(lines)
      expect(await gate(file)).toEqual({
        passed: false,
        reason: `examples ${file}: no examples, so nothing would be checked (one JSON object per line, with "inputs" and expected "outputs")`,
        examples: null,
        dataset: null,
      })
    }
  })

  it('names the file and line of a line that is not a JSON object', async () => {
    const file = examplesFile(['{"inputs": {"x": [[1, 2]]}, "outputs": {"y": [[2, 4]]}}', '[1, 2]', '{"inputs":'])
    expect(await gate(file)).toMatchObject({ passed: false, reason: `example 2 (${file} line 2): not a JSON object` })
    const broken = examplesFile(['{"inputs":'])
    expect(await gate(broken)).toMatchObject({ passed: false, reason: `example 1 (${broken} line 1): not JSON` })
  })
})

describe('a gate run', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('that never answers fails the gate after 10 s, its run told to stop (a model that hangs is rejected, not waited for)', async () => {
    const seen: InferContext[] = []
    const hung: Executor = { ...doubler, infer: (_inputs, ctx) => (seen.push(ctx), new Promise<TensorMap>(() => undefined)) }
    let report: Awaited<ReturnType<typeof runGate>> | undefined
    void runGate(hung, { examples: examplesFile(['{"inputs": {"x": [[1, 2]]}, "outputs": {"y": [[2, 4]]}}']), dataset: undefined }).then((r) => (report = r))
    await vi.advanceTimersByTimeAsync(9_999)
    expect(report).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(report).toMatchObject({ passed: false, reason: 'example 1: the model failed: no answer within 10 s' })
    expect([seen[0]!.signal.aborted, seen[0]!.over]).toEqual([true, true])
  })
})
