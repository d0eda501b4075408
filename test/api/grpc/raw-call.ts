// gRPC calls made by hand over node:http2, for the edges a gRPC client library never shows:
// a message split or cut short, a client that never half-closes, a raw status.
import { once } from 'node:events'
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2'

/** A message in gRPC's framing: a compressed flag (or this flag byte: gRPC allows only 0 and 1), its length, its bytes. */
export const frame = (message: Buffer, compressed: boolean | number = false): Buffer => {
  const prefix = Buffer.alloc(5)
  prefix[0] = typeof compressed === 'number' ? compressed : compressed ? 1 : 0
  prefix.writeUInt32BE(message.length, 1)
  return Buffer.concat([prefix, message])
}

export interface Answer {
  headers: IncomingHttpHeaders
  trailers: IncomingHttpHeaders
  body: Buffer
  /** The RST_STREAM code the stream closed with. */
  rstCode: number
}

/** The status a gRPC client reads: from the trailers, or from the headers of a trailers-only answer. */
export const statusOf = (a: Answer): number => Number(a.trailers['grpc-status'] ?? a.headers['grpc-status'])
export const messageOf = (a: Answer): string => decodeURI(String(a.trailers['grpc-message'] ?? a.headers['grpc-message']))

/**
 * After writing its chunks the client half-closes (`half-close`); or, once answered, gives
 * up its side as gRPC clients do on a status (`cancel`); or does nothing more (`open`), so
 * only the server can end the call.
 */
export type Ending = 'half-close' | 'cancel' | 'open'

/** In a call's chunks: wait for the answer's headers before writing the next. */
export const AFTER_ANSWER = Symbol('after the answer')

/** One call on `session`: `chunks` written one by one, then `ending`; resolves once the stream has closed. */
export async function rawCall(session: ClientHttp2Session, path: string, chunks: (Buffer | typeof AFTER_ANSWER)[], extra: Record<string, string> = {}, ending: Ending = 'half-close'): Promise<Answer> {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra })
  const body: Buffer[] = []
  let headers: IncomingHttpHeaders = {}
  let trailers: IncomingHttpHeaders = {}
  stream.on('response', (h) => (headers = h))
  stream.on('trailers', (t) => (trailers = t))
  stream.on('data', (b: Buffer) => body.push(b))
  const closed = once(stream, 'close')
  const answered = chunks.includes(AFTER_ANSWER) ? once(stream, 'response') : undefined
  for (const chunk of chunks) {
    if (chunk === AFTER_ANSWER) await answered
    else stream.write(chunk)
  }
  if (ending === 'half-close') stream.end()
  if (ending === 'cancel') {
    await once(stream, 'response')
    stream.close()
  }
  await closed
  return { headers, trailers, body: Buffer.concat(body), rstCode: stream.rstCode as number }
}
