// How the model stream judges a record's handling: its result (accepted, duplicate, rejected),
// whether a failure is tried again (a system error, a location out of reach) or refused, and
// the backoff between tries. Moved from stream.ts as it was.
import { doubling } from '../backoff.ts'
import { GatewayError } from '../errors.ts'
import { errorMessage } from '../kafka/client.ts'
import type { Logger } from '../types.ts'
import type { CatchUp } from './catch-up.ts'
import { Refused, Unreachable } from './location.ts'
import type { VersionMeta } from './version-meta.ts'
import { givenUp, type Held } from './stream-history.ts'

/** A record that failed unexpectedly is tried again after 1 s, 2 s, 4 s … at most a minute. */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 60_000
export const retryDelay = doubling(RETRY_FIRST_MS, RETRY_MAX_MS)

export const RESULTS = ['accepted', 'duplicate', 'rejected'] as const
export type Result = (typeof RESULTS)[number]

/** A record's result, the reason when rejected, and the version it became (null: none, or not known). */
export type Judged = [result: Result, reason: string | null, version: number | null]

/**
 * A stored version's judging as the record's result. NOT_READY (the gateway drains for a stop)
 * says nothing about the record: the version stays `loading`, judged at the next start, so the
 * record is taken as accepted, whether it was just stored or replayed while still `loading`.
 */
export async function outcome(judging: Promise<VersionMeta>): Promise<Judged> {
  try {
    const meta = await judging
    return meta.state === 'rejected' ? ['rejected', meta.reason, meta.version] : ['accepted', null, meta.version]
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'NOT_READY') return ['accepted', null, null]
    throw err
  }
}

/** An error from the system (fs, the network stack): it carries an errno-style code such as ENOSPC or EIO. */
const isSystemError = (err: unknown): boolean => err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!)

/** Whether a record that failed with `err` is tried again, uncommitted: a system error or an unreachable location, not a record refused, a GatewayError or a bug. */
export const triedAgain = (err: unknown): boolean => !(err instanceof Refused || err instanceof GatewayError) && (err instanceof Unreachable || isSystemError(err))

/**
 * A failed record's rejection ([result, reason]), logged: one refused (not triedAgain), or a
 * replayed one whose location stayed unreachable (givenUp); null while it is tried again.
 */
export function refusal(err: unknown, attempt: number, record: Held, catchUp: CatchUp | undefined, log: Logger, topic: string): [Result, string] | null {
  if (triedAgain(err)) {
    const reason = givenUp(err, attempt, record, catchUp, log)
    return reason === null ? null : ['rejected', reason]
  }
  const reason = err instanceof Refused || err instanceof GatewayError ? err.message : `unexpected: ${errorMessage(err)}`
  log.error({ model: record.key ?? '', reason, topic }, 'model descriptor rejected')
  return ['rejected', reason]
}
