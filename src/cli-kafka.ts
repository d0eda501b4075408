// What the CLI runs on when a config talks to Kafka (output.kafka, --stream, publish-model).
// Apart from cli-modules.ts: @platformatic/kafka compiles its options' schemas when it is
// imported, about 0.6 s of CPU, a quarter of a start without it.
export { streamScorer } from './api/kafka/index.ts'
export { startOutput } from './output/index.ts'
export { publishModel } from './registry/publish.ts'
