// The registry owns which version of each repository model serves; executors only run the
// file it hands them. Every arrival (a directory in the repository, an upload) takes one
// pipeline: stored durably, then a hot reload of that one model pinned to the new version
// (loaded and warmed off the hot path, checked against its ensemble siblings, gated), and
// swapped in at once by the reload. Predicts in flight finish on the version they started
// with. A version that fails anywhere is rejected with the reason and the previous serves on.
import { EventEmitter } from 'node:events'
import type { GatewayConfig } from '../config/load.ts'
import { ConfigError, type ConfigIssue } from '../config/yaml.ts'
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import type { ModelRuntime } from '../model-runtimes.ts'
import type { VersionPin, VersionSource } from '../reload/version-source.ts'
import type { CanaryEvidence } from './canary.ts'
import { CatchUp } from './catch-up.ts'
import { RegistryCounts } from './counts.ts'
import { unservable } from './preview.ts'
import { RepositoryArrivals } from './arrivals.ts'
import { RegistryReloads } from './reloads.ts'
import { quote } from '../tensor/index.ts'
import { silentLogger, type Component, type Logger, type MetricsSink } from '../types.ts'
import type { RepositoryConfig } from './config.ts'
import { VersionPipeline } from './pipeline.ts'
import type { VersionMeta } from './version-meta.ts'
import type { ModelStream } from './stream.ts'
import { SerialQueue } from '../serial-queue.ts'
import type { Arrival } from './stored-versions.ts'
import type { ModelVersions } from './versions.ts'
import { RepositoryModels } from './model-set.ts'

/** What a registry emits: `settled` once a version is judged (serving, rejected or kept aside). */
export interface RegistryEvents {
  settled: [model: string, meta: VersionMeta]
}

export class Registry extends EventEmitter<RegistryEvents> implements VersionSource, Component {
  readonly repository: RepositoryConfig
  /** Each repository model's record: the registry's, staged by a reload, or dropped by one. */
  private readonly set: RepositoryModels
  /** The registry's models. */
  private readonly models: ReadonlyMap<string, ModelVersions>
  private readonly counts = new RegistryCounts()
  /** Judges each version the queue hands it. */
  private readonly pipeline: VersionPipeline
  private gateway: Gateway | undefined
  private log: Logger = silentLogger
  /** Opens the queue (at start, or at close): until then operations wait, none judged against a gateway still loading. */
  private openQueue!: () => void
  /** One registry operation at a time (an arrival, a rollback): each is a reload of one model. */
  private readonly queue = new SerialQueue(new Promise<void>((resolve) => (this.openQueue = resolve)))
  private closed = false
  /** Directories copied into the repository, and uploads: stored, then judged in turn. */
  private readonly arrivals: RepositoryArrivals
  /** The registry's side of the gateway's loads and reloads: what it resolves, stages, gates and records. */
  private readonly reloads: RegistryReloads
  /** The model stream's consumer, with `repository.kafka`. */
  stream: ModelStream | undefined
  /** Readiness waits for the model stream to reach the topic's end (`repository.kafka.catch_up_timeout_ms` > 0). */
  private catchUp: CatchUp | undefined

  /** A registry for the config's repository; undefined without a `repository:` section. */
  static open(config: GatewayConfig): Registry | undefined {
    if (!config.repository) return undefined
    const registry = new Registry(config.repository)
    const issues = unservable(config, (model) => registry.set.track(model))
    if (issues.length) throw new ConfigError(config.file, issues)
    return registry
  }

  private constructor(repository: RepositoryConfig) {
    super()
    this.repository = repository
    this.set = new RepositoryModels(repository.path)
    this.models = this.set.current
    this.pipeline = new VersionPipeline(repository, this.counts, (model, meta) => this.emit('settled', model, meta))
    const judge = (versions: ModelVersions, version: number): Promise<VersionMeta> => this.judge(versions, version)
    this.arrivals = new RepositoryArrivals(this.models, judge)
    this.reloads = new RegistryReloads(this.set, this.pipeline, this.counts, this.arrivals, { judge, decideCanary: (versions, version, evidence) => this.decideCanary(versions, version, evidence) })
  }

  // The gateway's loads and reloads (VersionSource), answered by RegistryReloads.
  resolve(config: GatewayConfig, reload?: { readonly pin?: ReadonlyMap<string, VersionPin> | undefined }): GatewayConfig {
    return this.reloads.resolve(config, reload)
  }

  gate(loaded: readonly ModelRuntime[]): Promise<ConfigIssue[]> {
    return this.reloads.gate(loaded)
  }

  committed(config: GatewayConfig): void {
    this.reloads.committed(config)
  }

  discarded(): void {
    this.reloads.discarded()
  }

  fallback(issues: readonly ConfigIssue[]): boolean {
    return this.reloads.fallback(issues)
  }

  /** Logs where the server logs; the gateway to swap versions in. Before the gateway loads. */
  attach(gateway: Gateway, log: Logger): void {
    this.gateway = gateway
    this.log = log
    this.arrivals.log = log
    this.reloads.log = log
    for (const versions of this.models.values()) this.reloads.sayGone(versions)
    this.pipeline.attach(gateway, log)
    gateway.attach('registry', this)
    // Held from before the load: a new instance must not turn ready while the stream replays the topic.
    if (this.repository.kafka?.catchUpTimeoutMs) gateway.holds.add('model_stream', (this.catchUp = new CatchUp(this.repository.kafka.catchUpTimeoutMs, log)))
  }

