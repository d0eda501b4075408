// What the CLI runs on. cli.ts imports it dynamically, once serve's signals are held
// (src/held-signals.ts) and the command line is checked (src/cli-line.ts): loading it takes
// 1-2 s, and a static import would be loaded before any line of cli.ts runs. Kafka's parts
// are in cli-kafka.ts, loaded only for a config that talks to Kafka.
export { pino } from 'pino'
export { atMost } from './at-most.ts'
export { routeGrpcLog } from './api/grpc/log.ts'
export { buildGrpcServer } from './api/grpc/server.ts'
export { buildServer } from './api/rest/server.ts'
export { listenError } from './config/listener.ts'
export { formatIssue, shownPath } from './config/yaml.ts'
export { Gateway } from './gateway.ts'
export { CloseTimeoutError } from './gateway-close.ts'
export { healthMain, targetOf } from './health.ts'
export { announceListener, forgetListener } from './listener-file.ts'
export { Registry } from './registry/registry.ts'
export { startReloadTriggers } from './reload/index.ts'
export { openWarning } from './security/exposure.ts'
export { startTelemetry } from './telemetry/index.ts'
export { modelWarnings } from './model-warnings.ts'
export { loadForCommand, report, validate } from './validate.ts'
export { kafkaSettings } from './kafka/config.ts'
