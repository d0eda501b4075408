// The registry owns which version of each repository model serves; executors only run the
// file it hands them. Every arrival (a directory in the repository, an upload) takes one
// pipeline: stored durably, then a hot reload of that one model pinned to the new version
// (loaded and warmed off the hot path, checked against its ensemble siblings, gated), and
// swapped in at once by the reload. Predicts in flight finish on the version they started
// with. A version that fails anywhere is rejected with the reason and the previous serves on.
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import { ConfigError, type ConfigIssue } from '../config/yaml.ts'
import { GatewayError } from '../errors.ts'
import type { Gateway, ModelRuntime } from '../gateway.ts'
import type { VersionPin, VersionSource } from '../reload/version-source.ts'
import { CanaryExecutor, type CanaryEvidence } from './canary.ts'
import { RegistryCounts, type RegistryEvent } from './counts.ts'
import { fallBackAtStart } from './fallback.ts'
import { repositorySettings, resolveVersions } from './resolve.ts'
import { watchRepository, type RepositoryWatch } from './watch.ts'
import { canaryVerdict, evidenceRecord } from './rollout.ts'
import { quote } from '../tensor/index.ts'
import { silentLogger, type Component, type Logger, type MetricsSink } from '../types.ts'
import type { RepositoryConfig } from './config.ts'
import { runGate } from './gate.ts'
import { VersionExistsError, type VersionMeta } from './store.ts'
import { ModelStream } from './stream.ts'
import { SerialQueue } from '../serial-queue.ts'
import { ModelVersions, type Arrival } from './versions.ts'

/** What a registry emits: `settled` once a version is judged (serving, rejected or kept aside). */
export interface RegistryEvents {
  settled: [model: string, meta: VersionMeta]
}

export class Registry extends EventEmitter<RegistryEvents> implements VersionSource, Component {
  readonly repository: RepositoryConfig
  private readonly models = new Map<string, ModelVersions>()
  private readonly counts = new RegistryCounts()
  private gateway: Gateway | undefined
  private log: Logger = silentLogger
  /** Opens the queue (at start, or at close): until then operations wait, none judged against a gateway still loading. */
  private openQueue!: () => void
  /** One registry operation at a time (an arrival, a rollback): each is a reload of one model. */
  private readonly queue = new SerialQueue(new Promise<void>((resolve) => (this.openQueue = resolve)))
  private closed = false
  private watcher: RepositoryWatch | undefined
  /** The model stream's consumer, with `repository.kafka`. */
  stream: ModelStream | undefined

  /** A registry for the config's repository; undefined without a `repository:` section. */
  static open(config: GatewayConfig): Registry | undefined {
    if (!config.repository) return undefined
    const registry = new Registry(config.repository)
    const issues: ConfigIssue[] = []
    for (const model of config.models.values()) {
      const versions = registry.track(model)
      if (versions && versions.serving === undefined) {
        issues.push({ path: `models.${model.name}.source`, ...(config.source.locate(['models', model.name, 'source']) ?? {}), message: `no version to serve in ${versions.directory.dir} (add ${versions.directory.dir}/1/model.onnx, or give path: to import one)` })
      }
    }
    if (issues.length) throw new ConfigError(config.file, issues)
    return registry
  }

  private constructor(repository: RepositoryConfig) {
    super()
    this.repository = repository
  }

  /** The versions of a repository model, opened on first sight (at start, or added by a reload). */
  private track(model: ModelConfig): ModelVersions | undefined {
    const settings = repositorySettings(model)
    if (!settings) return undefined
    let versions = this.models.get(model.name)
    if (!versions) {
      versions = new ModelVersions(this.repository.path, model.name, settings)
      versions.open(() => (settings.seed ? readFileSync(settings.seed) : undefined))
      this.models.set(model.name, versions)
    }
    versions.settings = settings
    return versions
  }

  resolve(config: GatewayConfig, pin?: ReadonlyMap<string, VersionPin>): GatewayConfig {
    return resolveVersions(config, pin, (model) => this.track(model), (versions, version, evidence) =>
      // A canary's end writes files: a failure there is logged, never an unhandled rejection.
      void this.decideCanary(versions, version, evidence).catch((err: unknown) => this.log.error({ err, model: versions.name, version }, 'canary decision failed')),
    )
  }

