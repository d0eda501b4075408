// What the CLI runs on when a config talks to Kafka (output.kafka, --stream, publish-model).
// Apart from cli-modules.ts: @platformatic/kafka compiles its options' schemas when it is
// imported, about 0.5 s of CPU, a sixth of a start.
export { streamScorer } from './api/kafka/index.ts'
export { startOutput } from './output/index.ts'
export { publishModel } from './registry/publish.ts'
