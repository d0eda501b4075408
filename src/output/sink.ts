// What the gateway needs from a place serving records go (Kafka today; a file or stdout
// sink would implement the same three calls).
import type { PendingRecord } from './record.ts'

export interface SinkStatus {
  readonly kind: string
  /** `connected`: publishing directly. `spooling`: the destination is unreachable, records wait on disk. */
  readonly state: 'connecting' | 'connected' | 'spooling' | 'closed'
  readonly [detail: string]: unknown
}

export interface RecordSink {
  readonly kind: string
  /** Takes one record and returns at once: no I/O, no encoding on the caller's path. */
  write(record: PendingRecord): void
  status(): SinkStatus
  /** Publishes what is pending within `graceMs`; whatever is left stays on disk for the next start. */
  close(graceMs: number): Promise<void>
}
