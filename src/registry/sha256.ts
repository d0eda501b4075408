// The sha256 of a model's bytes: what a version's meta.json records, and what an upload or a
// model stream record is recognised by when the same bytes come again.
import { createHash } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

const HASH_SLICE = 1 << 20
/** sha256 a slice at a time with a turn of the event loop between slices: hashing a large model never holds requests up for long. */
export async function sha256HexYielding(bytes: Uint8Array): Promise<string> {
  const hash = createHash('sha256')
  for (let at = 0; at < bytes.byteLength; at += HASH_SLICE) {
    if (at > 0) await nextTurn()
    hash.update(bytes.subarray(at, at + HASH_SLICE))
  }
  return hash.digest('hex')
}
