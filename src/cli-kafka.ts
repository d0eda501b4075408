// What the CLI runs on when a config talks to Kafka (output.kafka), apart from cli-modules.ts.
// @platformatic/kafka compiles its options' schemas when it is imported, about 0.5 s of CPU
// (a sixth of a start) and ~50 MB: the record sink's producer loads it when it is made (at
// start, on a thread of its own with output.kafka.producer_thread), not this module; so do
// stream mode (src/api/kafka, which the CLI loads only when stream mode is on) and
// publish-model (src/registry/publish.ts).
export { startOutput } from './output/index.ts'
