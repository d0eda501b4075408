// One stream-mode message through a real gateway: a predict that ran but found every model
// queue full (OVERLOADED) is the gateway's state, not the message's, so it is tried again
// with backoff, never answered as a failure nor dead-lettered; at shutdown it is given up,
// left uncommitted for the next start.
import { afterEach, describe, expect, it } from 'vitest'
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { MessageScoring } from '../../../src/api/kafka/scoring.ts'
import type { AnswerSender } from '../../../src/api/kafka/sender.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import { inferences } from '../../starter/scripted.ts'

let gateway: Gateway | undefined
afterEach(async () => gateway?.close())

describe('a stream message whose predict finds every model queue full', () => {
  it('is tried again with backoff, not answered or dead-lettered, and given up (uncommitted) at shutdown', async () => {
    gateway = new Gateway(configFrom('models:\n  busy: { kind: scripted, fail: queue full, fail_code: OVERLOADED }\nensembles:\n  e: { strategy: deadline-fallback, models: [busy] }\n'))
    await gateway.load()
    const sent: string[] = []
    const sender = { answer: async (_m: Msg, answer: string) => sent.push(`answer ${answer}`) > 0, deadLetter: async (_m: Msg, code: string) => sent.push(`dead letter ${code}`) > 0 } as unknown as AnswerSender
    let closing = false
    const scoring = new MessageScoring(gateway, sender, 1_000_000, () => closing)
    let tries = 0
    let onInfer!: (name: string) => void
    const third = new Promise<void>((resolve) => (onInfer = (name) => void (name === 'busy' && ++tries === 3 && resolve())))
    inferences.on('infer', onInfer)
    const scored = scoring.score({ key: 'k', value: JSON.stringify({ ensemble: 'e', inputs: { x: [[0.5, 0.5]] } }) } as Msg)
    await third
    inferences.off('infer', onInfer)
    closing = true
    expect(await scored).toBe(false)
    expect(sent).toEqual([])
  })
})
