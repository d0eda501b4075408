// The inline lane runs a burst handed over in one turn all in that turn, unless an HTTP/2
// answer waits to be sent (src/unsent-answers.ts): then RUNS_PER_TURN run per turn, the rest
// at the next turns, in the order they were handed over (src/executors/onnx/inline-turns.ts).
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../../src/errors.ts'
import { RUNS_PER_TURN } from '../../../src/executors/onnx/inline-turns.ts'
import { InlineModel } from '../../../src/executors/onnx/inline.ts'
import type { InferContext } from '../../../src/executors/types.ts'
import { tensorFromJson } from '../../../src/tensor/index.ts'
import { answerWritten, unsentAnswers } from '../../../src/unsent-answers.ts'
import { root, samples } from '../../helpers.ts'

const input = { input: tensorFromJson(samples('cancer').rows.slice(0, 1), { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }
const needed = (): InferContext => ({ signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: performance.now() + 60_000 })
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('the inline lane\'s turns', () => {
  let model: InlineModel
  beforeAll(async () => {
    model = await InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined)
  })
  afterAll(async () => model?.close())

  /**
   * Hands `n` runs over at once (a burst read in one turn), each answer written as `answer`
   * says: the order they answered in (by hand-over index), and how many had answered when a
   * callback queued behind them ran (the loop's next check phase).
   */
  async function burst(n: number, answer: () => void): Promise<{ order: number[]; beforeNextTurn: number }> {
    const order: number[] = []
    const runs = Array.from({ length: n }, (_, i) =>
      model.run(input, needed()).then(() => {
        order.push(i)
        answer()
      }),
    )
    const beforeNextTurn = await new Promise<number>((resolve) => setImmediate(() => resolve(order.length)))
    await Promise.all(runs)
    await nextTurn()
    return { order, beforeNextTurn }
  }
  const handOverOrder = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

  it('runs a burst in one turn while no answer waits to be sent (HTTP/1 writes at once)', async () => {
    const { order, beforeNextTurn } = await burst(32, () => undefined)
    expect(order).toEqual(handOverOrder(32))
    expect(beforeNextTurn).toBe(32)
  })

  it('lets the loop turn after RUNS_PER_TURN runs while an HTTP/2 answer waits, and still runs the whole burst in order', async () => {
    const { order, beforeNextTurn } = await burst(32, answerWritten)
    expect(beforeNextTurn).toBe(RUNS_PER_TURN)
    expect(order).toEqual(handOverOrder(32))
    // Nothing waits once the loop has turned with no answer written since.
    expect(unsentAnswers.waiting).toBe(false)
  })

  it('keeps the hand-over order past the lane\'s depth: runs started as others end queue behind those waiting for a turn', async () => {
    const { order } = await burst(96, answerWritten)
    expect(order).toEqual(handOverOrder(96))
  })

  it('drops a waiting run whose request was decided meanwhile when it comes up, without counting it in the turn', async () => {
    const n = 2 * RUNS_PER_TURN + 1
    const contexts = Array.from({ length: n }, () => ({ ...needed(), over: false }))
    let answered = 0
    const runs = contexts.map((ctx) =>
      model.run(input, ctx).then(() => {
        answered++
        answerWritten()
      }),
    )
    // Its refusal is awaited from the start: it comes during the turns below.
    const refused = expect(runs[RUNS_PER_TURN]!).rejects.toThrow('the request was decided before this run started')
    // After the first turn RUNS_PER_TURN have answered and the rest wait; the first of those is decided then.
    const [afterFirst, afterSecond] = await new Promise<[number, number]>((resolve) =>
      setImmediate(() => {
        const first = answered
        contexts[RUNS_PER_TURN]!.over = true
        setImmediate(() => resolve([first, answered]))
      }),
    )
    expect(afterFirst).toBe(RUNS_PER_TURN)
    // The second turn dropped it and ran the other RUNS_PER_TURN: counted, it would have left the last for a third turn.
    expect(afterSecond).toBe(n - 1)
    await refused
    await Promise.all(runs.filter((_, i) => i !== RUNS_PER_TURN))
  })
})
