// How versions arrive while the gateway runs, each recorded `loading` and then judged in turn
// with the registry's other operations: version directories copied into the repository, found
// by a rescan (at start, on each change the watch sees, and again once a model file still being
// copied in may have settled), and uploads or model stream records, stored at once.
import { silentLogger, type Logger } from '../types.ts'
import { SETTLE_MS } from './copy-in.ts'
import { sha256HexYielding } from './sha256.ts'
import { VersionExistsError } from './store.ts'
import type { Arrival } from './stored-versions.ts'
import type { VersionMeta } from './version-meta.ts'
import { versionExists } from './version-rules.ts'
import type { ModelVersions } from './versions.ts'
import { watchRepository, type RepositoryWatch } from './watch.ts'

/** Judges a stored version in turn with the registry's other operations; resolves with its final state. */
export type Judge = (versions: ModelVersions, version: number) => Promise<VersionMeta>

export class RepositoryArrivals {
  /** Where the server logs, once the registry is attached. */
  log: Logger = silentLogger
  private readonly models: ReadonlyMap<string, ModelVersions>
  private readonly judge: Judge
  private closed = false
  private watcher: RepositoryWatch | undefined
  /** The rescan due for a model file a scan saw still being copied in. */
  private settling: NodeJS.Timeout | undefined

  constructor(models: ReadonlyMap<string, ModelVersions>, judge: Judge) {
    this.models = models
    this.judge = judge
  }

  /** Rescans on each change the watch sees in the repository. */
  watch(path: string): void {
    this.watcher = watchRepository(path, () => void this.rescanLogged(), this.log)
  }

  /** Version directories not seen yet, and versions stored but never judged, go through the pipeline. */
  async rescan(): Promise<void> {
    await Promise.all([...this.models.values()].map((versions) => this.scan(versions)))
  }

  /** A rescan reads and writes the repository: a failing disk is logged, never thrown (from the watcher's timer, at start). */
  rescanLogged(): Promise<void> {
    return this.rescan().catch((err: unknown) => this.log.error({ err }, 'repository rescan failed'))
  }

  /** One model's version directories copied in: recorded, then judged in turn. Resolves once judged. */
  async scan(versions: ModelVersions): Promise<void> {
    const failed = (version: number, err: unknown): void => this.log.error({ err, model: versions.name, version }, 'repository version not recorded; tried again at the next scan')
    const fresh = await versions.scanArrivals(failed)
    // A model file still being copied in: looked at again once it may have settled, as the last
    // write of a copy may have come before the watch's last scan (and with no watch, none comes).
    if (versions.copyingIn()) this.rescanLater()
    await Promise.all(fresh.map((version) => this.judge(versions, version).catch(() => undefined)))
  }

  /** One rescan SETTLE_MS from now, unless one is due already or arrivals are closed. */
  private rescanLater(): void {
    if (this.closed || this.settling) return
    this.settling = setTimeout(() => {
      this.settling = undefined
      void this.rescanLogged()
    }, SETTLE_MS)
  }

  /** An upload's (or a model stream record's) bytes: stored, then judged in turn. Resolves with the version's final state. */
  async store(versions: ModelVersions, bytes: Uint8Array, arrival: Arrival): Promise<VersionMeta> {
    const name = versions.name
    // Stored at once (a 409 for an existing version is the caller's answer), judged in turn.
    let meta: VersionMeta
    try {
      meta = await versions.add(bytes, arrival, (version, err) => this.log.error({ err, model: name, version }, 'model version stored, but its directory sync failed: it may not survive a power loss'))
    } catch (err) {
      if (!(err instanceof VersionExistsError)) throw err
      // The same bytes again for a version stored but never judged (its try was told NOT_READY:
      // a stop, a config the swap no longer matched): the retry it was told to make judges it.
      const stored = versions.get(arrival.version)
      if (stored?.state === 'loading' && stored.sha256 === (await sha256HexYielding(bytes))) return this.judge(versions, arrival.version)
      throw versionExists(name, arrival.version)
    }
    this.log.info({ model: name, version: meta.version, source: arrival.source, sha256: meta.sha256 }, 'model version stored')
    return this.judge(versions, meta.version)
  }

  /** No rescan from now on: the watch stops, and the one due is dropped. */
  close(): void {
    this.closed = true
    this.watcher?.close()
    clearTimeout(this.settling)
  }
}
