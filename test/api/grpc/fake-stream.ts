// The parts of a server HTTP/2 stream the read limits read and call, for unit tests (with a
// fake clock): what would be sent is recorded (statuses, closes and resets), nothing goes
// anywhere.
import { EventEmitter } from 'node:events'
import { constants } from 'node:http2'
import { afterEach, beforeEach, vi } from 'vitest'

export class FakeStream extends EventEmitter {
  destroyed = false
  closed = false
  headersSent = false
  /** As node's: undefined until the stream answers. */
  sentHeaders: Record<string, unknown> | undefined = undefined
  /** As node's: undefined until grpc-js sends the status after data (trailers). */
  sentTrailers: Record<string, unknown> | undefined = undefined
  writableEnded = false
  /** Bytes written and not yet sent: an answer waits there while the client's flow-control window is used up. */
  writableLength = 0
  readableFlowing: boolean | null = true
  state = { remoteClose: 0 }
  readonly sent: unknown[] = []
  respond(headers: Record<string, unknown>, options: { endStream?: boolean }): void {
    this.headersSent = true
    this.sentHeaders = headers
    this.writableEnded = options.endStream === true
    this.sent.push(headers['grpc-status'])
  }
  /** An answer written: it waits until wentOut() (the client's window lets it go). */
  write(chunk: Buffer): boolean {
    this.writableLength += chunk.length
    return true
  }
  /** The last of an answer written (a unary call's whole answer): it waits as write()'s does. */
  end(chunk?: Buffer): void {
    this.writableEnded = true
    if (chunk !== undefined) this.writableLength += chunk.length
  }
  wentOut(): void {
    this.writableLength = 0
  }
  close(code: number = constants.NGHTTP2_NO_ERROR): void {
    this.closed = true
    this.sent.push(code === constants.NGHTTP2_NO_ERROR ? 'closed' : `reset ${code}`)
  }
  destroy(): void {
    this.destroyed = true
  }
}

/** Fake timers for the file's tests, from a fixed now: the read limits' one shared timer runs on them. */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 })
  })
  afterEach(() => {
    vi.useRealTimers()
  })
}
