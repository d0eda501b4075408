// OpenTelemetry's own diagnostics in the gateway's log. Without a diag logger the SDK says
// nothing: an export refused (a collector answering 401), an endpoint that is down or wrong, a
// bad OTEL_* value the SDK read, all went unnoticed. A collector that stays down fails every
// export (every 5 s for spans, every interval for metrics), so a message is logged at most
// once a minute; its next line says how many were left out in between.
import { DiagLogLevel, type DiagLogger } from '@opentelemetry/api'
import type { Logger } from '../types.ts'

/** What of a pino logger is used (app.log, or the logger `serve` builds). */
export interface DiagLog extends Logger {
  debug(obj: object, msg: string): void
  trace(obj: object, msg: string): void
  /** pino's: a line its level drops is not described or counted (the SDK's debug lines run per request). */
  isLevelEnabled?(level: string): boolean
}

type Level = 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** A message repeated within this window after it was logged is counted, not logged. */
export const REPEAT_WINDOW_MS = 60_000
/** Distinct messages remembered at most (those whose window is over are forgotten first). */
const MAX_REMEMBERED = 100
/** The part of a collector's answer (the error's `data`) kept in the line. */
const MAX_DATA_CHARS = 500

const LEVELS: Readonly<Record<string, DiagLogLevel>> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
}

/**
 * OTEL_LOG_LEVEL as the JS SDK reads it (any case): the least severe diagnostics kept, `warn`
 * when unset or empty. One that is not a level is reported and `warn` is used.
 */
export function diagLevelFromEnv(raw: string | undefined, warn: (message: string) => void): DiagLogLevel {
  if (raw === undefined || raw.trim() === '') return DiagLogLevel.WARN
  const level = LEVELS[raw.trim().toLowerCase()]
  if (level !== undefined) return level
  warn(`OTEL_LOG_LEVEL=${JSON.stringify(raw)} is not one of ${Object.keys(LEVELS).join(', ')}: using warn`)
  return DiagLogLevel.WARN
}

interface Remembered {
  until: number
  skipped: number
}

/** A diag logger writing to pino, each distinct message at most once per REPEAT_WINDOW_MS. */
export class DiagToLog implements DiagLogger {
  private readonly seen = new Map<string, Remembered>()
  private readonly log: DiagLog

  constructor(log: DiagLog) {
    this.log = log
  }

  error = (message: string, ...args: unknown[]): void => this.write('error', message, args)
  warn = (message: string, ...args: unknown[]): void => this.write('warn', message, args)
  info = (message: string, ...args: unknown[]): void => this.write('info', message, args)
  debug = (message: string, ...args: unknown[]): void => this.write('debug', message, args)
  verbose = (message: string, ...args: unknown[]): void => this.write('trace', message, args)

  private write(level: Level, message: string, args: unknown[]): void {
    if (this.log.isLevelEnabled?.(level) === false) return
    const { text, fields } = describe(message, args)
    // Numbers vary between repeats of one message (`Dropped 12 spans`, a retry delay).
    const key = `${level} ${text.replace(/\d+/g, '#')}`
    const now = Date.now()
    const last = this.seen.get(key)
    if (last !== undefined && now < last.until) {
      last.skipped++
      return
    }
    if (last === undefined && this.seen.size >= MAX_REMEMBERED) this.forget(now)
    this.seen.delete(key)
    this.seen.set(key, { until: now + REPEAT_WINDOW_MS, skipped: 0 })
    const skipped = last?.skipped ?? 0
    this.log[level]({ ...(Object.keys(fields).length > 0 && { otel: fields }), ...(skipped > 0 && { repeats_not_logged: skipped }) }, `OpenTelemetry: ${text}`)
  }

  /** Forgets the messages whose window is over, else the one logged longest ago. */
  private forget(now: number): void {
    for (const [key, entry] of this.seen) if (entry.until <= now) this.seen.delete(key)
    if (this.seen.size >= MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value as string)
  }
}

/**
 * The message as a line says it. Leading string arguments are part of it, as the console
 * logger would print them: a component's logger passes its name as the message and the
 * message after it. An error the SDK reports through its global error handler comes as the
 * JSON of the error's properties, stack included: the line gets its name and message, and the
 * fields that say what failed (`code`: an HTTP status or a system error code; `data`: the
 * collector's answer).
 */
function describe(message: string, args: unknown[]): { text: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {}
  let text = message
  const error = message.startsWith('{') ? parseObject(message) : null
  if (error && typeof error.message === 'string') {
    text = typeof error.name === 'string' && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message
    if (error.code !== undefined) fields.code = error.code
    if (typeof error.data === 'string' && error.data !== '') fields.data = error.data.slice(0, MAX_DATA_CHARS)
  }
  let first = 0
  while (first < args.length && typeof args[first] === 'string') text += ` ${args[first++] as string}`
  if (first < args.length) fields.details = args.slice(first).map((arg) => (arg instanceof Error ? `${arg.name}: ${arg.message}` : arg))
  return { text, fields }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}
