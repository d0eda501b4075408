// One repository model's versions: which one serves, and the rules that pick one
// (version_policy, rollback's "previous passing version", keep_versions), over what is stored
// (StoredVersions: each version's meta.json mirrored in memory, written first on every change).
import type { RepositoryModelSettings, VersionPolicy } from './config.ts'
import { GONE } from './store.ts'
import { StoredVersions } from './stored-versions.ts'
import type { VersionMeta } from './version-meta.ts'
import { allowedBy, FAILED_AT_START, failedAtStart, fallbackChoice, goneAtStart, lastServed, newMeta, servingChoice } from './version-rules.ts'

export class ModelVersions extends StoredVersions {
  settings: RepositoryModelSettings
  /** The version serving (or, before the first load, the one about to). */
  serving: number | undefined
  /** The version in a canary rollout beside `serving`, if any. */
  canary: number | undefined
  /** Versions that failed at this start (failAtStart): left out of pending() until the next start tries them. */
  private readonly failedThisStart = new Set<number>()
  /** Versions rejected as open() chose what serves, their model file gone: the registry says so once it can log, and empties this. */
  readonly gone: number[] = []
  /** What open() added to the repository (the directory, the seed as version 1): discard() takes it away again. */
  private created = { directory: false, seed: false }

  constructor(repository: string, name: string, settings: RepositoryModelSettings) {
    super(repository, name)
    this.settings = settings
  }

  /**
   * At start: reads the directory (importing the seed file as version 1 when there is no
   * version yet) and picks the version to serve: the one that served last, else the
   * highest the policy allows that was never rejected.
   */
  open(seedBytes: () => Buffer | undefined): void {
    this.created = { directory: this.directory.open(), seed: false }
    this.importSeed(seedBytes)
    this.readAll()
    // A crash between two meta writes of a swap can leave two "serving": the later one served last.
    for (const stale of lastServed(this.list()).slice(1)) this.update(stale.version, { state: 'ready' })
    this.chooseServing()
  }

  /**
   * A record a reload dropped, taken back by one adding the model again. What is stored is
   * known already, and uploads being stored go on (open() would remove their directories as a
   * crash's leftovers); a directory copied in meanwhile is an arrival, scanned once the reload is
   * swapped in. A directory removed meanwhile is created again, the versions gone with it
   * forgotten (not those being stored) and the seed imported if none is left; then as a start.
   */
  reopen(seedBytes: () => Buffer | undefined): void {
    this.created = { directory: this.directory.create(), seed: false }
    for (const version of [...this.metas.keys()]) if (!this.reserved.has(version) && !this.directory.has(version)) this.metas.delete(version)
    if (this.metas.size === 0 && this.reserved.size === 0) {
      this.importSeed(seedBytes)
      this.readAll()
    }
    this.canary = undefined
    this.chooseServing()
  }

  /**
   * As a start does: a canary cut short starts over (its evidence was in memory), a version the
   * start would try first whose model file is gone is rejected (listed in `gone`, for the
   * registry to say), and the version to serve is chosen.
   */
  private chooseServing(): void {
    for (const m of this.list()) if (m.state === 'canary') this.update(m.version, { state: 'loading' })
    const allowed = (v: number): boolean => this.allowed(v)
    const hasModel = (v: number): boolean => this.directory.hasModel(v)
    for (const version of goneAtStart(this.list(), allowed, hasModel)) {
      this.update(version, { state: 'rejected', reason: `at start: ${GONE}` })
      this.gone.push(version)
    }
    this.serving = servingChoice(this.list(), allowed, hasModel)
  }

  /** The config's `path:` imported as version 1 into a directory with no version. */
  private importSeed(seedBytes: () => Buffer | undefined): void {
    if (this.directory.versions().length > 0 || !this.settings.seed) return
    const bytes = seedBytes()
    if (!bytes) return
    this.directory.storeSync(bytes, newMeta(1, bytes, 'seed', 'imported from the config\'s path'))
    this.created.seed = true
  }

  /**
   * Undoes what open() added (the seed it imported, the directory it created unless an operator put
   * something there) for a model a reload opened and did not swap in; what it repaired, any start does.
   */
  discard(): void {
    if (this.created.directory) this.directory.removeCreated(this.created.seed ? [1] : [])
    else if (this.created.seed) this.directory.removeVersion(1)
    this.created = { directory: false, seed: false }
  }

  /**
   * Stored, never judged (a stop came first), other than the one about to serve: judged at start.
   * One that failed at this start is left out: judged now, under the config or on the box it
   * just failed with, it would be rejected for good; the next start tries it again.
   */
  pending(): number[] {
    return this.list().filter((m) => m.state === 'loading' && m.version !== this.serving && !this.failedThisStart.has(m.version)).map((m) => m.version)
  }

