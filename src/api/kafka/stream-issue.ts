// Whether a config can serve --stream: apart from index.ts, which loads @platformatic/kafka
// (about 0.5 s of a start's CPU), so validate and a start without Kafka never load it.
import type { GatewayConfig } from '../../config/load.ts'
import type { ConfigIssue } from '../../config/yaml.ts'
import { kafkaSettings } from '../../kafka/config.ts'

/** serve --stream (validate --stream too) reads its requests from output.kafka: a config without it cannot serve so. */
export function streamIssue(config: GatewayConfig): ConfigIssue | undefined {
  return kafkaSettings(config.output, config.baseDir) ? undefined : noKafka(config)
}

export function noKafka(config: GatewayConfig): ConfigIssue {
  const message = '--stream consumes requests from output.kafka (its stream.input_topic, specserve.requests by default): there is no output.kafka section'
  return config.source.issue('output', message)
}
