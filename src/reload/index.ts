// Hot reload triggers: SIGHUP, a change of the config file, POST /admin/reload. Each
// re-reads the file, validates it fully (models loaded and checked off the hot path) and
// swaps it in; an invalid file is logged with every error and the running config stays.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadConfigFile, type GatewayConfig } from '../config/load.ts'
import { ConfigError, formatIssue, shownPath } from '../config/yaml.ts'
import { ErrorCatalogue, GatewayError } from '../errors.ts'
import type { Gateway } from '../gateway.ts'
import { modelWarnings } from '../model-warnings.ts'
import { lostRecord, lostText } from '../registry/compatible.ts'
import type { Logger } from '../types.ts'
import type { ReloadReport } from './plan.ts'
import { watchFile, type FileWatch } from './watch.ts'

export type { ReloadReport } from './plan.ts'


export type ReloadOutcome =
  | { readonly ok: true; readonly report: ReloadReport; readonly warnings: string[] }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string; readonly errors: string[] }

export async function reloadFromFile(gateway: Gateway, log: Logger): Promise<ReloadOutcome> {
  const file = gateway.config.file
  let config: GatewayConfig
  try {
    config = loadConfigFile(file)
  } catch (err) {
    gateway.reloads.rejected++ // the gateway never saw it
    return rejected(err, file, log)
  }
  try {
    const { outputsLost, ...report } = await gateway.reload(config)
    log.info({ file, ...report }, 'config reloaded')
    if (report.restartNeeded.length) log.warn({ sections: report.restartNeeded }, 'config sections changed that apply only after a restart')
    const shown = shownPath(file)
    const warnings = config.warnings.map((issue) => formatIssue(shown, issue))
    for (const warning of warnings) log.warn({ file }, warning)
    // An operator's reload is not refused for the outputs it takes from ensembles (a version it
    // pins, a model file it changes, an ensemble's members), but it is not silent either.
    if (outputsLost.length) {
      const message = `the reload takes outputs from ensembles: ${lostText(outputsLost)}`
      log.warn({ file, outputs_lost: lostRecord(outputsLost) }, message)
      warnings.push(message)
    }
    // The models this reload loaded get the word serve gives at start (an upstream that did not answer, say).
    for (const { model, path, message } of modelWarnings(gateway, [...report.models.added, ...report.models.changed])) {
      log.warn({ model }, message)
      warnings.push(formatIssue(shown, config.source.issue(path, message)))
    }
    return { ok: true, report, warnings }
  } catch (err) {
    return rejected(err, file, log)
  }
}


function rejected(err: unknown, file: string, log: Logger): ReloadOutcome {
  if (err instanceof ConfigError) {
    const shown = shownPath(file)
    const errors = err.issues.map((issue) => formatIssue(shown, issue))
    log.error({ file, errors }, 'config reload rejected; the running config keeps serving')
    return { ok: false, status: ErrorCatalogue.CONFIG_INVALID.http, code: 'CONFIG_INVALID', message: `${errors.length} error(s) in ${shown}; the running config keeps serving`, errors }
  }
  if (err instanceof GatewayError) return { ok: false, status: err.statusCode, code: err.code, message: err.message, errors: [] }
  log.error({ err }, 'config reload failed')
  return { ok: false, status: 500, code: 'INTERNAL', message: (err as Error).message, errors: [] }
}

function digest(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return null // mid-replace or gone: a later event reports the new file
  }
}

export interface ReloadTriggers {
  stop(): void
}

/** SIGHUP once the triggers stopped (the gateway drains for a stop): nothing to reload, and not a reason to end the drain. */
const ignoreHangup = (): void => {}

/**
 * SIGHUP always; the file watch (watch.ts) when `admin.watch_config` is on. Events are
 * debounced and a reload runs only when the content changed.
 */
export function startReloadTriggers(gateway: Gateway, log: Logger, debounceMs = 200): ReloadTriggers {
  const file = gateway.config.file
  let last = digest(file)
  // A reload asked for before the first load is done would be refused NOT_READY and lost:
  // it is queued (one, however many were asked for) and runs once the load has ended. The
  // CLI starts the load once outputs attach, so this waits for it rather than starting it.
  let queued = false
  let stopped = false
  const reload = (): void => {
    if (gateway.status === 'loading') {
      if (queued) return
      queued = true
      log.info({ file }, 'config reload queued: the first load is still running; it applies once that is done')
      void gateway.loadEnded().then(() => {
        queued = false
        if (stopped) return
        if (gateway.status === 'ready') reload()
        else log.warn({ file, state: gateway.status }, 'queued config reload dropped: the gateway did not become ready')
      })
      return // the digest stays: the file has not been applied yet
    }
    last = digest(file)
    void reloadFromFile(gateway, log)
  }
  const onHangup = (): void => {
    log.info({ file }, 'SIGHUP: reloading config')
    reload()
  }
  process.on('SIGHUP', onHangup)
  let watcher: FileWatch | undefined
  let timer: NodeJS.Timeout | undefined
  if (gateway.config.admin.watch_config) {
    const check = (): void => {
      const now = digest(file)
      if (now === null || now === last) return
      log.info({ file }, 'config file changed: reloading')
      reload()
    }
    const changed = (): void => {
      clearTimeout(timer)
      timer = setTimeout(check, debounceMs)
    }
    watcher = watchFile(file, changed, (err, dir) => log.warn({ err, file, dir }, 'cannot watch the config file, or its watch stopped; SIGHUP still reloads'))
  }
  return {
    stop() {
      process.off('SIGHUP', onHangup)
      // With no listener node's default for SIGHUP ends the process at once: during the drain, it is ignored instead.
      if (!process.listeners('SIGHUP').includes(ignoreHangup)) process.on('SIGHUP', ignoreHangup)
      clearTimeout(timer)
      stopped = true
      watcher?.close()
    },
  }
}
