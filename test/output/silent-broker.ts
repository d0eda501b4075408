// A "broker" that accepts connections and never answers: every send to it hangs until the
// client's request timeout. For the sink's behaviour while a batch is on the wire.
import { createServer, type Socket } from 'node:net'
import type { PendingRecord } from '../../src/output/record.ts'

export interface SilentBroker {
  readonly port: number
  close(): Promise<void>
}

export async function startSilentBroker(): Promise<SilentBroker> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A serving record whose JSON is `{id, pad}` with `padBytes` of padding. */
export const paddedRecord = (id: string, padBytes: number): PendingRecord =>
  ({ key: id, encode: () => JSON.stringify({ id, pad: 'x'.repeat(padBytes) }) }) as unknown as PendingRecord

/** Lets the sink's zero-delay timers (a full batch, a full buffer) fire. */
export const timersRun = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0))
