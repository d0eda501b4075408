// The inline lane runs a burst handed over in one turn all in that turn, unless an HTTP/2
// answer waits for the turn to end (src/unsent-answers.ts): then it lets the event loop turn
// every RUNS_PER_TURN runs, so the answers made so far are sent while it runs the rest.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../../src/errors.ts'
import { RUNS_PER_TURN } from '../../../src/executors/onnx/inline-lane.ts'
import { InlineModel } from '../../../src/executors/onnx/inline.ts'
import type { InferContext } from '../../../src/executors/types.ts'
import { tensorFromJson } from '../../../src/tensor/index.ts'
import { unsentAnswers } from '../../../src/unsent-answers.ts'
import { root, samples } from '../../helpers.ts'

const input = { input: tensorFromJson(samples('cancer').rows.slice(0, 1), { name: 'input', datatype: 'FP32', shape: [-1, 30] }, inputFailure) }
const needed = (): InferContext => ({ signal: new AbortController().signal, over: false, member: 0, spareable: false, deadline: performance.now() + 60_000 })

describe('the inline lane\'s turns', () => {
  let model: InlineModel
  beforeAll(async () => {
    model = await InlineModel.open(join(root, 'models', 'cancer_logreg.onnx'), () => undefined)
  })
  afterAll(async () => model?.close())

  /**
   * Hands 32 runs over at once (a burst read in one turn), each answer written as `answer`
   * says, then queues a callback for the loop's next check phase: how many runs had answered
   * when it ran, and the order of everything.
   */
  async function burst(answer: () => void): Promise<{ answeredBeforeNextTurn: number; answered: number }> {
    let answered = 0
    const runs = Array.from({ length: 32 }, () =>
      model.run(input, needed()).then(() => {
        answered++
        answer()
      }),
    )
    const answeredBeforeNextTurn = await new Promise<number>((resolve) => setImmediate(() => resolve(answered)))
    await Promise.all(runs)
    return { answeredBeforeNextTurn, answered }
  }

  it('runs a burst in one turn while no answer waits to be sent (HTTP/1 writes at once)', async () => {
    const { answeredBeforeNextTurn, answered } = await burst(() => undefined)
    expect(answered).toBe(32)
    expect(answeredBeforeNextTurn).toBe(32)
  })

  it('lets the loop turn after RUNS_PER_TURN runs while an HTTP/2 answer waits, and still runs the whole burst', async () => {
    const { answeredBeforeNextTurn, answered } = await burst(() => (unsentAnswers.waiting = true))
    expect(answered).toBe(32)
    expect(answeredBeforeNextTurn).toBe(RUNS_PER_TURN)
    // The lane's next turn found the answers sent: nothing waits once the burst is over and no answer came since.
    await new Promise((resolve) => setImmediate(resolve))
    expect(unsentAnswers.waiting).toBe(false)
  })
})
