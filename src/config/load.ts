// Loads a YAML config, validates all of it (collecting every error, not the first), and
// returns a frozen GatewayConfig. Checks that need loaded models (inputs that disagree
// between siblings) run in the gateway's load step and report through ConfigError too.
import { readFileSync } from 'node:fs'
import { availableParallelism, hostname } from 'node:os'
import { dirname, resolve } from 'node:path'
import '../collectors/index.ts'
import '../executors/index.ts'
import { executorKinds, getExecutorKind } from '../executors/registry.ts'
import type { CommonModelConfig } from '../executors/common.ts'
import type { ParseContext } from '../executors/types.ts'
import { DEFAULT_SPOOL_DIR, outputIssues } from '../kafka/config.ts'
import { addressIssues, kafkaIdProblem } from '../kafka/names.ts'
import type { CanaryPlan } from '../registry/canary.ts'
import { parseRepository, type RepositoryConfig } from '../registry/config.ts'
import { parseAuth, parseTls, type AuthConfig, type TlsConfig } from '../security/config.ts'
import { readCalibration, type Calibration } from './calibration.ts'
import { parseEnsembles, type EnsembleConfig } from './ensembles.ts'
import { hostProblem, listenerAddress } from './listener.ts'
import { nameProblem } from './forms.ts'
import { configPath, directoryProblem } from './paths.ts'
import { RootSchema, type RawConfig } from './schema.ts'
import { ConfigError, parseYaml, schemaIssues, type ConfigIssue, type SourceMap } from './yaml.ts'

export { DEFAULT_BUDGET, type EnsembleConfig, type SelectConfig } from './ensembles.ts'

export interface ModelConfig {
  readonly name: string
  readonly kind: string
  readonly version: string
  readonly quality: number | undefined
  /** Outputs (by name) a new version arriving through the registry may take from the ensembles using the model. */
  readonly outputsMayDrop: readonly string[]
  /** The entry as written (validated against its kind's schema). */
  readonly entry: CommonModelConfig
  /** The entry as its kind parsed it: typed settings, defaults applied, files read. */
  readonly spec: unknown
  /** A canary rollout of a repository model (set by src/registry): a second version beside this one. */
  readonly canary?: CanaryPlan | undefined
}

export interface GatewayConfig {
  readonly file: string
  readonly baseDir: string
  readonly models: ReadonlyMap<string, ModelConfig>
  readonly ensembles: ReadonlyMap<string, EnsembleConfig>
  readonly server: {
    readonly host: string
    readonly rest_port: number
    readonly grpc_port: number | null
    readonly body_limit_bytes: number
    /** Largest gRPC message accepted / sent; over it is RESOURCE_EXHAUSTED. */
    readonly grpc_max_receive_bytes: number
    readonly grpc_max_send_bytes: number
    readonly max_in_flight: number
    readonly instance: string
    /** SIGTERM: how long in-flight requests and the output flush may take before exit. */
    readonly shutdown_grace_ms: number
    /** TLS on both listeners (files reloaded when they change); null: plaintext. */
    readonly tls: TlsConfig | null
    /** REST: a request's headers must be in within this; its whole body within request_timeout_ms. */
    readonly headers_timeout_ms: number
    /** Also gRPC: a call with one request message must have sent it and half-closed within this (read-limit.ts). */
    readonly request_timeout_ms: number
    /** REST: an idle kept-alive connection is closed after this. */
    readonly keep_alive_timeout_ms: number
    /** REST: connections beyond this are closed as they arrive. */
    readonly max_connections: number
    /** gRPC: a connection with no call for this long is closed (GOAWAY; clients reconnect). */
    readonly grpc_idle_timeout_ms: number
    readonly grpc_max_concurrent_streams: number
    /** gRPC: connections beyond this (per listening socket) are closed as they arrive. */
    readonly grpc_max_connections: number
    /** gRPC: calls with message compression open at once (per server); more are refused OVERLOADED. */
    readonly grpc_max_compressed_calls: number
  }
  readonly executors: {
    readonly onnx_workers: number
    readonly onnx_queue: number
    /** An embedded model whose inference p99 is within this runs inline (placement: auto). */
    readonly inline_max_ms: number
    /** Nice steps the inference workers run below the event loop. */
    readonly onnx_worker_nice: number
  }
  readonly output: Readonly<Record<string, unknown>>
  readonly telemetry: {
    readonly otlp_endpoint: string | null
    readonly prometheus: boolean
    readonly service_name: string
    readonly sample_ratio: number
  }
  /** Hot reload: POST /admin/reload (off by default) and watching the file (on). */
  readonly admin: { readonly reload_endpoint: boolean; readonly watch_config: boolean }
  /** Models as data: the versioned repository of `source: repository` models (none: no registry). */
  readonly repository: RepositoryConfig | undefined
  /** Credentials, scopes and rate limits (src/security); null: open, as without the section. */
  readonly auth: AuthConfig | null
  /** Positions of config paths in the source, for errors found after load. */
  readonly source: SourceMap
  /** Accepted, but worth saying (deprecated keys): `validate` prints them, `serve` logs them. */
  readonly warnings: readonly ConfigIssue[]
  /** Calibrations by model from `<config>.calibration.json` (specserve eval --calibrate): a temperature or an isotonic map; empty without one. */
  readonly calibration: ReadonlyMap<string, Calibration>
}