  async gate(loaded: readonly ModelRuntime[]): Promise<ConfigIssue[]> {
    const issues: ConfigIssue[] = []
    for (const { model, executor } of loaded) {
      const versions = this.models.get(model.name)
      if (!versions || !repositorySettings(model)) continue
      // A canary rollout loads the serving version again beside the canary: the canary is what is judged.
      const [version, judged] = executor instanceof CanaryExecutor && model.canary ? [Number(model.canary.version), executor.canary] : [Number(model.version), executor]
      const report = await runGate(judged, versions.settings.validation)
      versions.update(version, { gate: report })
      if (!report.passed) issues.push({ path: `models.${model.name}`, message: `validation gate failed: ${report.reason}` })
    }
    return issues
  }

  fallback(issues: readonly ConfigIssue[]): boolean {
    return fallBackAtStart(this.models, issues, this.log, (model) => this.count(model, 'rejected'))
  }

  /** Logs where the server logs; the gateway to swap versions in. Before the gateway loads. */
  attach(gateway: Gateway, log: Logger): void {
    this.gateway = gateway
    this.log = log
    gateway.attach('registry', this)
  }

  /**
   * Once the gateway has loaded: records what serves, judges what arrived meanwhile, watches
   * the repository, and reads the model stream.
   */
  async start(): Promise<void> {
    if (this.closed) return // stopped while the gateway loaded
    for (const versions of this.models.values()) {
      const serving = versions.serving
      if (serving !== undefined && versions.get(serving)?.state !== 'serving') this.served(versions, serving, undefined)
    }
    this.openQueue() // arrivals during the load are judged now, in the order they came
    // A rescan reads and writes the repository: a failing disk is logged, never thrown from the watcher's timer.
    if (this.repository.watch) this.watcher = watchRepository(this.repository.path, () => void this.rescan().catch((err: unknown) => this.log.error({ err }, 'repository rescan failed')), this.log)
    await this.rescan()
    if (this.closed) return // stopped while the rescan judged: no stream to start, nothing more to judge
    for (const versions of this.models.values()) for (const version of versions.pending()) void this.queue.run(() => this.process(versions, version)).catch(() => undefined)
    if (this.repository.kafka && this.gateway) {
      this.stream = new ModelStream(this, this.repository, this.gateway.config.server.instance, this.log)
      this.gateway.attach('model_stream', this.stream)
      // A broker that is down does not stop the gateway: uploads and the repository still work.
      await this.stream.start().catch((err: unknown) => this.log.error({ err, brokers: this.repository.kafka?.brokers }, 'model stream not started'))
    }
  }

  /** Version directories not seen yet, and versions stored but never judged, go through the pipeline. */
  async rescan(): Promise<void> {
    const jobs: Promise<unknown>[] = []
    for (const versions of this.models.values()) {
      for (const version of versions.scan()) jobs.push(this.queue.run(() => this.process(versions, version)).catch(() => undefined))
    }
    await Promise.all(jobs)
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
    return this.models.has(name)
  }

  /** The version of a model whose file has this sha256, if one is stored. */
  versionWithSha(name: string, sha256: string): number | undefined {
    return this.models.get(name)?.list().find((m) => m.sha256 === sha256)?.version
  }

  /** The version serving a repository model, or undefined for a model from the config. */
  serving(name: string): number | undefined {
    return this.models.get(name)?.serving
  }

  /** A new version by upload (or the model stream): stored, then through the pipeline. Resolves with its final state. */
  async arrive(name: string, bytes: Uint8Array, arrival: Arrival): Promise<VersionMeta> {
    const versions = this.versionsOf(name)
    // Stored at once (a 409 for an existing version is the caller's answer), judged in turn.
    let meta: VersionMeta
    try {
      meta = await versions.add(bytes, arrival)
    } catch (err) {
      if (err instanceof VersionExistsError) throw new GatewayError('VERSION_EXISTS', `model ${quote(name)} has a version ${arrival.version} already: versions are immutable, publish a new one`)
      throw err
    }
    this.log.info({ model: name, version: meta.version, source: arrival.source, sha256: meta.sha256 }, 'model version stored')
    return this.queue.run(() => this.process(versions, meta.version))
  }

