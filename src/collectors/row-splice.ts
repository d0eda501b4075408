// A batched hard vote whose row winners no single member gave on every row: the answer is
// put together row by row, each row taken from a member that voted for that row's winner.
// Only such answers come here, so a one-row request never pays for it.
import type { Tensor, TensorData, TensorMap } from '../tensor/index.ts'

/**
 * Outputs whose row r is `sources[r]`'s row r, for `rows` rows. An output is kept when every
 * source has it with the same datatype and element count, and it splits into `rows` equal
 * parts: by its first dimension, or, for the voted output (whose positions were counted as
 * rows), by its elements. Any other output is left out rather than mixed up.
 */
export function spliceRows(sources: readonly TensorMap[], rows: number, voted: string): TensorMap {
  const first = sources[0]!
  const entries: [string, Tensor][] = []
  for (const name of Object.keys(first)) {
    const template = first[name]!
    const size = template.data.length
    if ((name !== voted && template.shape[0] !== rows) || size % rows !== 0) continue
    if (!sources.every((s) => s[name]?.datatype === template.datatype && s[name].data.length === size)) continue
    const unit = size / rows
    const data = template.data.slice() as TensorData
    for (let r = 1; r < rows; r++) copyRange(data, sources[r]![name]!.data, r * unit, (r + 1) * unit)
    entries.push([name, { datatype: template.datatype, shape: template.shape, data }])
  }
  // fromEntries defines own properties, so an output named "__proto__" stays an output.
  return Object.fromEntries(entries)
}

/** Copies elements [start, end) between arrays of one datatype (so of one element kind). */
function copyRange(to: TensorData, from: TensorData, start: number, end: number): void {
  const target = to as unknown as unknown[]
  for (let e = start; e < end; e++) target[e] = from[e]
}
