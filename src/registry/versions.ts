// One repository model's versions: what is on disk (each version's meta.json) mirrored in
// memory, which one serves, and the rules that pick one (version_policy, rollback's
// "previous passing version", keep_versions). Every change is written to meta.json first.
import { GatewayError } from '../errors.ts'
import type { RepositoryModelSettings, VersionPolicy } from './config.ts'
import { WrittenNotSynced } from '../durable.ts'
import { CopiesIn } from './copy-in.ts'
import { GONE, ModelDirectory, VersionExistsError } from './store.ts'
import { MAX_VERSION, type VersionMeta, type VersionSource } from './version-meta.ts'
import { sha256HexYielding } from './sha256.ts'
import { allowedBy, FAILED_AT_START, failedAtStart, fallbackChoice, goneAtStart, lastServed, newMeta, servingChoice, versionMeta } from './version-rules.ts'

export interface Arrival {
  /** 0: the next after the highest known. */
  readonly version: number
  readonly source: VersionSource
  readonly description?: string | undefined
}

export class ModelVersions {
  readonly name: string
  readonly directory: ModelDirectory
  settings: RepositoryModelSettings
  /** The version serving (or, before the first load, the one about to). */
  serving: number | undefined
  /** The version in a canary rollout beside `serving`, if any. */
  canary: number | undefined
  private readonly metas = new Map<number, VersionMeta>()
  /**
   * Versions being stored (numbered, not on disk yet): taken at once, so two arrivals stored
   * at the same time never get one number, and a scan does not take one for a copied-in directory.
   */
  private readonly reserved = new Set<number>()
  /** Versions that failed at this start (failAtStart): left out of pending() until the next start tries them. */
  private readonly failedThisStart = new Set<number>()
  /** Model files copied in that a scan left for a later one (still being written). */
  private readonly copies = new CopiesIn()
  /** Versions rejected as open() chose what serves, their model file gone: the registry says so once it can log, and empties this. */
  readonly gone: number[] = []
  /** What open() added to the repository (the directory, the seed as version 1): discard() takes it away again. */
  private created = { directory: false, seed: false }

  constructor(repository: string, name: string, settings: RepositoryModelSettings) {
    this.name = name
    this.settings = settings
    this.directory = new ModelDirectory(repository, name)
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

  /** At start: every version directory, with the meta.json a run before wrote; one without is an arrival (copied in while stopped). */
  private readAll(): void {
    for (const version of this.directory.versions()) {
      const meta = this.directory.readMeta(version)
      if (meta) this.metas.set(version, meta)
      else {
        const bytes = this.directory.readModel(version)
        if (bytes) this.write(newMeta(version, bytes, 'directory', null)) // else being copied in: a later scan sees the file
      }
    }
  }

  /**
   * Version directories copied in while the gateway runs, recorded as arrivals (`loading`,
   * source `directory`) and returned. A meta.json that came with one (copied from another
   * repository, say) is not this gateway's: its state, gate and sha256 are found here again,
   * only its description is kept. Read and hashed off the event loop; a directory whose model
   * file is not there yet, or still being written (CopiesIn; copyingIn() says so), or that
   * could not be recorded (`failed`: EACCES, ENOSPC), is seen by a later scan.
   */
  async scanArrivals(failed: (version: number, err: unknown) => void): Promise<number[]> {
    const fresh: number[] = []
    const versions = this.directory.versions()
    for (const version of versions) {
      if (this.metas.has(version) || this.reserved.has(version)) continue
      this.reserved.add(version) // an upload of this number waits for no scan: it is refused as existing
      try {
        const bytes = await this.copies.read(version, this.directory)
        if (!bytes) continue
        const description = this.directory.readMeta(version)?.description
        this.write(versionMeta(version, await sha256HexYielding(bytes), bytes.byteLength, 'directory', typeof description === 'string' ? description : null))
        fresh.push(version)
      } catch (err) {
        failed(version, err) // the versions after it still arrive
      } finally {
        this.reserved.delete(version)
      }
    }
    this.copies.retain((version) => !this.metas.has(version) && versions.includes(version))
    return fresh
  }

  /** Whether a scan left a model file being copied in for a later one: the registry scans again after SETTLE_MS, whatever the watch sees. */
  copyingIn(): boolean {
    return this.copies.any
  }

  /**
   * Stores a new version durably (state loading) and returns its meta, hashing and writing off the event
   * loop. Its number is taken before the first await. Throws VersionExistsError. Once renamed into
   * place it is stored: a failed sync of the directory after that goes to `unsynced`, undoing nothing.
   */
  async add(bytes: Uint8Array, arrival: Arrival, unsynced?: (version: number, err: unknown) => void): Promise<VersionMeta> {
    const version = arrival.version || this.next()
    if (!Number.isSafeInteger(version) || version < 1) throw new GatewayError('BAD_REQUEST', `version ${version} is not an integer from 1 to 2^53 - 1`)
    if (this.reserved.has(version) || this.metas.has(version)) throw new VersionExistsError(version)
    this.reserved.add(version)
    try {
      const meta = versionMeta(version, await sha256HexYielding(bytes), bytes.byteLength, arrival.source, arrival.description ?? null)
      const syncError = await this.directory.store(bytes, meta)
      this.metas.set(version, meta)
      if (syncError) unsynced?.(version, syncError)
      return meta
    } finally {
      this.reserved.delete(version)
    }
  }

  /** The number of a version 0: the next after the highest known (stored, or being stored). */
  private next(): number {
    const highest = Math.max(0, ...this.directory.versions(), ...this.metas.keys(), ...this.reserved)
    if (highest >= MAX_VERSION) throw new GatewayError('BAD_REQUEST', `model "${this.name}" has version ${highest}, the highest a version can be (2^53 - 1): there is no next one to number`)
    return highest + 1
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

  get(version: number): VersionMeta | undefined {
    return this.metas.get(version)
  }

  list(): VersionMeta[] {
    return [...this.metas.values()].sort((a, b) => a.version - b.version)
  }

  update(version: number, patch: Partial<VersionMeta>): VersionMeta {
    const meta = { ...this.metas.get(version)!, ...patch }
    this.write(meta)
    return meta
  }

  private write(meta: VersionMeta): void {
    try {
      this.directory.writeMeta(meta)
    } catch (err) {
      // Renamed into place, only its sync failed: what readers see, so kept here as on disk (and thrown).
      if (err instanceof WrittenNotSynced) this.metas.set(meta.version, meta)
      throw err
    }
    this.metas.set(meta.version, meta)
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
