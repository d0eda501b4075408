// One repository model's versions as stored: each version's meta.json mirrored in memory (every
// change is written to meta.json first), and the versions arriving (uploads, directories copied
// in) numbered so that no two arrivals share one. ModelVersions (versions.ts) adds which one
// serves and the rules that pick one.
import { GatewayError } from '../errors.ts'
import { WrittenNotSynced } from '../durable.ts'
import { CopiesIn } from './copy-in.ts'
import { ModelDirectory, VersionExistsError } from './store.ts'
import { MAX_VERSION, type VersionMeta, type VersionSource } from './version-meta.ts'
import { sha256HexYielding } from './sha256.ts'
import { newMeta, versionMeta } from './version-rules.ts'

export interface Arrival {
  /** 0: the next after the highest known. */
  readonly version: number
  readonly source: VersionSource
  readonly description?: string | undefined
}

export class StoredVersions {
  readonly name: string
  readonly directory: ModelDirectory
  protected readonly metas = new Map<number, VersionMeta>()
  /**
   * Versions being stored (numbered, not on disk yet): taken at once, so two arrivals stored
   * at the same time never get one number, and a scan does not take one for a copied-in directory.
   */
  protected readonly reserved = new Set<number>()
  /** Model files copied in that a scan left for a later one (still being written). */
  private readonly copies = new CopiesIn()

  constructor(repository: string, name: string) {
    this.name = name
    this.directory = new ModelDirectory(repository, name)
  }

  /** At start: every version directory, with the meta.json a run before wrote; one without is an arrival (copied in while stopped). */
  protected readAll(): void {
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
}
