// watch_config with a config path that is a symlink to a file in another directory (a shared
// config, a checkout elsewhere): an edit of the file it points to reloads, whether written in
// place or replaced as editors do, and so does pointing the link at another file, whose edits
// then reload too, and so does repointing a link in the middle of a chain of them. Real
// file-system watches; each step awaits the reload's log line.
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigFile } from '../../src/config/load.ts'
import { Gateway } from '../../src/gateway.ts'
import { startReloadTriggers, type ReloadTriggers } from '../../src/reload/index.ts'
import type { Logger } from '../../src/types.ts'
import '../starter/scripted.ts'
import { tempDir } from '../temp-dirs.ts'

const yaml = (description: string): string => `
admin: { watch_config: true }
models:
  a: { kind: scripted }
ensembles:
  e: { description: ${description}, strategy: deadline-fallback, models: [a] }
`

let waiting: ((err?: Error) => void) | undefined
function line(obj: unknown, msg: string): void {
  if (msg === 'config reloaded') waiting?.()
  if (msg.startsWith('config reload rejected')) waiting?.(new Error(JSON.stringify(obj)))
}
const log: Logger = { info: line, warn: line, error: line }
/** Resolves at the next "config reloaded" line; a rejected reload fails the test with its errors. */
const reloaded = (): Promise<void> => new Promise<void>((resolve, reject) => (waiting = (err) => (err ? reject(err) : resolve())))

const linkDir = tempDir('specserve-watch-link-')
const realDir = tempDir('specserve-watch-real-')
const otherDir = tempDir('specserve-watch-other-')
const link = join(linkDir, 'gateway.yaml')
const real = join(realDir, 'shared.yaml')
let gateway: Gateway
let triggers: ReloadTriggers

beforeAll(async () => {
  writeFileSync(real, yaml('ONE'))
  symlinkSync(real, link)
  gateway = new Gateway(loadConfigFile(link))
  await gateway.load()
  triggers = startReloadTriggers(gateway, log, 20)
})

afterAll(async () => {
  triggers?.stop()
  await gateway?.close()
})

const description = (): string | undefined => gateway.config.ensembles.get('e')?.description

/** Makes `change`, awaits the reload it causes, and returns the description the gateway serves then. */
async function afterReload(change: () => void): Promise<string | undefined> {
  const next = reloaded()
  change()
  await next
  return description()
}

/** Points the link at `target` as tools do: a new link renamed over the old one. */
function pointLinkAt(target: string): void {
  symlinkSync(target, `${link}.new`)
  renameSync(`${link}.new`, link)
}

describe('watch_config on a symlinked config', () => {
  it('reloads when the file the link points to is written in place, or replaced by a rename', async () => {
    expect(await afterReload(() => writeFileSync(real, yaml('TWO')))).toBe('TWO')

    const replaced = (): void => {
      writeFileSync(`${real}.swp`, yaml('THREE'))
      renameSync(`${real}.swp`, real)
    }
    expect(await afterReload(replaced)).toBe('THREE')
  })

  it('follows the link to another file, and reloads on that file\'s edits', async () => {
    const other = join(otherDir, 'next.yaml')
    writeFileSync(other, yaml('FOUR'))
    expect(await afterReload(() => pointLinkAt(other))).toBe('FOUR')

    expect(await afterReload(() => writeFileSync(other, yaml('FIVE')))).toBe('FIVE')
  })

  it('watches a target below the link\'s directory (conf/), and keeps watching after the file was gone a moment', async () => {
    const conf = join(linkDir, 'conf')
    mkdirSync(conf)
    const below = join(conf, 'gateway.yaml')
    writeFileSync(below, yaml('SIX'))
    expect(await afterReload(() => pointLinkAt(below))).toBe('SIX')

    expect(await afterReload(() => writeFileSync(below, yaml('SEVEN')))).toBe('SEVEN')

    // Removed, then written again (a tool that deletes before it writes): later edits still reload.
    rmSync(below)
    expect(await afterReload(() => writeFileSync(below, yaml('EIGHT')))).toBe('EIGHT')
    expect(await afterReload(() => writeFileSync(below, yaml('NINE')))).toBe('NINE')
  })

  it('watches every link of a chain: repointing the link in the middle reloads, and so do edits of the file it then names', async () => {
    const middle = join(tempDir('specserve-watch-middle-'), 'current.yaml')
    const first = join(tempDir('specserve-watch-v1-'), 'gateway.yaml')
    const second = join(tempDir('specserve-watch-v2-'), 'gateway.yaml')
    writeFileSync(first, yaml('TEN'))
    writeFileSync(second, yaml('ELEVEN'))
    symlinkSync(first, middle)
    expect(await afterReload(() => pointLinkAt(middle))).toBe('TEN')

    // As `ln -sfn` does it: a new link renamed over the one in the middle.
    const repointMiddle = (): void => {
      symlinkSync(second, `${middle}.new`)
      renameSync(`${middle}.new`, middle)
    }
    expect(await afterReload(repointMiddle)).toBe('ELEVEN')
    expect(await afterReload(() => writeFileSync(second, yaml('TWELVE')))).toBe('TWELVE')
  })
})
