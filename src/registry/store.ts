// The repository on disk, the TF Serving / Triton layout: <repository>/<model>/<version>/
// holding model.onnx and meta.json (written by specserve: state, source, times, gate
// results). Every write is a temporary file or directory renamed into place, so a crash
// leaves the old content or the new, never half of it: a version directory appears only
// once its model file is complete, and meta.json is always whole. The directory holding a
// rename is synced too, so a store that was acknowledged survives a power loss.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { errorCode, isWithin, syncDirectory, syncDirectorySync, syncParents, writeAtomically } from '../durable.ts'
import { mkdirKeyed } from '../config/paths.ts'
import { sha256Hex } from './sha256.ts'
import { parseVersion, type VersionMeta } from './version-meta.ts'

export const MODEL_FILE = 'model.onnx'
const META_FILE = 'meta.json'
/** Versions being stored: renamed to their number once complete; left over by a crash, removed at open. */
const INCOMING = '.incoming-'
/** writeAtomically's temporary files (`<file>.tmp-<pid>-<hex>`); left over by a crash, removed at open. */
const TEMPORARY = /\.tmp-\d+-[0-9a-f]+$/

const metaText = (meta: VersionMeta): string => `${JSON.stringify(meta, null, 2)}\n`

/** A new file in a directory of its own (renamed into place whole afterwards): created, never overwritten, and fsynced (flush). */
const NEW_SYNCED = { flag: 'wx', flush: true } as const

/** rename(2) refuses to replace a non-empty directory: two stores of one version cannot both win. */
const existsError = (err: unknown, version: number): unknown => (errorCode(err) === 'ENOTEMPTY' || errorCode(err) === 'EEXIST' ? new VersionExistsError(version) : err)

/** Why a version whose model file was deleted is rejected. */
export const GONE = 'its model file is gone'

/** One model's directory in the repository. */
export class ModelDirectory {
  readonly dir: string
  /** The first directory open() created (the repository itself, on a first run), if it created any. */
  private createdFrom: string | undefined

  constructor(repository: string, model: string) {
    this.dir = join(repository, model)
  }

  /**
   * Creates the directory and removes what a crash left half-written: stores (.incoming-*) and
   * meta.json temporaries. True if the directory was created.
   */
  open(): boolean {
    const created = this.create()
    for (const name of readdirSync(this.dir)) if (name.startsWith(INCOMING)) rmSync(join(this.dir, name), { recursive: true, force: true })
    for (const version of this.versions()) {
      const dir = join(this.dir, String(version))
      let names: string[]
      try {
        names = readdirSync(dir)
      } catch {
        continue // not a directory: the scan ignores it too
      }
      for (const name of names) if (TEMPORARY.test(name)) rmSync(join(dir, name), { force: true })
    }
    return created
  }

  /** Creates the directory if it is not there (durably); true if it was created. Nothing in it is touched. */
  create(): boolean {
    const from = mkdirKeyed(this.dir, 'repository.path')
    if (from === undefined) return false
    this.createdFrom = from
    syncParents(this.dir, from)
    return true
  }

  /**
   * Takes back a directory open() created: the versions given (ours), then the directory and
   * the parents open() created for it, each only while empty: what an operator put there stays,
   * and the directories holding it. The one the walk stops at (it may have lost an entry) is synced.
   */
  removeCreated(ours: readonly number[]): void {
    for (const version of ours) rmSync(join(this.dir, String(version)), { recursive: true, force: true })
    const from = this.createdFrom
    this.createdFrom = undefined
    if (from === undefined) return
    let dir = this.dir
    for (; isWithin(from, dir); dir = dirname(dir)) {
      try {
        rmdirSync(dir)
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') break // not empty (or not ours to remove)
      }
    }
    syncDirectorySync(dir, true)
  }

  /** Removes one version's directory, model file and meta.json. */
  removeVersion(version: number): void {
    rmSync(join(this.dir, String(version)), { recursive: true, force: true })
    syncDirectorySync(this.dir)
  }

  modelFile(version: number): string {
    return join(this.dir, String(version), MODEL_FILE)
  }

  has(version: number): boolean {
    return existsSync(join(this.dir, String(version)))
  }

  /** Version directories (names 1..MAX_VERSION), ascending. */
  versions(): number[] {
    let names: string[]
    try {
      names = readdirSync(this.dir)
    } catch {
      return []
    }
    return names.flatMap((name) => parseVersion(name) ?? []).sort((a, b) => a - b)
  }

