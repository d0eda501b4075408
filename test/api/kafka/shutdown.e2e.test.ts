// Stream mode shutting down, on a real broker, in process: a predict still running when
// the grace period is over is cancelled (its model aborted, the result CANCELLED and
// counted), its message is neither answered nor committed, and the next member of the
// group scores it; a message of another partition answered as the grace ends is committed.
import { Producer, stringSerializers } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStream } from '../../../src/api/kafka/index.ts'
import { Gateway } from '../../../src/gateway.ts'
import { silentLogger, type PredictResult } from '../../../src/types.ts'
import { configFrom } from '../../helpers.ts'
import { committedOffsets, consumeUntil, createTopic, startBroker, type Broker } from '../../output/broker.ts'
import { eventually } from '../../output/serve.ts'
import { inferences, signals } from '../../starter/scripted.ts'
import { closeGate, openGate } from './gated.ts'

const INPUT = 'specserve.shutdown.requests'
const GROUP = 'specserve-shutdown-test'

let broker: Broker
beforeAll(async () => {
  broker = await startBroker()
  await createTopic(broker.bootstrap, INPUT, 1)
})
afterAll(async () => {
  openGate()
  closeGate()
  await broker?.destroy()
})

async function member(model: string): Promise<Gateway> {
  const gateway = new Gateway(
    configFrom(`models:
  m: { kind: scripted, ${model} }
ensembles:
  e: { strategy: deadline-fallback, models: [m], budget_ms: { default: 20000, max: 30000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], stream: { input_topic: ${INPUT}, group_id: ${GROUP} } }
`),
  )
  await gateway.load()
  return gateway
}

describe('stream mode at shutdown', () => {
  it('cancels what still runs after the grace period, leaves it uncommitted, and the group scores it again', { timeout: 120_000 }, async () => {
    const stuck = await member('hang: true')
    const first = await startStream(stuck, silentLogger, true)
    const running = new Promise((resolve) => inferences.once('infer', resolve))
    const recorded = new Promise<PredictResult>((resolve) => (stuck.hooks.onResult = resolve))
    const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
    await producer.send({ messages: [{ topic: INPUT, key: 'k', value: JSON.stringify({ id: 'once', ensemble: 'e', inputs: { x: [[0.5, 0.5]] } }) }] })
    await producer.close()
    await running

    await first!.close(200)
    const cancelled = await recorded
    expect(cancelled).toMatchObject({ id: 'once', error: { code: 'CANCELLED' }, decision: { reason: 'gateway-stopping' } })
    expect(signals.get('m')![0]!.aborted).toBe(true)
    expect(stuck.ensembles.get('e')!.requestStats.outcomes.get('CANCELLED')).toBe(1)
    expect((await committedOffsets(broker.bootstrap, GROUP, INPUT, 1))[0]).toBe(-1n)
    expect(first!.status()).toMatchObject({ answered: 0, dead_lettered: 0 })
    await stuck.close()

    const healthy = await member('label: 1')
    const second = await startStream(healthy, silentLogger, true)
    const answers = await consumeUntil(broker.bootstrap, `${INPUT}.results`, (got) => got.length >= 1)
    expect(answers.map((m) => JSON.parse(m.value) as { id: string; error?: unknown })).toEqual([expect.objectContaining({ id: 'once', decision: expect.objectContaining({ chosen: 'm' }) })])
    await second!.close()
    await healthy.close()
  })

  it('commits a message of another partition answered as the grace ends, and not the one still running', { timeout: 120_000 }, async () => {
    const input = `${INPUT}.two`
    await createTopic(broker.bootstrap, input, 2)
    const gateway = new Gateway(
      configFrom(`models:
  stuck: { kind: scripted, hang: true }
  gated: { kind: gated }
ensembles:
  stuck: { strategy: deadline-fallback, models: [stuck], budget_ms: { default: 20000, max: 30000 } }
  gated: { strategy: deadline-fallback, models: [gated], budget_ms: { default: 20000, max: 30000 } }
output:
  kafka: { brokers: ["${broker.bootstrap}"], stream: { input_topic: ${input}, group_id: ${GROUP}-two } }
`),
    )
    await gateway.load()
    const scorer = (await startStream(gateway, silentLogger, true))!
    const producer = new Producer({ clientId: 'specserve-test-requests', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers })
    const request = (ensemble: string): string => JSON.stringify({ id: ensemble, ensemble, inputs: { x: [[0.5, 0.5]] } })
    await producer.send({ messages: [{ topic: input, partition: 0, key: 'a', value: request('stuck') }, { topic: input, partition: 1, key: 'b', value: request('gated') }] })
    await producer.close()
    await eventually('both running', async () => scorer.status(), (s) => s.in_flight === 2)

    // The gated predict decides now, and its answer goes out after the grace (none) is over.
    openGate()
    await scorer.close(0)
    await gateway.close()
    const answers = await consumeUntil(broker.bootstrap, `${input}.results`, (got) => got.length >= 1)
    expect(answers.map((m) => (JSON.parse(m.value) as { id: string }).id)).toEqual(['gated'])
    expect(await committedOffsets(broker.bootstrap, `${GROUP}-two`, input, 2)).toEqual([-1n, 1n])
  })
})