  private async process(versions: ModelVersions, version: number): Promise<VersionMeta> {
    // Queued twice (an arrival held until start, then listed as pending by start): judged once.
    const meta = versions.get(version)
    if (meta && meta.state !== 'loading') return meta
    const judged = versions.judge(version)
    if (!judged.serve) {
      if (judged.gate) return this.judgeOlder(versions, version)
      this.log.info({ model: versions.name, version, reason: judged.reason }, 'model version kept, not served')
      return this.settle(versions, versions.update(version, { state: 'retired', reason: judged.reason }))
    }
    if (versions.settings.canary && versions.serving !== undefined) return this.startCanary(versions, version)
    const previous = versions.serving
    const failure = await this.swap(versions, version)
    if (failure === null) return this.served(versions, version, 'served', previous)
    return this.reject(versions, version, failure)
  }

  /**
   * A version older than the serving one (a late upload, a backfill): loaded, checked and gated
   * beside the serving state and never swapped in, so it becomes a rollback target (`ready`) or
   * is rejected. It could never serve under `latest` otherwise; a rollback then lands on a judged file.
   */
  private async judgeOlder(versions: ModelVersions, version: number): Promise<VersionMeta> {
    const failure = await this.attempt((gateway) => gateway.trial(new Map([[versions.name, version]])))
    if (failure !== null) return this.reject(versions, version, failure)
    this.log.info({ model: versions.name, version, serving: versions.serving ?? null }, 'older model version passed its gate: kept as a rollback target')
    versions.update(version, { state: 'ready', reason: null })
    versions.prune(this.repository.keepVersions)
    return this.settle(versions, versions.get(version)!)
  }

  /** A passing version first takes `weight` of the traffic beside the serving one; a canary already running is superseded. */
  private async startCanary(versions: ModelVersions, version: number): Promise<VersionMeta> {
    const stable = versions.serving!
    const before = versions.canary
    const failure = await this.swap(versions, { stable, canary: version })
    if (failure !== null) return this.reject(versions, version, failure)
    if (before !== undefined) versions.update(before, { state: 'retired', reason: `superseded by version ${version} as the canary` })
    versions.canary = version
    this.count(versions.name, 'canary_started')
    const { weight, promoteAfter } = versions.settings.canary!
    this.log.info({ model: versions.name, version, serving: stable, weight, promote_after: promoteAfter }, 'model version in canary')
    return this.settle(versions, versions.update(version, { state: 'canary', reason: null }))
  }

  /** The canary's evidence is in: promoted (it serves all traffic) or rolled back (rejected), with the evidence kept. */
  private decideCanary(versions: ModelVersions, version: number, evidence: CanaryEvidence): Promise<void> {
    return this.queue.run(async () => {
      if (versions.canary !== version) return // superseded or rolled back meanwhile
      const verdict = canaryVerdict(evidence, versions.settings.canary!)
      const rollout = { decision: verdict.promote ? ('promoted' as const) : ('rolled_back' as const), at: new Date().toISOString(), evidence: evidenceRecord(evidence) }
      const stable = versions.serving!
      versions.canary = undefined
      this.log.info({ model: versions.name, version, serving: stable, evidence: rollout.evidence, decision: rollout.decision }, `canary ${verdict.promote ? 'promoted' : 'rolled back'}`)
      if (verdict.promote) {
        const failure = await this.swap(versions, version)
        versions.update(version, { rollout })
        if (failure !== null) return void this.reject(versions, version, `promotion failed: ${failure}`)
        this.count(versions.name, 'canary_promoted')
        this.served(versions, version, 'served', stable)
        return
      }
      const failure = await this.swap(versions, stable)
      if (failure !== null) this.log.error({ model: versions.name, version: stable, reason: failure }, 'canary rollback: reloading the serving version alone failed; the canary takes no more traffic')
      versions.update(version, { rollout })
      this.count(versions.name, 'canary_rolled_back')
      this.reject(versions, version, `canary rolled back: ${verdict.reason}`)
    })
  }

