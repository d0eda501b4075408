// Paths written in a config file. YAML reads `~/spool` as a plain string, so without this a
// `spool_dir: ~/spool` made a directory named `~` beside the config (and a later `rm -rf ~`
// in that directory is a bad day): `~` and `~/…` mean the home directory, as in a shell.
import { homedir } from 'node:os'
import { existsSync, mkdirSync, rmdirSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** `~` and `~/…` under the user's home; any other relative path against the config file's directory. */
export function configPath(baseDir: string, path: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2))
  return resolve(baseDir, path)
}

/**
 * The file in the way of making the directory `path`: `path` itself or its nearest existing
 * ancestor, when that is not a directory; undefined when nothing is in the way as far as a
 * look tells. Serve makes a repository or a spool directory, a file in the way fails its start.
 */
export function fileInTheWay(path: string): string | undefined {
  for (let at = path; ; at = dirname(at)) {
    let stat: Stats | undefined
    try {
      stat = statSync(at, { throwIfNoEntry: false })
    } catch (err) {
      // Node before 24 threw ENOTDIR for a file above (found further up); Node 24 returns undefined. Anything else (no permission): not judged here.
      if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') return undefined
    }
    if (stat) return stat.isDirectory() ? undefined : at
    if (dirname(at) === at) return undefined
  }
}

/** Why the directory `path` cannot be made (fileInTheWay), or undefined. */
export function directoryProblem(path: string): string | undefined {
  const file = fileInTheWay(path)
  if (file === undefined) return undefined
  return file === path ? `${path} is not a directory` : `${file} is a file, not a directory: ${path} cannot be made under it`
}

/**
 * mkdir -p `dir`, one missing component at a time: a recursive mkdirSync never returns on
 * some paths (/proc/x: procfs answers ENOENT, and Node retries for ever). All or nothing:
 * on a failure what it made is removed and the error thrown. Returns the directories made,
 * outermost first.
 */
export function makeDirs(dir: string): string[] {
  const missing: string[] = []
  for (let at = resolve(dir); !existsSync(at) && dirname(at) !== at; at = dirname(at)) missing.unshift(at)
  const made: string[] = []
  try {
    for (const path of missing) {
      mkdirSync(path)
      made.push(path)
    }
  } catch (err) {
    removeDirs(made)
    throw err
  }
  return made
}

/** Directories makeDirs made, removed innermost first, each only while empty. */
export function removeDirs(made: readonly string[]): void {
  for (const path of [...made].reverse()) {
    try {
      rmdirSync(path)
    } catch {
      // Not empty: what was written in it stays.
    }
  }
}

/**
 * makeDirs(`dir`), its failure (a file in the way, no permission) naming the config key that
 * placed it there, not only the errno; returns the first directory made, as mkdirSync does.
 */
export function mkdirKeyed(dir: string, key: string): string | undefined {
  try {
    return makeDirs(dir)[0]
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    throw Object.assign(new Error(`${key}: cannot make the directory ${dir}: ${message}`, { cause: err }), { code })
  }
}
