// Where serve's REST listener runs, announced in a file for the health probe: serve writes it
// once bound, and the probe asks that listener rather than the one the config names now.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ProbeTarget } from './health.ts'

/**
 * Where serve writes the REST listener it runs, for the probe (the Docker image sets it). The
 * probe asks that listener, not the one the config file names now: the file is watched, and an
 * edit since the start (another port, TLS turned on: applied at the next restart) or a typo
 * (a reload refused) does not move the running gateway, so it must not fail its health check.
 * The file names the config and the process: the probe uses it only while that process lives
 * (one gone says nothing), and, when it was asked about a config, only for that config (a
 * second serve of another config, writing the same file, says nothing about the first). The
 * image's HEALTHCHECK asks about the container's gateway whatever its config (`docker run
 * IMAGE serve -c /conf/x.yaml`): it takes any config's (health.ts, `--announced`). Without it
 * (not set, not written yet, unwritable, another config) the probe reads the config.
 */
export const LISTENER_FILE_ENV = 'SPECSERVE_LISTENER_FILE'

/** What serve announces: its listener, for which config, by which process. */
interface Announced extends ProbeTarget {
  readonly config: string
  readonly pid: number
}

/**
 * serve, as it starts: a file a previous run of this container left says nothing yet (its pid
 * may well be this process's: the container's first), so it goes; one another running process
 * wrote stays, replaced only once this one is bound (a second serve that cannot bind must not
 * hide the running gateway from its probe). The error's message if it cannot go.
 */
export function forgetListener(): string | undefined {
  const file = process.env[LISTENER_FILE_ENV]
  if (!file) return undefined
  const owner = readAnnounced(file)?.pid
  if (owner !== process.pid && running(owner)) return undefined
  try {
    rmSync(file, { force: true })
    return undefined
  } catch (err) {
    return `cannot remove ${LISTENER_FILE_ENV}=${file}: ${(err as Error).message}`
  }
}

/** serve, once its REST listener is bound: writes where it is (replaced whole: a probe never reads half); the error's message if it cannot. */
export function announceListener(target: ProbeTarget, config: string): string | undefined {
  const file = process.env[LISTENER_FILE_ENV]
  if (!file) return undefined
  try {
    const announced: Announced = { ...target, config: resolve(config), pid: process.pid }
    writeFileSync(`${file}.tmp`, JSON.stringify(announced))
    renameSync(`${file}.tmp`, file)
    return undefined
  } catch (err) {
    return `cannot write ${LISTENER_FILE_ENV}=${file} (specserve health reads the config instead): ${(err as Error).message}`
  }
}

/** The listener serve announced for `config` (undefined: for any config), while that process runs; undefined otherwise. */
export function announcedTarget(config: string | undefined): ProbeTarget | undefined {
  const file = process.env[LISTENER_FILE_ENV]
  if (!file) return undefined
  // Not there (yet) or unreadable: the config says where.
  const t = readAnnounced(file)
  const valid = typeof t?.host === 'string' && Number.isInteger(t.port) && typeof t.tls === 'boolean' && typeof t.mutualTls === 'boolean'
  if (!valid || (config !== undefined && t?.config !== resolve(config)) || !running(t.pid)) return undefined
  return { host: t.host!, port: t.port!, tls: t.tls!, mutualTls: t.mutualTls! }
}

/** What a listener file holds, unchecked; undefined (or null) if there is none to read. */
function readAnnounced(file: string): Partial<Announced> | null | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Partial<Announced> | null
  } catch {
    return undefined
  }
}

/** Whether process `pid` exists (signal 0 checks without sending; EPERM: it exists, under another user). */
function running(pid: unknown): boolean {
  if (!Number.isInteger(pid)) return false
  try {
    process.kill(pid as number, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