  /** meta.json of a version; undefined when absent (a directory someone copied in) or unreadable. */
  readMeta(version: number): VersionMeta | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, String(version), META_FILE), 'utf8')) as VersionMeta
    } catch {
      return undefined
    }
  }

  writeMeta(meta: VersionMeta): void {
    writeAtomically(join(this.dir, String(meta.version), META_FILE), metaText(meta))
  }

  hasModel(version: number): boolean {
    return existsSync(this.modelFile(version))
  }

  /** The model file's bytes, or undefined when it cannot be read (absent, being copied in, or any read error). */
  readModel(version: number): Buffer | undefined {
    try {
      return this.modelBytes(version)
    } catch {
      return undefined
    }
  }

  /** The model file's size and mtime (ms), or undefined when it cannot be read (absent, or any stat error). */
  async modelStat(version: number): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const { size, mtimeMs } = await stat(this.modelFile(version))
      return { size, mtimeMs }
    } catch {
      return undefined
    }
  }

  /** readModel off the event loop. */
  async readModelAsync(version: number): Promise<Buffer | undefined> {
    try {
      return await readFile(this.modelFile(version))
    } catch {
      return undefined
    }
  }

  /**
   * How a version's model file is damaged for good (gone, or its bytes no longer `sha256`; not
   * known: only gone), null if it is not. A read that fails otherwise (EACCES, EIO, EMFILE) is
   * the box, not the file.
   */
  damage(version: number, sha256: string | undefined): string | null {
    let bytes: Buffer
    try {
      bytes = this.modelBytes(version)
    } catch (err) {
      return errorCode(err) === 'ENOENT' ? GONE : null
    }
    return sha256 === undefined || sha256Hex(bytes) === sha256 ? null : 'its model file no longer matches the sha256 it was stored with'
  }

  /** The model file's bytes; throws the read's error (ENOENT: no file; EACCES, EIO: the box). */
  modelBytes(version: number): Buffer {
    return readFileSync(this.modelFile(version))
  }

  /**
   * Stores a new version: model file and meta written and synced in a directory of their
   * own, then renamed to the version's number. Throws VersionExistsError if the version exists.
   * Off the event loop (the file system's thread pool): a large model holds no request up.
   * Once renamed, the version is stored: a failed sync of the model's directory after that is
   * returned, not thrown (the version is there, and a retry would store it twice).
   */
  async store(bytes: Uint8Array, meta: VersionMeta): Promise<Error | undefined> {
    const final = join(this.dir, String(meta.version))
    if (existsSync(final)) throw new VersionExistsError(meta.version)
    const incoming = this.incoming(meta.version)
    await mkdir(incoming)
    try {
      await writeFile(join(incoming, MODEL_FILE), bytes, NEW_SYNCED)
      await writeFile(join(incoming, META_FILE), metaText(meta), NEW_SYNCED)
      await syncDirectory(incoming)
      await rename(incoming, final)
    } catch (err) {
      await rm(incoming, { recursive: true, force: true })
      throw existsError(err, meta.version)
    }
    return syncDirectory(this.dir).then(() => undefined, (err: unknown) => err as Error)
  }

  /** store(), blocking: only at open, before anything serves (a seed imported as version 1, a test's repository). */
  storeSync(bytes: Uint8Array, meta: VersionMeta): void {
    const final = join(this.dir, String(meta.version))
    if (existsSync(final)) throw new VersionExistsError(meta.version)
    const incoming = this.incoming(meta.version)
    mkdirSync(incoming)
    try {
      writeFileSync(join(incoming, MODEL_FILE), bytes, NEW_SYNCED)
      writeFileSync(join(incoming, META_FILE), metaText(meta), NEW_SYNCED)
      syncDirectorySync(incoming)
      renameSync(incoming, final)
    } catch (err) {
      rmSync(incoming, { recursive: true, force: true })
      throw existsError(err, meta.version)
    }
    syncDirectorySync(this.dir)
  }

  private incoming(version: number): string {
    return join(this.dir, `${INCOMING}${version}-${randomBytes(4).toString('hex')}`)
  }

  /** Removes a version's model file (retired beyond keep_versions); its meta.json stays as history. */
  dropModel(version: number): void {
    rmSync(this.modelFile(version), { force: true })
  }
}

export class VersionExistsError extends Error {
  readonly version: number
  constructor(version: number) {
    super(`version ${version} exists already`)
    this.name = 'VersionExistsError'
    this.version = version
  }
}
