// The model stream's records read from history: those below the topic's end offsets as the
// catch-up read them at the stream's first join (a new consumer group replays the topic). A
// replayed record that never became a version in this repository (every record on a new disk,
// or one refused after its model was read) has its location fetched again, and the servers of
// old records are often gone for good (decommissioned): tried again for ever, it would hold
// every record after it, so a new pod would never apply the topic's later versions. Such a
// record is tried HISTORY_ATTEMPTS times, then committed as rejected. A live record (at or past
// those end offsets, or any record while they are not known: catch-up disabled, or not read
// yet) is new: its server is expected back, and losing it would lose a version, so it is tried
// again until it gets through, as before.
import type { Logger } from '../types.ts'
import type { CatchUp } from './catch-up.ts'
import { decodeDescriptor } from './descriptor.ts'
import { Unreachable } from './location.ts'

/**
 * Tries of a replayed record whose location is unreachable: 3, so 1 s then 2 s apart (the
 * stream's backoff). Every such record costs the catch-up this much (plus up to 60 s per
 * fetch timing out), and a topic may hold many from servers long gone; 3 still rides out a
 * dropped connection. A server down for longer loses that record here: it was published long
 * ago (history), and is published again or uploaded, where a live record would be lost unseen.
 */
export const HISTORY_ATTEMPTS = 3

/** The part of a record the replay logs name. */
export interface Held {
  readonly key?: string | null
  readonly value?: Buffer | null
  readonly partition: number
  readonly offset: bigint
}

/**
 * The reason a replayed record is committed as rejected after `attempt` tries failed with
 * `err`, logged (warn) with its model, version, offset, location and error; null while it is
 * to be tried again (another error, a live record, tries left).
 */
export function givenUp(err: unknown, attempt: number, record: Held, catchUp: CatchUp | undefined, log: Logger): string | null {
  if (!(err instanceof Unreachable) || attempt < HISTORY_ATTEMPTS || catchUp?.historical(record.partition, record.offset) !== true) return null
  let model = record.key ?? ''
  let version: number | null = null
  try {
    const d = decodeDescriptor(record.value ?? Buffer.alloc(0))
    ;[model, version] = [d.name || model, d.version]
  } catch {
    // Decoded already once to reach the fetch: not expected; the line names the record's key.
  }
  const { location, why: error } = err
  const offset = String(record.offset)
  log.warn({ model, version, offset, location, attempts: attempt, error }, 'model stream: a replayed record\'s location is unreachable; committed as rejected, the records after it go on')
  return `location ${location} unreachable while replaying history (offset ${offset}, ${attempt} attempts): ${error}`
}

/**
 * Logs a record skipped as a replay of the stored `version`, at info: a replay of the whole
 * topic must not be noisy, and version 0 (publish-model's default, "the next") is the usual
 * record, so one recognised by the sha256 it claims, its bytes unread (`unread`), cannot be
 * told from a wrong sha256 naming stored bytes. The line has its offset and claimed version,
 * so such a record can be found.
 */
export function loggedReplay(log: Logger, model: string, version: number, sha256: string, claimed: number, offset: bigint, unread: boolean): void {
  log.info({ model, version, claimed_version: claimed, offset: String(offset), sha256, unread }, 'model stream: a version already stored (replayed record), skipped')
}
