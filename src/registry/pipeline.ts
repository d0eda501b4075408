// One version's way through judging, once it is stored: a reload pinned to it (or a trial
// beside the serving state) decides whether it serves, waits in a canary, is kept aside or is
// rejected. The registry (registry.ts) runs these one at a time on its queue and owns the API.
import type { ModelConfig } from '../config/load.ts'
import { ConfigError } from '../config/yaml.ts'
import { GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import type { VersionPin } from '../reload/version-source.ts'
import { quote } from '../tensor/index.ts'
import { silentLogger, type Logger } from '../types.ts'
import { CanaryExecutor, type CanaryEvidence } from './canary.ts'
import type { RepositoryConfig } from './config.ts'
import type { LostOutputs } from './compatible.ts'
import type { RegistryCounts, RegistryEvent } from './counts.ts'
import { recordLost, sayLost } from './outputs-lost.ts'
import { canaryVerdict, evidenceRecord } from './rollout.ts'
import { SwapOutdated } from './resolve.ts'
import { GONE } from './store.ts'
import type { VersionMeta } from './version-meta.ts'
import { goneReady } from './version-rules.ts'
import type { ModelVersions } from './versions.ts'

/**
 * Why a swap may take outputs from the ensembles (the warning says it). `arriving`: a version the
 * registry received, refused for outputs its model's `outputs_may_drop` does not list. `fresh`:
 * the version swapped in is new to the ensembles, so what it takes is its record (none clears an
 * old one); a canary's promotion or end swaps from the pair, whose outputs were already the
 * fewer, and keeps what the canary's start recorded.
 */
interface SwapWhy {
  readonly text: string
  readonly arriving: boolean
  readonly fresh: boolean
}
const ARRIVAL: SwapWhy = { text: 'outputs_may_drop lets them go', arriving: true, fresh: true }
const PROMOTION: SwapWhy = { ...ARRIVAL, fresh: false }
const ROLLBACK: SwapWhy = { text: 'a rollback', arriving: false, fresh: true }
const CANARY_ENDED: SwapWhy = { text: 'the canary rolled back', arriving: false, fresh: false }
const CANARY_ROLLED_BACK: SwapWhy = { text: 'a rollback of the canary', arriving: false, fresh: false }

export class VersionPipeline {
  private readonly repository: RepositoryConfig
  private readonly counts: RegistryCounts
  /** Where a judged version is announced (the registry's `settled` event). */
  private readonly settled: (model: string, meta: VersionMeta) => void
  private gateway: Gateway | undefined
  private log: Logger = silentLogger

  constructor(repository: RepositoryConfig, counts: RegistryCounts, settled: (model: string, meta: VersionMeta) => void) {
    this.repository = repository
    this.counts = counts
    this.settled = settled
  }

  /** The gateway to swap versions in, and where to log: the registry's, once it is attached. */
  attach(gateway: Gateway, log: Logger): void {
    this.gateway = gateway
    this.log = log
  }

  /** Judges a stored version; resolves with its final state (one judged already keeps its own). */
  async process(versions: ModelVersions, version: number): Promise<VersionMeta> {
    // Queued twice (an arrival held until start, then listed as pending by start): judged once.
    const meta = versions.get(version)
    if (meta && meta.state !== 'loading') return meta
    // Failed at this start: judged now, under the config or on the box it just failed with, it
    // would be rejected for good; the next start tries it (a replayed stream record lands here).
    if (meta && versions.failedAtThisStart(version)) return meta
    // Swapped in, but recording it failed (a full disk): it serves (or takes a canary's share), so
    // it is recorded as such, not judged again (as "not newer than" itself, it would be retired).
    if (versions.serving === version) return this.served(versions, version, 'served', undefined)
    if (versions.canary === version) return this.canaryRunning(versions, version)
    const judged = versions.judge(version)
    if (!judged.serve) {
      if (judged.gate) return this.judgeOlder(versions, version)
      this.log.info({ model: versions.name, version, reason: judged.reason }, 'model version kept, not served')
      return this.settle(versions, versions.update(version, { state: 'retired', reason: judged.reason }))
    }
    if (versions.settings.canary && versions.serving !== undefined) return this.startCanary(versions, version)
    const previous = versions.serving
    const failure = await this.swap(versions, version, ARRIVAL)
    if (failure === null) return this.served(versions, version, 'served', previous)
    return this.reject(versions, version, failure)
  }

  /**
   * A version older than the serving one (a late upload, a backfill): loaded, checked and gated
   * beside the serving state and never swapped in, so it becomes a rollback target (`ready`) or
   * is rejected. It could never serve under `latest` otherwise; a rollback then lands on a judged file.
   */
  private async judgeOlder(versions: ModelVersions, version: number): Promise<VersionMeta> {
    let lost: readonly LostOutputs[] = []
    const failure = await this.attempt(async (gateway) => void (lost = await gateway.trial(new Map([[versions.name, version]]))))
    if (failure !== null) return this.reject(versions, version, failure)
    // Not refused: an operator rolls back to it on purpose. Recorded, so the upload's answer says it, and the rollback warns.
    recordLost(versions, version, lost)
    // previous() looks below the serving version only: one between it and the canary is a rollback target once the canary is promoted.
    const below = version < (versions.serving ?? 0)
    const kept = below ? 'older model version passed its gate: kept as a rollback target' : 'model version not newer than the canary passed its gate: kept, a rollback target once the canary is promoted'
    this.log.info({ model: versions.name, version, serving: versions.serving ?? null, canary: versions.canary ?? null, outputs_lost: versions.get(version)?.outputs_lost ?? null }, kept)
    versions.update(version, { state: 'ready', reason: null })
    versions.prune(this.repository.keepVersions)
    return this.settle(versions, versions.get(version)!)
  }

  /** A passing version first takes `weight` of the traffic beside the serving one; a canary already running is superseded. */
  private async startCanary(versions: ModelVersions, version: number): Promise<VersionMeta> {
    const stable = versions.serving!
    const before = versions.canary
    const failure = await this.swap(versions, { stable, canary: version }, ARRIVAL)
    if (failure !== null) return this.reject(versions, version, failure)
    if (before !== undefined) versions.update(before, { state: 'retired', reason: `superseded by version ${version} as the canary` })
    // A config reload without `rollout.canary` committed first: the swap served no canary, so it is judged as that config says.
    if (versions.canary !== version || !versions.settings.canary) return this.process(versions, version)
    return this.canaryRunning(versions, version)
  }

  /**
   * Records `version` as the canary the swap made it (first, so a failure to record it leaves
   * nothing counted: judged again, it lands here); a canary recorded before it is superseded.
   */
  private canaryRunning(versions: ModelVersions, version: number): VersionMeta {
    const meta = versions.update(version, { state: 'canary', reason: null })
    this.count(versions.name, 'canary_started')
    for (const other of versions.list()) if (other.state === 'canary' && other.version !== version) versions.update(other.version, { state: 'retired', reason: `superseded by version ${version} as the canary` })
    this.log.info({ model: versions.name, version, serving: versions.serving ?? null, weight: versions.settings.canary?.weight, promote_after: versions.settings.canary?.promoteAfter }, 'model version in canary')
    return this.settle(versions, meta)
  }

  /** The canary's evidence is in: promoted (it serves all traffic) or rolled back (rejected), with the evidence kept. */
  async decideCanary(versions: ModelVersions, version: number, evidence: CanaryEvidence): Promise<void> {
    const settings = versions.settings.canary
    if (versions.canary !== version || !settings) return // superseded, rolled back or dropped by a reload meanwhile
    const verdict = canaryVerdict(evidence, settings)
    const rollout = { decision: verdict.promote ? ('promoted' as const) : ('rolled_back' as const), at: new Date().toISOString(), evidence: evidenceRecord(evidence) }
    const stable = versions.serving!
    versions.canary = undefined
    this.log.info({ model: versions.name, version, serving: stable, evidence: rollout.evidence, decision: rollout.decision }, `canary ${verdict.promote ? 'promoted' : 'rolled back'}`)
    if (verdict.promote) {
      const failure = await this.swap(versions, version, PROMOTION)
      versions.update(version, { rollout })
      if (failure !== null) return void this.reject(versions, version, `promotion failed: ${failure}`)
      this.count(versions.name, 'canary_promoted')
      this.served(versions, version, 'served', stable)
      return
    }
    const failure = await this.swap(versions, stable, CANARY_ENDED)
    if (failure !== null) this.log.error({ model: versions.name, version: stable, reason: failure }, 'canary rollback: reloading the serving version alone failed; the canary takes no more traffic')
    versions.update(version, { rollout })
    this.count(versions.name, 'canary_rolled_back')
    this.reject(versions, version, `canary rolled back: ${verdict.reason}`)
  }

  /**
   * Serves `version` through a reload pinned to it; the failure's reason, or null once it
   * serves. What serves (and the canary) is recorded in the reload's own step: a config
   * reload queued behind it resolves versions from the new record, never the old one.
   * `why`: what lets the swap take outputs from the ensembles (warned about, and recorded on
   * the version; see SwapWhy).
   */
  private async swap(versions: ModelVersions, version: VersionPin, why: SwapWhy): Promise<string | null> {
    const record = (): void => {
      versions.serving = typeof version === 'number' ? version : version.stable
      versions.canary = typeof version === 'number' ? undefined : version.canary
    }
    let lost: readonly LostOutputs[] = []
    const failure = await this.attempt(async (gateway) => void (lost = (await gateway.swapVersions(new Map([[versions.name, version]]), record, why.arriving)).outputsLost))
    if (failure === null) sayLost(this.log, versions, typeof version === 'number' ? version : version.canary, lost, why.text, why.fresh)
    return failure
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
      // The config changed while this waited: no verdict on the version (judged again at the next start, or when its model is added again).
      if (err instanceof SwapOutdated) throw new GatewayError('NOT_READY', `the config being served changed while this waited (${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}): nothing was swapped, try again`)
      return err instanceof ConfigError ? err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : (err as Error).message
    }
  }

  /** Records the version about to serve (at start) or serving (a model a reload added) as `serving`, if it is not yet. */
  recordServing(versions: ModelVersions): void {
    const serving = versions.serving
    if (serving !== undefined && versions.get(serving)?.state !== 'serving') this.served(versions, serving, undefined, undefined)
  }

  /**
   * A reload swapped in: the stable version it serves is recorded, and a canary the config no
   * longer runs (rollout removed, or not allowed) is handed to `judgeAgain`, judged again under
   * the new settings as a restart would.
   */
  followReload(versions: ModelVersions, model: ModelConfig, judgeAgain: (version: number) => void): void {
    const stable = Number(model.version)
    if (Number.isSafeInteger(stable) && stable !== versions.serving) this.served(versions, stable, 'served', versions.serving)
    const canary = versions.canary
    if (canary === undefined || model.canary?.version === String(canary)) return
    versions.canary = undefined
    if (versions.get(canary)?.state === 'canary') versions.update(canary, { state: 'loading', reason: null })
    this.log.info({ model: versions.name, version: canary }, 'canary ended by a config reload: judged again under the new settings')
    judgeAgain(canary)
  }

  /**
   * `previous`: what served before the swap to `version`, read by the caller before it (the
   * swap records `version`); undefined when none did, or when it is not known (a start).
   */
  served(versions: ModelVersions, version: number, event: RegistryEvent | undefined, previous: number | undefined): VersionMeta {
    const meta = versions.update(version, { state: 'serving', serving_since: new Date().toISOString(), reason: null })
    // One version serves: whatever served before (or a meta.json left `serving`) is a rollback target now.
    for (const other of versions.list()) if (other.state === 'serving' && other.version !== version) versions.update(other.version, { state: 'ready' })
    versions.serving = version
    if (event) this.count(versions.name, event)
    versions.prune(this.repository.keepVersions)
    this.log.info({ model: versions.name, version, previous: previous ?? null, source: meta.source }, 'model version serving')
    return this.settle(versions, versions.get(version)!)
  }

  private settle(versions: ModelVersions, meta: VersionMeta): VersionMeta {
    this.settled(versions.name, meta)
    return meta
  }

  private reject(versions: ModelVersions, version: number, reason: string): VersionMeta {
    this.count(versions.name, 'rejected')
    this.log.error({ model: versions.name, version, reason, serving: versions.serving ?? null }, `model version rejected; version ${versions.serving ?? 'none'} keeps serving`)
    const meta = versions.update(version, { state: 'rejected', reason })
    versions.prune(this.repository.keepVersions) // rejected files count against keep_versions too
    return this.settle(versions, meta)
  }

  /**
   * Serves the previous passing version at once; the one rolled back from is retired, and so is
   * any above it that failed its last start (a restart would try it before the target). During a
   * canary rollout the canary is what is rolled back: it is retired, and the serving version serves on.
   */
  async rollback(versions: ModelVersions): Promise<VersionMeta> {
    if (versions.canary !== undefined) return this.endCanary(versions, versions.canary)
    const from = versions.serving
    // A rollback target whose model file was deleted while the gateway runs is passed over (previous()), and rejected: listed `ready`, it would say it could serve.
    for (const version of goneReady(versions.list(), (v) => versions.directory.hasModel(v))) this.reject(versions, version, `at a rollback: ${GONE}`)
    const target = versions.previous()
    if (target === undefined) throw new GatewayError('NO_PREVIOUS_VERSION', `model ${quote(versions.name)} has no passing version before ${from ?? 'none'} that its version_policy allows to roll back to`)
    const failure = await this.swap(versions, target, ROLLBACK)
    if (failure !== null) {
      this.reject(versions, target, failure)
      throw new GatewayError('MODEL_REJECTED', `rollback to version ${target} failed: ${failure}`)
    }
    const meta = this.served(versions, target, 'rolled_back', from)
    if (from !== undefined) versions.update(from, { state: 'retired', reason: `rolled back to version ${target}` })
    const past = versions.retireFailedAbove(target)
    if (past.length) this.log.info({ model: versions.name, version: target, retired: past }, 'rollback: versions above it that failed their last start are retired, not tried at the next')
    return meta
  }

  /** A rollback during a canary: the serving version alone again, the canary retired with its evidence so far. */
  private async endCanary(versions: ModelVersions, canary: number): Promise<VersionMeta> {
    const stable = versions.serving!
    const executor = this.gateway?.models.get(versions.name)?.executor
    const evidence = executor instanceof CanaryExecutor ? evidenceRecord(executor.evidence()) : undefined
    const failure = await this.swap(versions, stable, CANARY_ROLLED_BACK)
    if (failure !== null) throw new GatewayError('MODEL_REJECTED', `rollback of the canary (version ${canary}) failed, the canary runs on: reloading version ${stable} alone failed: ${failure}`)
    this.count(versions.name, 'canary_rolled_back')
    this.log.info({ model: versions.name, version: canary, serving: stable, evidence: evidence ?? null }, 'canary rolled back by a rollback')
    const rollout = evidence && { decision: 'rolled_back' as const, at: new Date().toISOString(), evidence }
    this.settle(versions, versions.update(canary, { state: 'retired', reason: `rolled back during its canary; version ${stable} serves on`, ...(rollout && { rollout }) }))
    return versions.get(stable)!
  }

  private count(model: string, event: RegistryEvent): void {
    this.counts.count(model, event)
  }
}