  /**
   * At start, `version` failed to load or its gate: rejected for good only when its file is
   * damaged (gone, or no longer the sha256 stored); otherwise the cause may be the config or the
   * box, so it stays a candidate the next start tries again, with the reason. The damage if rejected, else null.
   */
  failAtStart(version: number, reason: string): string | null {
    const damage = this.directory.damage(version, this.metas.get(version)?.sha256)
    if (damage !== null) {
      this.update(version, { state: 'rejected', reason: `at start: ${reason} (${damage})` })
      return damage
    }
    this.failedThisStart.add(version)
    this.update(version, { state: this.get(version)?.state === 'loading' ? 'loading' : 'ready', reason: `${FAILED_AT_START}${reason}` })
    return null
  }

  /** Failed at this start (and a candidate again at the next): not to be judged before it. */
  failedAtThisStart(version: number): boolean {
    return this.failedThisStart.has(version)
  }

  allowed(version: number): boolean {
    return allowedBy(this.settings.policy, version)
  }

  /**
   * What an arrival should become: tried for serving; or, not newer than the serving version
   * (nor than a running canary: only a newer version supersedes it), gated without serving
   * (`gate`: a rollback target if it passes); or kept aside with the reason.
   */
  judge(version: number): { readonly serve: true } | { readonly serve: false; readonly gate: boolean; readonly reason: string } {
    if (!this.allowed(version)) return { serve: false, gate: false, reason: 'not in version_policy.specific' }
    const newest = Math.max(this.serving ?? 0, this.canary ?? 0)
    if (this.serving !== undefined && version <= newest) {
      const which = newest === this.serving ? 'serving' : 'canary'
      return { serve: false, gate: version < newest, reason: `not newer than the ${which} version ${newest}` }
    }
    return { serve: true }
  }

  /** A config reload whose version_policy excludes what serves: the highest version that passed (ready, or serving) it allows, not one that failed its last start. */
  passedUnder(policy: VersionPolicy): number | undefined {
    return this.list()
      .filter((m) => (m.state === 'ready' || m.state === 'serving') && !failedAtStart(m) && allowedBy(policy, m.version) && this.directory.hasModel(m.version))
      .at(-1)?.version
  }

  /** At start, when `failed` cannot serve: the newest earlier version that passed (ready, or served) and the policy allows. */
  fallbackFrom(failed: number): number | undefined {
    return fallbackChoice(this.list(), failed, (v) => this.allowed(v), (v) => this.directory.hasModel(v))
  }

  /** Rollback's target: the highest passing version below the serving one that version_policy allows (not one that failed its last start). */
  previous(): number | undefined {
    return this.list()
      .filter((m) => m.state === 'ready' && !failedAtStart(m) && m.version < (this.serving ?? 0) && this.allowed(m.version) && this.directory.hasModel(m.version))
      .at(-1)?.version
  }

  /**
   * After a rollback to `target`: the versions above it that failed their last start are retired,
   * or the next start would try them again before `target` and undo the rollback. Their numbers.
   */
  retireFailedAbove(target: number): number[] {
    const above = this.list().filter((m) => failedAtStart(m) && m.version > target)
    for (const m of above) this.update(m.version, { state: 'retired', reason: `rolled back past it to version ${target}` })
    return above.map((m) => m.version)
  }

  /**
   * Keeps the model files of the newest `keep` passing versions (the serving one counts)
   * and of the newest `keep` rejected and retired ones (to inspect); older files are removed, their
   * meta.json stays as history, and a passing version so pruned is retired.
   */
  prune(keep: number): number[] {
    // Once a newer version serves, one that failed at a start is no longer tried again (a start
    // tries only those newer than the last served): it is an ordinary version again, a rollback
    // target if it passed before (`ready`; a rollback gates it again), judged at the next start
    // if it never was (`loading`). Marked, it would hold a kept slot no rollback can use.
    for (const m of this.list()) if (failedAtStart(m) && m.version < (this.serving ?? 0)) this.update(m.version, { reason: null })
    const withFile = (state: VersionMeta['state']): number[] =>
      this.list()
        .filter((m) => m.state === state && m.version !== this.serving && this.directory.hasModel(m.version))
        .map((m) => m.version)
        .reverse()
    const dropped = [...withFile('ready').slice(Math.max(0, keep - 1)), ...withFile('rejected').slice(keep), ...withFile('retired').slice(keep)]
    for (const version of dropped) {
      this.directory.dropModel(version)
      if (this.metas.get(version)!.state === 'ready') this.update(version, { state: 'retired', reason: `beyond keep_versions (${keep})` })
    }
    return dropped
  }
}