  /**
   * Serves `version` through a reload pinned to it; the failure's reason, or null once it
   * serves. What serves (and the canary) is recorded in the reload's own step: a config
   * reload queued behind it resolves versions from the new record, never the old one.
   */
  private swap(versions: ModelVersions, version: VersionPin): Promise<string | null> {
    const record = (): void => {
      versions.serving = typeof version === 'number' ? version : version.stable
      versions.canary = typeof version === 'number' ? undefined : version.canary
    }
    return this.attempt((gateway) => gateway.swapVersions(new Map([[versions.name, version]]), record))
  }

  /**
   * Runs a reload (or a trial) on the gateway; the failure's reason, or null. A gateway not
   * ready (still loading, or draining for a stop) says nothing about the model: NOT_READY is
   * thrown, and the version stays `loading`, judged at the next start.
   */
  private async attempt(run: (gateway: Gateway) => Promise<unknown>): Promise<string | null> {
    const gateway = this.gateway
    if (!gateway) return 'the gateway is not attached'
    try {
      await run(gateway)
      return null
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'NOT_READY') throw new GatewayError('NOT_READY', `${err.message}: the version is stored and judged once the gateway is ready again`)
      return err instanceof ConfigError ? err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (err as Error).message
    }
  }

  /** `previous`: what served before the swap to `version` (the swap already recorded `version`). */
  private served(versions: ModelVersions, version: number, event: RegistryEvent | undefined, previous = versions.serving): VersionMeta {
    const meta = versions.update(version, { state: 'serving', serving_since: new Date().toISOString(), reason: null })
    if (previous !== undefined && previous !== version && event === 'served') versions.update(previous, { state: 'ready' })
    versions.serving = version
    if (event) this.count(versions.name, event)
    versions.prune(this.repository.keepVersions)
    this.log.info({ model: versions.name, version, previous: previous ?? null, source: meta.source }, 'model version serving')
    return this.settle(versions, versions.get(version)!)
  }

  private settle(versions: ModelVersions, meta: VersionMeta): VersionMeta {
    this.emit('settled', versions.name, meta)
    return meta
  }

  private reject(versions: ModelVersions, version: number, reason: string): VersionMeta {
    this.count(versions.name, 'rejected')
    this.log.error({ model: versions.name, version, reason, serving: versions.serving ?? null }, `model version rejected; version ${versions.serving ?? 'none'} keeps serving`)
    const meta = versions.update(version, { state: 'rejected', reason })
    versions.prune(this.repository.keepVersions) // rejected files count against keep_versions too
    return this.settle(versions, meta)
  }

  /** Serves the previous passing version at once; the one rolled back from is retired. */
  rollback(name: string): Promise<VersionMeta> {
    const versions = this.versionsOf(name)
    return this.queue.run(async () => {
      const from = versions.serving
      const target = versions.previous()
      if (target === undefined) throw new GatewayError('NO_PREVIOUS_VERSION', `model ${quote(name)} has no passing version before ${from ?? 'none'} to roll back to`)
      const canary = versions.canary
      versions.canary = undefined // a rollback ends a canary rollout too
      const failure = await this.swap(versions, target)
      if (canary !== undefined) versions.update(canary, { state: 'retired', reason: `rollback to version ${target} ended its canary` })
      if (failure !== null) {
        this.reject(versions, target, failure)
        throw new GatewayError('MODEL_REJECTED', `rollback to version ${target} failed: ${failure}`)
      }
      const meta = this.served(versions, target, 'rolled_back', from)
      if (from !== undefined) versions.update(from, { state: 'retired', reason: `rolled back to version ${target}` })
      return meta
    })
  }

  private count(model: string, event: RegistryEvent): void {
    this.counts.count(model, event)
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
    this.watcher?.close()
    await this.stream?.close()
  }
}
