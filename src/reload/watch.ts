// The file watch behind admin.watch_config, and behind server.tls's certificate, key and
// client CA (src/security/tls.ts). Directories are watched, not the file: editors, Kubernetes
// ConfigMaps and Secrets replace the file (rename, symlink swap) rather than write it in
// place, and a watch on the file itself follows the old inode. A path that is a symlink to a
// file in another directory (config.yaml -> /srv/shared/gateway.yaml, tls.crt ->
// /etc/letsencrypt/archive/…) changes where it points to, so that directory is watched too,
// and watched again elsewhere when the link is pointed at another file. So is the directory of
// every link of a chain (config.yaml -> /etc/current.yaml -> /srv/v2.yaml): repointing the link
// in the middle changes the file as much as editing the file at the end.
import { readlinkSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname, relative, resolve } from 'node:path'
import { isWithin, realPathOr } from '../durable.ts'

export interface FileWatch {
  close(): void
}

/** Links past this many are a loop (the kernel gives up at 40 too). */
const MAX_LINKS = 40

/**
 * The paths the file is read through, as written: the path, each link it points to in turn
 * (a missing file too: the last link still names it), and the real file (directories that are
 * links resolved).
 */
function pathsOf(file: string): string[] {
  const paths = [file]
  let at = file
  for (let i = 0; i < MAX_LINKS; i++) {
    let next: string
    try {
      next = readlinkSync(at)
    } catch {
      break // not a link (the end), or gone for now
    }
    // A relative target is read from the link's real directory, as the kernel reads it (`..` of a linked directory is its target's parent).
    at = resolve(realPathOr(dirname(at), dirname(at)), next)
    paths.push(at)
  }
  // Where the file's content is: the file the chain ends at (undefined while it is gone).
  const real = realPathOr(file, undefined)
  if (real !== undefined && !paths.includes(real)) paths.push(real)
  return paths
}

/**
 * Whether a change in `other` shows in `dir` itself: `dir`, or Kubernetes' `..data/` and its
 * timestamped `..2024_…` directories below it, which are swapped there whole (a watch on one
 * would only see it deleted). Another directory below `dir` (conf/) is not watched with it.
 */
function shownIn(dir: string, other: string): boolean {
  const rel = relative(dir, other)
  return isWithin(dir, other) && (rel === '' || rel.startsWith('..'))
}

/**
 * Calls `changed` on every event that may concern `file` (the caller debounces and compares
 * content); `failed` when a watch stops or cannot start.
 */
export function watchFile(file: string, changed: () => void, failed: (err: unknown, dir: string) => void): FileWatch {
  const dir = dirname(file)
  /** Names in the file's own directory that concern it: the path, and what its chain has there. */
  let names = new Set([basename(file)])
  /** Other directories the chain passes through, each with the names of its paths there. */
  const others = new Map<string, { names: Set<string>; watcher: FSWatcher | undefined; failing: boolean }>()
  /** `quiet`: a failure to start was reported already (a retry at each change says it once). */
  const open = (watched: string, wanted: (name: string) => boolean, quiet = false): FSWatcher | undefined => {
    try {
      const watcher = watch(watched, { persistent: false }, (_event, name) => {
        if (name !== null && !wanted(name)) return
        follow()
        changed()
      })
      watcher.on('error', (err) => failed(err, watched))
      return watcher
    } catch (err) {
      if (!quiet) failed(err, watched)
      return undefined
    }
  }
  // The file's directory as written and as the kernel reads it (a file reached through a linked directory).
  const dirs = [dir, realPathOr(dir, dir)]
  /** Watches the directories the chain passes through now, and only those. */
  const follow = (): void => {
    const byDir = new Map<string, Set<string>>()
    for (const path of pathsOf(file)) {
      const at = dirname(path)
      // Its changes show in the file's own directory (Kubernetes' ..data swap): watched there.
      const key = dirs.some((d) => shownIn(d, at)) ? dir : at
      byDir.set(key, (byDir.get(key) ?? new Set()).add(basename(path)))
    }
    // A file gone for now (being replaced) is still in the chain: the link to it names it.
    names = byDir.get(dir)!
    byDir.delete(dir)
    for (const [other, entry] of others) {
      if (byDir.has(other)) continue
      entry.watcher?.close()
      others.delete(other)
    }
    for (const [other, wanted] of byDir) {
      let entry = others.get(other)
      if (entry) entry.names = wanted
      else others.set(other, (entry = { names: wanted, watcher: undefined, failing: false }))
      // A watch that could not start (the directory not there yet) is tried again at each change, and said once.
      const watched = entry
      watched.watcher ??= open(other, (name) => watched.names.has(name), watched.failing)
      watched.failing = watched.watcher === undefined
    }
  }
  // In the file's directory: the path itself, what its chain has beside it, and Kubernetes' "..data" swap.
  const linkWatch = open(dir, (name) => names.has(name) || name.startsWith('..'))
  follow()
  return {
    close() {
      linkWatch?.close()
      for (const entry of others.values()) entry.watcher?.close()
      others.clear()
    },
  }
}
