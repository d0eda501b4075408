// One stream-mode message through a real gateway: a predict that ran but found every model
// queue full (OVERLOADED) is the gateway's state, not the message's, so it is tried again
// with backoff, never answered as a failure nor dead-lettered; at shutdown it is given up,
// left uncommitted for the next start. A fault of the gateway's own while it starts a
// message's predict (not a GatewayError) is dead-lettered INTERNAL: the message is not at fault.
// A value is read as a native REST body is (src/api/json-bytes.ts), and refused in the same terms.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Msg } from '../../../src/api/kafka/intake.ts'
import { MessageScoring } from '../../../src/api/kafka/scoring.ts'
import type { AnswerSender } from '../../../src/api/kafka/sender.ts'
import { Gateway } from '../../../src/gateway.ts'
import { configFrom } from '../../helpers.ts'
import { inferences } from '../../starter/scripted.ts'

let gateway: Gateway | undefined
afterEach(async () => gateway?.close())

/** A loaded gateway on `yaml` and a scoring whose sender records what it sends (`closing`: whether a shutdown began). */
async function scoringOn(yaml: string, closing: () => boolean = () => false): Promise<{ g: Gateway; scoring: MessageScoring; sent: string[] }> {
  const g = (gateway = new Gateway(configFrom(yaml)))
  await g.load()
  const sent: string[] = []
  const sender = { answer: async (_m: Msg, answer: string) => sent.push(`answer ${answer}`) > 0, deadLetter: async (_m: Msg, code: string, message: string) => sent.push(`dead letter ${code}: ${message}`) > 0 } as unknown as AnswerSender
  return { g, scoring: new MessageScoring(g, sender, 1_000_000, closing), sent }
}

describe('a stream message whose predict finds every model queue full', () => {
  it('is tried again with backoff, not answered or dead-lettered, and given up (uncommitted) at shutdown', async () => {
    let closing = false
    const { scoring, sent } = await scoringOn('models:\n  busy: { kind: scripted, fail: queue full, fail_code: OVERLOADED }\nensembles:\n  e: { strategy: deadline-fallback, models: [busy] }\n', () => closing)
    let tries = 0
    let onInfer!: (name: string) => void
    const third = new Promise<void>((resolve) => (onInfer = (name) => void (name === 'busy' && ++tries === 3 && resolve())))
    inferences.on('infer', onInfer)
    const scored = scoring.score({ key: Buffer.from('k'), value: Buffer.from(JSON.stringify({ ensemble: 'e', inputs: { x: [[0.5, 0.5]] } })) } as Msg)
    await third
    inferences.off('infer', onInfer)
    closing = true
    expect(await scored).toBe(false)
    expect(sent).toEqual([])
  })
})

describe('a stream message whose predict fails to start for a fault of the gateway\'s own', () => {
  it('is dead-lettered INTERNAL with the fault\'s message, not BAD_REQUEST (kept for a message that is at fault, e.g. not JSON)', async () => {
    const { g, scoring, sent } = await scoringOn('models:\n  m: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n')
    // The request reads fine; starting its predict meets a bug of the gateway's (a TypeError, no GatewayError).
    vi.spyOn(g, 'start').mockImplementation(() => {
      throw new TypeError("Cannot read properties of undefined (reading 'queue')")
    })
    expect(await scoring.score({ key: Buffer.from('k'), value: Buffer.from(JSON.stringify({ ensemble: 'e', inputs: { x: [[0.5, 0.5]] } })) } as Msg)).toBe(true)
    expect(await scoring.score({ key: Buffer.from('k'), value: Buffer.from('not JSON') } as Msg)).toBe(true)
    expect(sent).toEqual(["dead letter INTERNAL: Cannot read properties of undefined (reading 'queue')", expect.stringMatching(/^dead letter BAD_REQUEST: message value is not JSON/)])
  })
})

describe('a stream message whose value is not UTF-8', () => {
  it('is dead-lettered BAD_REQUEST, as a REST body is refused, not scored with U+FFFD in its bytes\' place', async () => {
    const { scoring, sent } = await scoringOn('models:\n  t: { kind: scripted, input: { name: text, datatype: BYTES, shape: [-1] } }\nensembles:\n  e: { strategy: deadline-fallback, models: [t] }\n')
    // A BYTES input whose text holds a byte that is no UTF-8 (0xff).
    const value = Buffer.concat([Buffer.from('{"ensemble":"e","inputs":{"text":["caf'), Buffer.from([0xff]), Buffer.from('"]}}')])
    expect(await scoring.score({ key: Buffer.from('k'), value } as Msg)).toBe(true)
    expect(sent).toEqual(['dead letter BAD_REQUEST: message value is not JSON: its bytes are not UTF-8'])
  })
})

describe('a stream message\'s value, read as a native REST body is', () => {
  it('is scored past a byte order mark, and dead-lettered BAD_REQUEST when it holds a key that could reach a prototype, or is empty, saying which', async () => {
    const { scoring, sent } = await scoringOn('models:\n  m: { kind: scripted }\nensembles:\n  e: { strategy: deadline-fallback, models: [m] }\n')
    const body = JSON.stringify({ ensemble: 'e', inputs: { x: [[0.5, 0.5]] } })
    for (const value of [`\ufeff${body}`, '{"ensemble":"e","inputs":{"__proto__":[1],"x":[[0.5,0.5]]}}', '', null]) {
      expect(await scoring.score({ key: Buffer.from('k'), value: value === null ? null : Buffer.from(value) } as Msg)).toBe(true)
    }
    expect(sent).toEqual([
      expect.stringMatching(/^answer \{/),
      'dead letter BAD_REQUEST: message value holds the key "__proto__", refused: it could reach an object\'s prototype',
      'dead letter BAD_REQUEST: message value is empty: expected a JSON predict request',
      'dead letter BAD_REQUEST: message value is empty: expected a JSON predict request',
    ])
  })
})
