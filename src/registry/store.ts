// The repository on disk, the TF Serving / Triton layout: <repository>/<model>/<version>/
// holding model.onnx and meta.json (written by specserve: state, source, times, gate
// results). Every write is a temporary file or directory renamed into place, so a crash
// leaves the old content or the new, never half of it: a version directory appears only
// once its model file is complete, and meta.json is always whole.
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const VERSION_STATES = ['loading', 'serving', 'canary', 'ready', 'rejected', 'retired'] as const
export type VersionState = (typeof VERSION_STATES)[number]

export const VERSION_SOURCES = ['seed', 'directory', 'upload', 'kafka'] as const
export type VersionSource = (typeof VERSION_SOURCES)[number]

export interface GateReport {
  readonly passed: boolean
  /** Why it failed; null when it passed. */
  readonly reason: string | null
  readonly examples: { readonly passed: number; readonly total: number } | null
  readonly dataset: { readonly accuracy: number; readonly min_accuracy: number; readonly rows: number } | null
}

/** meta.json of one version, as GET /v1/models/{name}/versions shows it. */
export interface VersionMeta {
  readonly version: number
  readonly state: VersionState
  readonly source: VersionSource
  readonly sha256: string
  readonly size_bytes: number
  readonly description: string | null
  readonly created_at: string
  /** When it last started serving; null if it never did. */
  readonly serving_since: string | null
  /** Why it is rejected or retired. */
  readonly reason: string | null
  readonly gate: GateReport | null
  /** A canary rollout's outcome: promoted or rolled back, on what evidence. */
  readonly rollout?: { readonly decision: 'promoted' | 'rolled_back'; readonly at: string; readonly evidence: Readonly<Record<string, number | null>> } | null
}

export const MODEL_FILE = 'model.onnx'
const META_FILE = 'meta.json'
/** Versions being stored: renamed to their number once complete; left over by a crash, removed at open. */
const INCOMING = '.incoming-'

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Writes `bytes` to `file` durably: a temporary file in the same directory, fsync, rename. */
export function writeAtomically(file: string, bytes: Uint8Array | string): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  const fd = openSync(temp, 'w')
  try {
    writeFileSync(fd, bytes)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, file)
}

/** One model's directory in the repository. */
export class ModelDirectory {
  readonly dir: string

  constructor(repository: string, model: string) {
    this.dir = join(repository, model)
  }

  /** Creates the directory and removes what a crash left half-stored. */
  open(): void {
    mkdirSync(this.dir, { recursive: true })
    for (const name of readdirSync(this.dir)) if (name.startsWith(INCOMING)) rmSync(join(this.dir, name), { recursive: true, force: true })
  }

  modelFile(version: number): string {
    return join(this.dir, String(version), MODEL_FILE)
  }

  has(version: number): boolean {
    return existsSync(join(this.dir, String(version)))
  }

  /** Version directories (positive integer names), ascending. */
  versions(): number[] {
    let names: string[]
    try {
      names = readdirSync(this.dir)
    } catch {
      return []
    }
    return names.filter((n) => /^[1-9]\d{0,15}$/.test(n)).map(Number).sort((a, b) => a - b)
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
    writeAtomically(join(this.dir, String(meta.version), META_FILE), `${JSON.stringify(meta, null, 2)}\n`)
  }

  hasModel(version: number): boolean {
    return existsSync(this.modelFile(version))
  }

  readModel(version: number): Buffer | undefined {
    try {
      return readFileSync(this.modelFile(version))
    } catch {
      return undefined
    }
  }

  /**
   * Stores a new version: model file and meta written and synced in a directory of their
   * own, then renamed to the version's number. Throws if the version exists.
   */
  store(bytes: Uint8Array, meta: VersionMeta): void {
    const final = join(this.dir, String(meta.version))
    if (existsSync(final)) throw new VersionExistsError(meta.version)
    const incoming = join(this.dir, `${INCOMING}${meta.version}-${randomBytes(4).toString('hex')}`)
    mkdirSync(incoming)
    try {
      writeAtomically(join(incoming, MODEL_FILE), bytes)
      writeAtomically(join(incoming, META_FILE), `${JSON.stringify(meta, null, 2)}\n`)
      // rename(2) refuses to replace a non-empty directory: two stores of one version cannot both win.
      renameSync(incoming, final)
    } catch (err) {
      rmSync(incoming, { recursive: true, force: true })
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') throw new VersionExistsError(meta.version)
      throw err
    }
  }

  /** Removes a version's model file (retired beyond keep_versions); its meta.json stays as history. */
  dropModel(version: number): void {
    rmSync(this.modelFile(version), { force: true })
  }
}

export class VersionExistsError extends Error {
  constructor(version: number) {
    super(`version ${version} exists already`)
    this.name = 'VersionExistsError'
  }
}
