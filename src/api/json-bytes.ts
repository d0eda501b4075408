// JSON read from its bytes, as every frontend that reads raw bytes does (the V2 REST body with
// binary data, a stream-mode message): JSON is UTF-8 (RFC 8259), so bytes that are not are
// refused, not read with U+FFFD in their place (altering any text they are in).
import { isUtf8 } from 'node:buffer'
import { GatewayError } from '../errors.ts'

/** The JSON value `bytes` hold; BAD_REQUEST starting with `notJson` when they are not UTF-8, or not JSON. */
export function parseJsonBytes(bytes: Buffer, notJson: string): unknown {
  if (!isUtf8(bytes)) throw new GatewayError('BAD_REQUEST', `${notJson}: its bytes are not UTF-8`)
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new GatewayError('BAD_REQUEST', `${notJson}: ${(err as Error).message}`)
  }
}
