// Paths written in a config file. YAML reads `~/spool` as a plain string, so without this a
// `spool_dir: ~/spool` made a directory named `~` beside the config (and a later `rm -rf ~`
// in that directory is a bad day): `~` and `~/…` mean the home directory, as in a shell.
import { homedir } from 'node:os'
import { resolve } from 'node:path'

/** `~` and `~/…` under the user's home; any other relative path against the config file's directory. */
export function configPath(baseDir: string, path: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2))
  return resolve(baseDir, path)
}