/**
 * Inference workers run this many nice steps below the event loop: on a contended core the
 * loop's admission, deadlines and fallbacks go first (docs/operations.md).
 */
export const DEFAULT_WORKER_NICE = 10

export function loadConfigFile(file: string): GatewayConfig {
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read config: ${(err as Error).message}` }])
  }
  return parseConfig(text, path)
}

export function parseConfig(text: string, file: string): GatewayConfig {
  const { value, source, issues } = parseYaml(text)
  if (issues.length) throw new ConfigError(file, issues)
  // An empty file (or comments, `---` or `~` alone) reads as null: "must be object" would not say why.
  if (value === null || value === undefined) throw new ConfigError(file, [{ path: '', message: 'the file is empty (no YAML document, or a null one): a config needs at least models: and ensembles:' }])
  const rootIssues = schemaIssues(RootSchema, value, [], source)
  // The checks below read the sections as the schema types them: run on a broken shape, they
  // would report errors that are not there (docs/configuration.md: two passes).
  if (rootIssues.length) throw new ConfigError(file, rootIssues)
  const raw = value as RawConfig
  const baseDir = dirname(file)
  const problems: ConfigIssue[] = []
  const warnings: ConfigIssue[] = []
  const issue = (path: (string | number)[], message: string): ConfigIssue => source.issue(path, message)
  const at = (path: (string | number)[], message: string): void => {
    problems.push(issue(path, message))
  }
  /** Where a kind's or a strategy's parse() reports, below `base`. */
  const context = (base: (string | number)[]): ParseContext => ({
    baseDir,
    problem: (field, message) => at([...base, ...field.split('.')], message),
    warn: (field, message) => warnings.push(issue([...base, ...field.split('.')], message)),
  })

  const models = new Map<string, ModelConfig>()
  for (const [name, entry] of Object.entries(raw.models)) {
    const badName = nameProblem(name)
    if (badName) at(['models', name], badName)
    const kind = getExecutorKind(entry.kind)
    if (!kind) {
      at(['models', name, 'kind'], `unknown kind "${entry.kind}" (known: ${executorKinds().join(', ')})`)
      continue
    }
    const issues = schemaIssues(kind.schema, entry, ['models', name], source)
    problems.push(...issues)
    if (issues.length) continue
    const spec = kind.parse ? kind.parse(entry as never, context(['models', name])) : entry
    const common = entry as CommonModelConfig
    // YAML reads `version: 1.10` as the number 1.1: refuse what would not read back as written.
    const written = typeof common.version === 'number' ? source.text(['models', name, 'version']) : undefined
    if (written !== undefined && written !== String(common.version)) {
      at(['models', name, 'version'], `version ${written} reads as the number ${String(common.version)}; quote it to keep it as written: version: "${written}"`)
    } else if (typeof common.version === 'number' && !Number.isInteger(common.version)) {
      at(['models', name, 'version'], `version ${written ?? common.version} is not an integer: quote a version that is not one (version: "${written ?? common.version}")`)
    } else if (typeof common.version === 'string' && common.version.trim() === '') {
      at(['models', name, 'version'], 'version cannot be empty or blank: annotations and records name it (leave it out for "1")')
    }
    if ((entry as { source?: string }).source === 'repository') {
      if (!raw.repository) at(['models', name, 'source'], 'needs a repository: section (repository: { path: ... })')
      // Its name is its directory in the repository: one that is not would name the repository, its parent, or a directory elsewhere.
      if (name === '.' || name === '..' || /[/\\\0]/.test(name)) at(['models', name, 'source'], `a source: repository model's name is its directory in the repository: ${JSON.stringify(name)} cannot be one (no ".", "..", "/", "\\" or NUL)`)
    }
    models.set(name, { name, kind: entry.kind, version: String(common.version ?? '1'), quality: common.quality, outputsMayDrop: common.outputs_may_drop ?? [], entry: common, spec })
  }

  const ensembles = parseEnsembles(raw, { source, problems, at, context })
  problems.push(...outputIssues(raw.output, Object.keys(raw.ensembles), source))
  if (raw.repository?.kafka) addressIssues(at, ['repository', 'kafka'], raw.repository.kafka.brokers, [['topic', raw.repository.kafka.topic]])
  // Directories serve makes: a file in the way would fail its start with a bare ENOTDIR.
  const directory = (path: string[], written: string, prefix = ''): void => {
    const problem = directoryProblem(configPath(baseDir, written))
    if (problem) at(path, prefix + problem)
  }
  if (raw.repository) directory(['repository', 'path'], raw.repository.path)
  const kafka = raw.output?.kafka as { spool_dir?: unknown } | null | undefined
  if (kafka && typeof kafka === 'object') {
    if (typeof kafka.spool_dir === 'string') directory(['output', 'kafka', 'spool_dir'], kafka.spool_dir)
    else if (kafka.spool_dir === undefined) directory(['output', 'kafka'], DEFAULT_SPOOL_DIR, `spool_dir (default ${DEFAULT_SPOOL_DIR}): `)
  }
  const auth = raw.auth ? parseAuth(raw.auth, context(['auth'])) : null
  const tls = raw.server?.tls ? parseTls(raw.server.tls, context(['server', 'tls'])) : null
  if (auth?.clientCerts.length && !tls?.clientCa) context(['auth']).problem('client_certs', 'needs server.tls.client_ca: only a certificate that CA verified names a caller')
  const calibration = readCalibration(file, {
    hasModel: (name) => Object.hasOwn(raw.models, name),
    problem: (issue) => problems.push(issue),
    warn: (issue) => warnings.push(issue),
  })
  const server = raw.server ?? {}
  const envProblem = (message: string): void => void problems.push({ path: '', message })
  const { host, restPort, grpcPort } = listenerAddress(server, envProblem)
  const badHost = server.host === undefined ? null : hostProblem(server.host)
  if (badHost) at(['server', 'host'], `host ${JSON.stringify(server.host)} ${badHost}`)
  const instance = instanceName(server.instance, envProblem, (message) => at(['server', 'instance'], message))
  // The model stream's consumer group is `<group>-<instance>`, its client id names the instance too.
  const streamKafka = raw.repository?.kafka
  const badInstance = streamKafka === undefined ? null : kafkaIdProblem(instance, 'consumer group')
  if (badInstance) {
    const why = `${badInstance} (with repository.kafka, the model stream's is <group>-<instance>)`
    if (process.env.SPECSERVE_INSTANCE?.trim()) envProblem(`SPECSERVE_INSTANCE=${JSON.stringify(instance)} ${why}`)
    else at(['server', 'instance'], `instance ${JSON.stringify(instance)} ${why}`)
  }
  const group = streamKafka?.group
  const badGroup = kafkaIdProblem(group, 'consumer group')
  if (badGroup) at(['repository', 'kafka', 'group'], `group ${JSON.stringify(group)} ${badGroup}`)
  if (restPort !== 0 && restPort === grpcPort) {
    const fromEnv = ['SPECSERVE_REST_PORT', 'SPECSERVE_GRPC_PORT'].filter((name) => process.env[name])
    const via = fromEnv.length ? ` (after ${fromEnv.join(' and ')} from the environment)` : ''
    at(['server', 'grpc_port'], `rest_port and grpc_port are both ${restPort}${via}: the REST and gRPC listeners need different ports (or grpc_port: null)`)
  }
  // Node's HTTP server refuses a headers timeout over the request timeout (and would throw at start).
  const requestTimeoutMs = server.request_timeout_ms ?? 30_000
  if (server.headers_timeout_ms !== undefined && server.headers_timeout_ms > requestTimeoutMs) {
    at(['server', 'headers_timeout_ms'], `headers_timeout_ms (${server.headers_timeout_ms}) is over request_timeout_ms (${requestTimeoutMs}): the headers are part of the request`)
  }
  if (problems.length) throw new ConfigError(file, problems)

  const executors = raw.executors ?? {}
  const workers = executors.onnx_workers
  const config: GatewayConfig = {
    file,
    baseDir,
    models,
    ensembles,
    server: {
      host,
      rest_port: restPort,
      grpc_port: grpcPort,
      body_limit_bytes: server.body_limit_bytes ?? 4 * 1024 * 1024,
      grpc_max_receive_bytes: server.grpc_max_receive_bytes ?? 4 * 1024 * 1024,
      grpc_max_send_bytes: server.grpc_max_send_bytes ?? 4 * 1024 * 1024,
      max_in_flight: server.max_in_flight ?? 1024,
      instance,
      shutdown_grace_ms: server.shutdown_grace_ms ?? 10_000,
      tls,
      // Within the request's: a lower request_timeout_ms lowers the default.
      headers_timeout_ms: server.headers_timeout_ms ?? Math.min(10_000, requestTimeoutMs),
      request_timeout_ms: requestTimeoutMs,
      keep_alive_timeout_ms: server.keep_alive_timeout_ms ?? 5_000,
      max_connections: server.max_connections ?? 8192,
      grpc_idle_timeout_ms: server.grpc_idle_timeout_ms ?? 300_000,
      grpc_max_concurrent_streams: server.grpc_max_concurrent_streams ?? 1000,
      grpc_max_connections: server.grpc_max_connections ?? 8192,
      grpc_max_compressed_calls: server.grpc_max_compressed_calls ?? 16,
    },
    executors: {
      // auto leaves one core to the event loop: it must be free to fire deadlines on time.
      onnx_workers: workers === undefined || workers === 'auto' ? Math.max(1, availableParallelism() - 1) : workers,
      onnx_queue: executors.onnx_queue ?? 1024,
      inline_max_ms: executors.inline_max_ms ?? 0.2,
      onnx_worker_nice: executors.onnx_worker_nice ?? DEFAULT_WORKER_NICE,
    },
    output: raw.output ?? {},
    telemetry: {
      otlp_endpoint: raw.telemetry?.otlp_endpoint ?? null,
      prometheus: raw.telemetry?.prometheus ?? true,
      service_name: raw.telemetry?.service_name ?? 'specserve',
      sample_ratio: raw.telemetry?.sample_ratio ?? 1,
    },
    admin: { reload_endpoint: raw.admin?.reload_endpoint ?? false, watch_config: raw.admin?.watch_config ?? true },
    repository: parseRepository(raw.repository, baseDir),
    auth,
    source,
    warnings,
    calibration,
  }
  return Object.freeze(config)
}

/**
 * This gateway's name in serving records and its model stream's consumer group: the
 * environment's (empty is unset), the file's, or specserve-<host>-<pid>. The host tells
 * containers apart, whose pids are all the same (1, or whatever their init gives node); the
 * pid, gateways on one host. A blank one would name no one.
 */
function instanceName(written: string | undefined, envProblem: (message: string) => void, fileProblem: (message: string) => void): string {
  const env = process.env.SPECSERVE_INSTANCE
  const blank = (name: string): boolean => name.trim() === ''
  if (env && blank(env)) envProblem(`SPECSERVE_INSTANCE=${JSON.stringify(env)} is blank: give a name, or leave it unset`)
  if (written !== undefined && blank(written)) fileProblem('instance cannot be empty or blank: give a name, or leave it out for specserve-<host>-<pid>')
  return [env, written].find((name) => name !== undefined && !blank(name)) ?? defaultInstance()
}

/** Only letters, digits, '.', '_' and '-' from the hostname: Kafka refuses a group or client id with whitespace. */
const defaultInstance = (): string => {
  const host = hostname().replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '')
  return host === '' ? `specserve-${process.pid}` : `specserve-${host}-${process.pid}`
}
