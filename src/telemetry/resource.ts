// The resource every signal carries: target_info on GET /metrics (shown to anyone allowed
// `metrics`, anonymous callers too if `auth.anonymous` says so), OTLP spans and metrics. The
// environment's attributes (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), and of the process
// and the host what tells instances apart (host name and architecture, pid, runtime), not
// what says how they run: the SDK's process and host detectors also give the whole command
// line (a secret passed as an argument), the user, the executable's and the script's paths
// and the machine's id, which are withheld. OTEL_NODE_RESOURCE_DETECTORS, when set, is the
// operator's own choice of detectors, taken as the SDK takes it.
import { envDetector, hostDetector, processDetector, type ResourceDetector } from '@opentelemetry/resources'
import { env } from './exporters.ts'

/** What the process and host detectors find that is withheld (OpenTelemetry's semantic conventions' names). */
export const WITHHELD_ATTRIBUTES: ReadonlySet<string> = new Set([
  'process.command',
  'process.command_args',
  'process.command_line',
  'process.executable.path',
  'process.owner',
  'host.id',
])

/** `detector` without the withheld attributes. */
const withholding = (detector: ResourceDetector): ResourceDetector => ({
  detect(config) {
    const { attributes } = detector.detect(config)
    return attributes ? { attributes: Object.fromEntries(Object.entries(attributes).filter(([key]) => !WITHHELD_ATTRIBUTES.has(key))) } : {}
  },
})

/** The detectors of the gateway's resource. */
export const RESOURCE_DETECTORS: readonly ResourceDetector[] = Object.freeze([envDetector, withholding(processDetector), withholding(hostDetector)])

/** The detectors NodeSDK is given: ours, unless OTEL_NODE_RESOURCE_DETECTORS names some (the SDK reads it then). */
export const sdkResourceDetectors = (): ResourceDetector[] | undefined => (env('OTEL_NODE_RESOURCE_DETECTORS')?.trim() ? undefined : [...RESOURCE_DETECTORS])
