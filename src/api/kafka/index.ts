// Starts stream mode (Kafka in) when the config enables it or `serve --stream` asks for it.
import type { Gateway } from '../../gateway.ts'
import { kafkaSettings } from '../../kafka/config.ts'
import type { Logger } from '../../types.ts'
import { StreamScorer } from './stream.ts'

export { StreamScorer } from './stream.ts'

/** Stream mode's scorer, attached to the gateway but not consuming yet (start() it); null when stream mode is off. */
export function streamScorer(gateway: Gateway, log: Logger, force = false): StreamScorer | null {
  const settings = kafkaSettings(gateway.config.output, gateway.config.baseDir)
  if (!settings) {
    if (force) throw new Error('stream mode needs an output.kafka section (brokers, stream.input_topic)')
    return null
  }
  if (!force && !settings.stream.enabled) return null
  const stream = new StreamScorer(gateway, settings, log)
  gateway.attach('output.stream', stream)
  return stream
}

export async function startStream(gateway: Gateway, log: Logger, force = false): Promise<StreamScorer | null> {
  const stream = streamScorer(gateway, log, force)
  await stream?.start()
  return stream
}
