// OpenTelemetry's diagnostics as the gateway logs them: a failed export as one readable line
// (not the JSON of an error with its stack), and a collector that stays down as one line a
// minute per message, the next one counting those left out.
import { DiagLogLevel } from '@opentelemetry/api'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { diagLevelFromEnv, DiagToLog, REPEAT_WINDOW_MS, type DiagLog } from '../../src/telemetry/diag.ts'

interface Line {
  level: string
  obj: Record<string, unknown>
  msg: string
}

function capture(): { log: DiagLog; lines: Line[] } {
  const lines: Line[] = []
  const at =
    (level: string) =>
    (obj: object, msg: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg })
    }
  return { log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: at('trace') }, lines }
}

/** What the SDK's global error handler passes diag for an export a collector refused with 401. */
const refused = JSON.stringify({
  stack: 'OTLPExporterError: Unauthorized\n    at IncomingMessage.<anonymous> (http-transport-utils.js:75:35)',
  message: 'Unauthorized',
  code: '401',
  name: 'OTLPExporterError',
  data: 'missing API key',
})

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('DiagToLog', () => {
  it('logs a refused export as its error and status, with what the collector said', () => {
    const { log, lines } = capture()
    new DiagToLog(log).error(refused)
    expect(lines).toEqual([{ level: 'error', msg: 'OpenTelemetry: OTLPExporterError: Unauthorized', obj: { otel: { code: '401', data: 'missing API key' } } }])
  })

  it('logs a message at most once a minute; the next line says how many were left out', () => {
    const { log, lines } = capture()
    const diag = new DiagToLog(log)
    for (let i = 0; i < 12; i++) {
      diag.error(refused) // a down collector: a failed export every 5 s
      vi.advanceTimersByTime(REPEAT_WINDOW_MS / 12)
    }
    expect(REPEAT_WINDOW_MS).toBe(60_000)
    expect(lines).toHaveLength(1)
    diag.error(refused) // a minute after the first
    expect(lines).toHaveLength(2)
    expect(lines[1]!.obj).toMatchObject({ repeats_not_logged: 11 })
    diag.error(refused)
    expect(lines).toHaveLength(2)
  })

  it('counts messages that differ only in their numbers as one, and others apart', () => {
    const { log, lines } = capture()
    const diag = new DiagToLog(log)
    diag.warn('Dropped 12 spans because maxQueueSize reached')
    diag.warn('Dropped 48 spans because maxQueueSize reached')
    diag.error(JSON.stringify({ message: 'connect ECONNREFUSED 127.0.0.1:4318', code: 'ECONNREFUSED', name: 'Error' }))
    diag.error(refused)
    expect(lines.map((line) => `${line.level} ${line.msg}`)).toEqual([
      'warn OpenTelemetry: Dropped 12 spans because maxQueueSize reached',
      'error OpenTelemetry: connect ECONNREFUSED 127.0.0.1:4318',
      'error OpenTelemetry: OTLPExporterError: Unauthorized',
    ])
    expect(lines[1]!.obj).toEqual({ otel: { code: 'ECONNREFUSED' } })
  })

  it('says what else the SDK passes (strings in the line, an error as its name and message), and maps verbose to trace', () => {
    const { log, lines } = capture()
    const diag = new DiagToLog(log)
    diag.warn('Received Partial Success response:', '{"rejectedSpans":"2"}')
    diag.error('PeriodicExportingMetricReader: metrics export threw error', new TypeError('boom'))
    diag.verbose('Scheduling export retry in 1200ms')
    expect(lines).toEqual([
      { level: 'warn', msg: 'OpenTelemetry: Received Partial Success response: {"rejectedSpans":"2"}', obj: {} },
      { level: 'error', msg: 'OpenTelemetry: PeriodicExportingMetricReader: metrics export threw error', obj: { otel: { details: ['TypeError: boom'] } } },
      { level: 'trace', msg: 'OpenTelemetry: Scheduling export retry in 1200ms', obj: {} },
    ])
  })

  it('tells apart two messages of one component (whose logger passes its name first)', () => {
    const { log, lines } = capture()
    const diag = new DiagToLog(log)
    diag.warn('OTLPExportDelegate', 'Export succeeded but could not deserialize response - is the response specification compliant?')
    diag.warn('OTLPExportDelegate', 'shutdown started')
    expect(lines.map((line) => line.msg)).toEqual([
      'OpenTelemetry: OTLPExportDelegate Export succeeded but could not deserialize response - is the response specification compliant?',
      'OpenTelemetry: OTLPExportDelegate shutdown started',
    ])
  })

  it('remembers a bounded number of messages: an old one is logged again once forgotten', () => {
    const { log, lines } = capture()
    const diag = new DiagToLog(log)
    diag.warn('first')
    for (let i = 0; i < 100; i++) diag.warn(`message ${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`)
    expect(lines).toHaveLength(101)
    diag.warn('first') // within its minute, but forgotten to make room
    expect(lines).toHaveLength(102)
  })
})

describe('OTEL_LOG_LEVEL', () => {
  it('is warn when unset or empty, read in any case, and reported when it is not a level', () => {
    const warnings: string[] = []
    const warn = (message: string): number => warnings.push(message)
    expect([undefined, '', ' '].map((raw) => diagLevelFromEnv(raw, warn))).toEqual([DiagLogLevel.WARN, DiagLogLevel.WARN, DiagLogLevel.WARN])
    expect(['error', 'INFO', ' Debug ', 'none', 'all'].map((raw) => diagLevelFromEnv(raw, warn))).toEqual([DiagLogLevel.ERROR, DiagLogLevel.INFO, DiagLogLevel.DEBUG, DiagLogLevel.NONE, DiagLogLevel.ALL])
    expect(warnings).toEqual([])
    expect(diagLevelFromEnv('warning', warn)).toBe(DiagLogLevel.WARN)
    expect(warnings).toEqual(['OTEL_LOG_LEVEL="warning" is not one of none, error, warn, info, debug, verbose, all: using warn'])
  })
})
