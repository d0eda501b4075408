// Commits that settle when a test says, and a promise's state read without awaiting it.
import type { CommitPosition } from '../../src/kafka/commit-flight.ts'

/** A send whose commits settle when the test says: each one's offsets, in the order sent. */
export function controlledSend() {
  const sent: { offsets: string; settle: PromiseWithResolvers<void> }[] = []
  const send = (offsets: CommitPosition[]): Promise<void> => {
    const settle = Promise.withResolvers<void>()
    sent.push({ offsets: offsets.map((o) => `${o.partition}@${o.offset}`).join(','), settle })
    return settle.promise
  }
  return { sent, send }
}

/** Whether a promise has settled, and how. */
export function state(promise: Promise<void>): { value: 'pending' | 'resolved' | 'rejected' } {
  const s = { value: 'pending' as 'pending' | 'resolved' | 'rejected' }
  promise.then(
    () => (s.value = 'resolved'),
    () => (s.value = 'rejected'),
  )
  return s
}

/** Lets every settled promise's callbacks run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
