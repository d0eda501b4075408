// Attaches the configured outputs to a gateway: the starter's hooks feed the record sink
// (so every frontend's predicts are recorded), /readyz shows the sink's state, and stream
// mode scores requests from a topic. The CLI owns the lifecycle (start, close on signal).
import type { Gateway } from '../gateway.ts'
import type { PredictResult } from '../types.ts'
import { kafkaSettings, type KafkaSettings } from './config.ts'
import { KafkaSink } from './kafka.ts'
import { PendingRecord } from './record.ts'
import type { RecordSink, SinkLogger } from './sink.ts'
import { silentLogger } from './sink.ts'
import { StreamScorer } from './stream.ts'

export interface Output {
  readonly sink: RecordSink | null
  readonly stream: StreamScorer | null
  /** Stops stream intake, then flushes records within the grace period (default: the configured one). */
  close(graceMs?: number): Promise<void>
}

export interface OutputOptions {
  readonly log?: SinkLogger
  /** `serve --stream`: score requests from the input topic even if the config does not enable it. */
  readonly stream?: boolean
}

export async function startOutput(gateway: Gateway, options: OutputOptions = {}): Promise<Output> {
  const log = options.log ?? silentLogger
  const settings = kafkaSettings(gateway.config.output, gateway.config.baseDir)
  if (!settings) {
    if (options.stream) throw new Error('stream mode needs an output.kafka section (brokers, stream.input_topic)')
    return { sink: null, stream: null, close: async () => {} }
  }
  const sink = new KafkaSink(settings, log)
  sink.start()
  attachRecordHooks(gateway, sink, settings)
  let stream: StreamScorer | null = null
  if (options.stream || settings.stream.enabled) {
    stream = new StreamScorer(gateway, settings, log)
    await stream.start()
  }
  gateway.statusDetails.set('output', () => ({ kafka: sink.status(), ...(stream ? { stream: stream.status() } : {}) }))
  return {
    sink,
    stream,
    async close(graceMs = settings.shutdownGraceMs) {
      const until = performance.now() + graceMs
      await stream?.close()
      await sink.close(Math.max(0, until - performance.now()))
    },
  }
}

/** The hot path: a sampling check, one small object, one array push. */
export function attachRecordHooks(gateway: Gateway, sink: RecordSink, settings: KafkaSettings): void {
  const instance = gateway.config.server.instance
  const { includeInputs, sampleRate, sampleRates } = settings
  const keyOf = settings.key === 'ensemble' ? (r: PredictResult) => r.ensemble : settings.key === 'id' ? (r: PredictResult) => r.id : () => null
  const sampling = sampleRate < 1 || Object.values(sampleRates).some((r) => r < 1)
  // Late answers are published only for results that were themselves recorded.
  const skipped = new WeakSet<PredictResult>()
  gateway.hooks.onResult = (result, req) => {
    if (sampling && Math.random() >= (sampleRates[result.ensemble] ?? sampleRate)) {
      skipped.add(result)
      return
    }
    sink.write(new PendingRecord(keyOf(result), result, req.inputs, Date.now(), null, includeInputs, instance))
  }
  if (!settings.publishLate) return
  gateway.hooks.onLate = (result, index, outcome, req) => {
    if (outcome.status !== 'ok' || skipped.has(result)) return
    const model = result.models[index]
    if (!model) return
    const late = { model: model.name, version: model.version, latency_ms: Math.round(outcome.latencyMs * 1000) / 1000, outputs: outcome.outputs }
    sink.write(new PendingRecord(keyOf(result), result, req.inputs, Date.now(), late, includeInputs, instance))
  }
}
