// The file watch behind admin.watch_config. Directories are watched, not the file: editors
// and Kubernetes ConfigMaps replace the file (rename, symlink swap) rather than write it in
// place, and a watch on the file itself follows the old inode. A config path that is a
// symlink to a file in another directory (config.yaml -> /srv/shared/gateway.yaml) changes
// where it points to, so that directory is watched too, and watched again elsewhere when
// the link is pointed at another file.
import { realpathSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname, isAbsolute, relative, sep } from 'node:path'

export interface ConfigWatch {
  close(): void
}

/** Where the config's content is: the file a symlink chain ends at; undefined while it is gone (being replaced, or a link left dangling). */
function realFile(file: string): string | undefined {
  try {
    return realpathSync(file)
  } catch {
    return undefined
  }
}

/**
 * Whether a change in `other` shows in `dir` itself: `dir`, or Kubernetes' `..data/` and its
 * timestamped `..2024_…` directories below it, which are swapped there whole (a watch on one
 * would only see it deleted). Another directory below `dir` (conf/) is not watched with it.
 */
function shownIn(dir: string, other: string): boolean {
  const rel = relative(dir, other)
  return rel === '' || (rel.startsWith('..') && !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)))
}

/**
 * Calls `changed` on every event that may concern the config (the caller debounces and
 * compares content); `failed` when a watch stops or cannot start (SIGHUP still reloads).
 */
export function watchConfig(file: string, changed: () => void, failed: (err: unknown, dir: string) => void): ConfigWatch {
  const dir = dirname(file)
  let target = realFile(file) ?? file
  let targetWatch: { dir: string; watcher: FSWatcher } | undefined
  const open = (watched: string, wanted: (name: string | null) => boolean): FSWatcher | undefined => {
    try {
      const watcher = watch(watched, { persistent: false }, (_event, name) => {
        if (!wanted(name)) return
        follow()
        changed()
      })
      watcher.on('error', (err) => failed(err, watched))
      return watcher
    } catch (err) {
      failed(err, watched)
      return undefined
    }
  }
  /** Watches the directory of the file the link points at now, when the link's own directory does not show its changes. */
  const follow = (): void => {
    // Gone for now: what is watched stays watched, where it may come back (a directory replaced whole, a file rewritten).
    const real = realFile(file)
    if (real === undefined) return
    target = real
    const wanted = shownIn(dir, dirname(target)) ? undefined : dirname(target)
    if (wanted === targetWatch?.dir) return
    targetWatch?.watcher.close()
    targetWatch = undefined
    if (wanted === undefined) return
    const watcher = open(wanted, (name) => name === null || name === basename(target))
    if (watcher) targetWatch = { dir: wanted, watcher }
  }
  // In the link's directory: the link itself, the file it points to when that is beside it, and Kubernetes' "..data" swap.
  const linkWatch = open(dir, (name) => name === null || name === basename(file) || name === basename(target) || name.startsWith('..'))
  follow()
  return {
    close() {
      linkWatch?.close()
      targetWatch?.watcher.close()
    },
  }
}