  /**
   * Once the gateway has loaded: records what serves, judges what arrived meanwhile, watches
   * the repository, and reads the model stream.
   */
  async start(): Promise<void> {
    if (this.closed) return // stopped while the gateway loaded
    this.catchUp?.start() // the limit counts from the end of the load, the repository's own rescan included
    // The gateway serves already: a failing disk (EACCES, ENOSPC) is logged, never thrown (it would end the process).
    for (const versions of this.models.values()) this.reloads.recordServing(versions, 'recording what serves at start failed')
    this.openQueue() // arrivals during the load are judged now, in the order they came
    if (this.repository.watch) this.arrivals.watch(this.repository.path)
    await this.arrivals.rescanLogged()
    if (this.closed) return // stopped while the rescan judged: no stream to start, nothing more to judge
    for (const versions of this.models.values()) for (const version of versions.pending()) void this.judge(versions, version).catch(() => undefined)
    if (this.repository.kafka && this.gateway) {
      // Loaded only here: @platformatic/kafka costs a start about 0.5 s of CPU to import.
      const { ModelStream } = await import('./stream.ts')
      if (this.closed) return // stopped while it loaded
      this.stream = new ModelStream(this, this.repository, this.gateway.config.server.instance, this.log, this.catchUp)
      this.gateway.attach('model_stream', this.stream)
      if (this.catchUp) this.gateway.attach('model_stream.catch_up', this.catchUp) // after the stream: inside its /readyz detail
      // A broker that is down does not stop the gateway: uploads and the repository still work.
      await this.stream.start().catch((err: unknown) => this.log.error({ err, brokers: this.repository.kafka?.brokers }, 'model stream not started'))
    }
  }

  /** Version directories not seen yet, and versions stored but never judged, go through the pipeline. */
  rescan(): Promise<void> {
    return this.arrivals.rescan()
  }

  private versionsOf(name: string): ModelVersions {
    const versions = this.models.get(name)
    if (versions) return versions
    if (this.gateway?.models.has(name)) throw new GatewayError('UNKNOWN_ENSEMBLE', `model ${quote(name)} is not served from the repository (source: repository)`)
    throw new GatewayError('UNKNOWN_ENSEMBLE', `no model named ${quote(name)}`)
  }

  /** Every version of a repository model, ascending. */
  list(name: string): VersionMeta[] {
    return this.versionsOf(name).list()
  }

  version(name: string, version: number): VersionMeta {
    const meta = this.versionsOf(name).get(version)
    if (!meta) throw new GatewayError('UNKNOWN_VERSION', `model ${quote(name)} has no version ${version}`)
    return meta
  }

  isRepositoryModel(name: string): boolean {
    return this.set.known(name) !== undefined
  }

  /**
   * The version of a model whose file has this sha256 (`version` itself, unless 0: any), if one
   * is stored. For a model a reload is adding, known once the reload is swapped in (its seed, its
   * directory's versions) or refused.
   */
  async versionWithSha(name: string, sha256: string, version = 0): Promise<number | undefined> {
    await this.set.addedSettled(name)
    return this.models.get(name)?.list().find((m) => m.sha256 === sha256 && (version === 0 || m.version === version))?.version
  }

  /** The version serving a repository model, or undefined for a model from the config. */
  serving(name: string): number | undefined {
    return this.models.get(name)?.serving
  }

  /**
   * A new version by upload (or the model stream): stored, then through the pipeline. Resolves
   * with its final state. One for a model a reload is adding waits for the reload's outcome.
   */
  async arrive(name: string, bytes: Uint8Array, arrival: Arrival): Promise<VersionMeta> {
    await this.set.addedSettled(name)
    return this.arrivals.store(this.versionsOf(name), bytes, arrival)
  }

  /** A stored version still `loading` (its judging failed on a system error, or is queued): judged in turn. Resolves with its final state. */
  judgeStored(name: string, version: number): Promise<VersionMeta> {
    return this.judge(this.versionsOf(name), version)
  }

  /** Judges a stored version in turn with the other registry operations; resolves with its final state. */
  private judge(versions: ModelVersions, version: number): Promise<VersionMeta> {
    return this.queue.run(() => this.pipeline.process(versions, version))
  }

  /** The canary's evidence is in: decided in turn with the other registry operations. */
  private decideCanary(versions: ModelVersions, version: number, evidence: CanaryEvidence): Promise<void> {
    return this.queue.run(() => this.pipeline.decideCanary(versions, version, evidence))
  }

  /** Serves the previous passing version at once (the one rolled back from is retired); during a canary, retires the canary. */
  rollback(name: string): Promise<VersionMeta> {
    const versions = this.versionsOf(name)
    return this.queue.run(() => this.pipeline.rollback(versions))
  }

  status(): unknown {
    return Object.fromEntries([...this.models].map(([name, v]) => [name, { serving: v.serving ?? null, versions: v.list().length }]))
  }

  collect(out: MetricsSink): void {
    this.counts.collect(out, [...this.models.values()].map((v) => [v.name, v.serving] as const))
  }

  /** Waits for the operations queued so far (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  /** Stops the watch and the stream; what is queued still runs (against a draining gateway: NOT_READY, left `loading`). */
  async close(): Promise<void> {
    this.closed = true
    this.openQueue()
    this.catchUp?.close()
    this.arrivals.close()
    await this.stream?.close()
  }
}
