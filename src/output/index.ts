// Attaches the configured serving-record sink to a gateway: the starter's hooks feed it
// (so every frontend's predicts are recorded), /readyz shows its state and /metrics its
// counters. The CLI owns the lifecycle (start, close on signal).
import type { Gateway } from '../gateway.ts'
import { kafkaSettings, type KafkaSettings } from '../kafka/config.ts'
import { silentLogger, type Logger, type PredictResult } from '../types.ts'
import { KafkaSink } from './kafka.ts'
import { PendingRecord } from './record.ts'
import type { RecordSink } from './sink.ts'
import { roundMs } from '../starter/stats.ts'
import { versionOf } from '../executors/types.ts'

export interface Output {
  readonly sink: RecordSink | null
  /** `output.kafka.shutdown_grace_ms`: how long stream intake and the flush may take at shutdown. */
  readonly graceMs: number
  /** Flushes records within the grace period (default: the configured one); the rest stays spooled. */
  close(graceMs?: number): Promise<void>
}

export function startOutput(gateway: Gateway, log: Logger = silentLogger): Output {
  const settings = kafkaSettings(gateway.config.output, gateway.config.baseDir)
  if (!settings) return { sink: null, graceMs: 0, close: async () => {} }
  const sink = new KafkaSink(settings, log)
  sink.start()
  attachRecordHooks(gateway, sink, settings)
  gateway.attach('output.kafka', sink)
  return { sink, graceMs: settings.shutdownGraceMs, close: (graceMs = settings.shutdownGraceMs) => sink.close(graceMs) }
}

/** The hot path: a sampling check, one small object, one array push. */
export function attachRecordHooks(gateway: Gateway, sink: RecordSink, settings: KafkaSettings): void {
  const instance = gateway.config.server.instance
  const { includeInputs, sampleRate, sampleRates } = settings
  const keyOf = settings.key === 'ensemble' ? (r: PredictResult) => r.ensemble : settings.key === 'id' ? (r: PredictResult) => r.id : () => null
  const sampling = sampleRate < 1 || Object.values(sampleRates).some((r) => r < 1)
  // Late answers are published only for results that were themselves recorded.
  const skipped = new WeakSet<PredictResult>()
  // A record's time is its predict's decision (a late one's too), not when the hook ran: a
  // predict with shadows is recorded once they have answered, late answers after its record.
  gateway.hooks.onResult = (result, req, _ens, decidedAt) => {
    if (sampling && Math.random() >= (sampleRates[result.ensemble] ?? sampleRate)) {
      skipped.add(result)
      return
    }
    sink.write(new PendingRecord(keyOf(result), result, req.inputs, decidedAt, null, includeInputs, instance))
  }
  if (!settings.publishLate) return
  gateway.hooks.onLate = (result, index, outcome, req, decidedAt) => {
    if (outcome.status !== 'ok' || skipped.has(result)) return
    const model = result.models[index]
    if (!model) return
    // The version that answered late, when it says: the annotation's was set at the decision.
    const late = { model: model.name, version: versionOf(outcome.outputs) ?? model.version, latency_ms: roundMs(outcome.latencyMs), outputs: outcome.outputs }
    sink.write(new PendingRecord(keyOf(result), result, req.inputs, decidedAt, late, includeInputs, instance))
  }
}
