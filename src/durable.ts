// Durable file-system steps for the model repository and the calibration file: a file written
// whole (temporary, fsync, rename), and the directories holding a rename or a new directory
// fsynced, so what was acknowledged survives a power loss. Best effort where a platform refuses to sync a directory.
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { dirname, isAbsolute, relative, sep } from 'node:path'

/** Platforms that cannot fsync a directory say so with these; the rename is as durable as they make it. */
const DIRECTORY_SYNC_REFUSED = new Set(['EINVAL', 'EISDIR', 'EPERM', 'ENOTSUP'])

export const errorCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code

/** `path` with its links followed (directories too); `missing` while it, or a link on the way, is not there. */
export function realPathOr<T>(path: string, missing: T): string | T {
  try {
    return realpathSync(path)
  } catch {
    return missing
  }
}

/** Is `dir` `from` or inside it? (A name such as `..m` inside it is.) */
export function isWithin(from: string, dir: string): boolean {
  const rel = relative(from, dir)
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)
}

/** Syncs a directory after a rename in it (best effort: some platforms refuse to). `beyondOurs`: a parent that may be gone, or not the gateway's to open. */
export function syncDirectorySync(dir: string, beyondOurs = false): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch (err) {
    const code = errorCode(err) ?? ''
    if (!DIRECTORY_SYNC_REFUSED.has(code) && !(beyondOurs && (code === 'ENOENT' || code === 'EACCES'))) throw err
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * After `mkdir -p` of `dir`, whose first directory created was `from`: each one created is an
 * entry in its parent, synced, or a power loss could take it (and what is stored in it later) away.
 */
export function syncParents(dir: string, from: string): void {
  const top = dirname(from)
  for (let parent = dirname(dir); ; parent = dirname(parent)) {
    syncDirectorySync(parent, parent === top)
    if (parent === top || dirname(parent) === parent) return
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch (err) {
    if (!DIRECTORY_SYNC_REFUSED.has(errorCode(err) ?? '')) throw err
  } finally {
    await handle?.close()
  }
}

/** The file was written and renamed into place (it is what readers see), but its directory's fsync failed: it may not survive a power loss. */
export class WrittenNotSynced extends Error {
  constructor(file: string, cause: unknown) {
    super(`${file} is written, but its directory could not be synced: ${(cause as Error).message}`, { cause })
    this.name = 'WrittenNotSynced'
  }
}

/** A temporary name beside `file`: the same directory (so the rename stays on one file system), a random suffix. */
const tempBeside = (file: string): string => `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`

/** Writes `bytes` to `file` durably: a temporary file in the same directory, fsync, rename, directory fsync (WrittenNotSynced if that fails). */
export function writeAtomically(file: string, bytes: Uint8Array | string): void {
  const temp = tempBeside(file)
  try {
    writeFileSync(temp, bytes, { flush: true })
    renameSync(temp, file)
  } catch (err) {
    rmSync(temp, { force: true }) // a full disk must not leave a half file behind it
    throw err
  }
  try {
    syncDirectorySync(dirname(file))
  } catch (err) {
    throw new WrittenNotSynced(file, err)
  }
}

/**
 * Writes several files all or none, as far as a file system allows, each durably: a name that is
 * (or links to) something not a file, a directory, is refused (EEXIST) before anything is written;
 * a link is written through (its target replaced, the link kept), the temporary file beside the
 * target; every file is written and flushed under a temporary name, then the set renamed into
 * place, then their directories synced. A failure before the renames removes the temporary files
 * and leaves the files there as they were. Throws WrittenNotSynced when only a directory sync failed.
 */
export function writeAllAtomically(files: readonly (readonly [file: string, bytes: Uint8Array | string])[]): void {
  const targets = files.map(([file]) => {
    const target = realPathOr(file, file)
    const stat = statSync(target, { throwIfNoEntry: false })
    if (stat && !stat.isFile()) throw Object.assign(new Error(`${file} is in the way: not a file`), { code: 'EEXIST' })
    return target
  })
  const temps: string[] = []
  try {
    files.forEach(([, bytes], i) => {
      const temp = tempBeside(targets[i]!)
      temps.push(temp)
      writeFileSync(temp, bytes, { flush: true })
    })
    temps.forEach((temp, i) => renameSync(temp, targets[i]!))
  } catch (err) {
    for (const temp of temps) rmSync(temp, { force: true })
    throw err
  }
  for (const dir of new Set(targets.map((target) => dirname(target)))) {
    try {
      syncDirectorySync(dir)
    } catch (err) {
      throw new WrittenNotSynced(dir, err)
    }
  }
}
