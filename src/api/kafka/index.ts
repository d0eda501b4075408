// Starts stream mode (Kafka in) when the config enables it or `serve --stream` asks for it.
import { ConfigError } from '../../config/yaml.ts'
import type { Gateway } from '../../gateway.ts'
import { kafkaSettings } from '../../kafka/config.ts'
import type { Logger } from '../../types.ts'
import { StreamScorer } from './stream.ts'
import { noKafka } from './stream-issue.ts'

export { StreamScorer } from './stream.ts'

/**
 * Stream mode's scorer, attached to the gateway but not consuming yet (start() it); null when
 * stream mode is off. `force` (--stream) without output.kafka throws streamIssue's error.
 */
export function streamScorer(gateway: Gateway, log: Logger, force = false): StreamScorer | null {
  const settings = kafkaSettings(gateway.config.output, gateway.config.baseDir)
  if (!settings) {
    if (force) throw new ConfigError(gateway.config.file, [noKafka(gateway.config)])
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
