// Paths written in a config file. YAML reads `~/spool` as a plain string, so without this a
// `spool_dir: ~/spool` made a directory named `~` beside the config (and a later `rm -rf ~`
// in that directory is a bad day): `~` and `~/…` mean the home directory, as in a shell.
import { homedir } from 'node:os'
import { mkdirSync, statSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'

/** `~` and `~/…` under the user's home; any other relative path against the config file's directory. */
export function configPath(baseDir: string, path: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2))
  return resolve(baseDir, path)
}

/**
 * Why the directory `path` cannot be made, or undefined: it is one, or it can be as far as a
 * look tells (its nearest existing ancestor is a directory). Serve makes a repository or a
 * spool directory with mkdir, which a regular file in the way fails at start.
 */
export function directoryProblem(path: string): string | undefined {
  for (let at = path; ; at = dirname(at)) {
    let stat: Stats | undefined
    try {
      stat = statSync(at, { throwIfNoEntry: false })
    } catch (err) {
      // ENOTDIR: a part above is a file, found further up. Anything else (no permission): not judged here.
      if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') return undefined
    }
    if (stat) return stat.isDirectory() ? undefined : at === path ? `${path} is not a directory` : `${at} is a file, not a directory: ${path} cannot be made under it`
    if (dirname(at) === at) return undefined
  }
}

/**
 * mkdir -p `dir`, its failure (a file in the way, no permission) naming the config key that
 * placed it there, not only the errno; returns the first directory made, as mkdirSync does.
 */
export function mkdirKeyed(dir: string, key: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true })
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    throw Object.assign(new Error(`${key}: cannot make the directory ${dir}: ${message}`, { cause: err }), { code })
  }
}
