// Spool compaction: gives the disk space of the replayed head back without waiting for the
// spool to empty. The unreplayed tail is copied to `<file>.compact`, in the background in
// chunks while appends go on (to the old file, copied after), then the last chunk
// synchronously, and the copy takes the spool's place. A crash leaves the old file and a
// `.pos` of 0 at worst: duplicates on replay, never a lost record. A copy that fails (disk
// full, the `.compact` path not writable) removes what it wrote and closes what it opened.
import { closeSync, openSync, read, readSync, rmSync, writeSync } from 'node:fs'
import { promisify } from 'node:util'

const readAsync = promisify(read)
/** Copied in the background in chunks of this size; the last one, synchronously, at most this. */
const COMPACT_CHUNK = 1024 * 1024

/** Worth compacting: the replayed head is a quarter of the limit, or as large as the tail it would copy. */
export function worthCompacting(head: number, size: number, maxBytes: number): boolean {
  if (head === 0 || head >= size) return false
  return head >= maxBytes / 4 || (head >= size - head && head >= Math.min(64 * 1024, maxBytes / 4))
}

/**
 * Copies `file` from `from` to its end into `<file>.compact`. `end()` is where the spool ends
 * now (it grows meanwhile), or null once it was closed (the copy is given up). Right after the
 * last byte, synchronously so that no append falls in between, `install(copy, tmp)` may put
 * the copy in place (the descriptor `copy`, open for reading and writing, is then the
 * caller's) or refuse it (false). Throws the I/O error; the partial copy is removed then.
 */
export async function copyTail(file: string, from: number, end: () => number | null, install: (copy: number, tmp: string) => boolean): Promise<void> {
  const tmp = `${file}.compact`
  let source: number | null = null
  let copy: number | null = null
  let installed = false
  try {
    // Its own descriptor: the spool may close its own while a read is in the thread pool.
    source = openSync(file, 'r')
    copy = openSync(tmp, 'w+')
    const buf = Buffer.allocUnsafe(COMPACT_CHUNK)
    let copied = from
    for (let until = end(); until !== null && until - copied > COMPACT_CHUNK; until = end()) {
      const { bytesRead } = await readAsync(source, buf, 0, COMPACT_CHUNK, copied)
      if (end() === null) return
      if (bytesRead === 0) throw new Error(`spool ${file} is shorter than its recorded size`)
      writeAll(copy, buf, bytesRead, copied - from)
      copied += bytesRead
    }
    const until = end()
    if (until === null) return
    while (copied < until) {
      const n = readSync(source, buf, 0, Math.min(COMPACT_CHUNK, until - copied), copied)
      if (n === 0) throw new Error(`spool ${file} is shorter than its recorded size`)
      writeAll(copy, buf, n, copied - from)
      copied += n
    }
    installed = install(copy, tmp)
  } finally {
    if (source !== null) closeSync(source)
    if (copy !== null && !installed) {
      closeSync(copy)
      rmSync(tmp, { force: true }) // only what this copy created: a path it could not open is not its to remove
    }
  }
}

function writeAll(fd: number, buf: Buffer, length: number, position: number): void {
  for (let written = 0; written < length; ) written += writeSync(fd, buf, written, length - written, position + written)
}
