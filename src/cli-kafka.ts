// What the CLI runs on when a config talks to Kafka (output.kafka), apart from cli-modules.ts.
// @platformatic/kafka compiles its options' schemas when it is imported, about 0.5 s of CPU
// (a sixth of a start) and ~50 MB: the record sink's producer loads it on a thread of its own
// (output.kafka.producer_thread), so it is loaded on the event loop only by what runs there:
// stream mode's consumer (with --stream or stream.enabled) and publish-model.
import type { StreamScorer } from './api/kafka/index.ts'
import type { Gateway } from './gateway.ts'
import { kafkaSettings } from './kafka/config.ts'
import type { Logger } from './types.ts'

export { startOutput } from './output/index.ts'

/** Stream mode's scorer when it is on (api/kafka/index.ts's streamScorer), its module loaded only then. */
export async function streamScorer(gateway: Gateway, log: Logger, force = false): Promise<StreamScorer | null> {
  if (!force && !kafkaSettings(gateway.config.output, gateway.config.baseDir)?.stream.enabled) return null
  return (await import('./api/kafka/index.ts')).streamScorer(gateway, log, force)
}
