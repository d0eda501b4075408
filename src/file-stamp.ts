// Which file a path names, as a stamp to compare later: a model's file as a worker is to
// load it (src/executors/onnx), a model's files as a reload compares them (src/reload/plan.ts).
// Imported from worker threads too: node:fs only.
import { statSync, type BigIntStats } from 'node:fs'
import { stat } from 'node:fs/promises'

/**
 * Device, inode, size and mtime (ns). A copy over the file, a write or a rename changes it.
 * Not the ctime: a chmod or chown would then refuse an unchanged file.
 */
export const fileStamp = (st: BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`

/** The file's stamp now, or undefined if it cannot be stat'ed (opening it then says why). */
export const stampOf = (path: string): Promise<string | undefined> => stat(path, { bigint: true }).then(fileStamp, () => undefined)

/** stampOf, synchronously. */
export function stampOfSync(path: string): string | undefined {
  try {
    return fileStamp(statSync(path, { bigint: true }))
  } catch {
    return undefined
  }
}
