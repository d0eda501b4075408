// Model files copied into the repository while the gateway runs, not taken yet. A scan takes one
// only once it has stayed as it is (size and mtime) for SETTLE_MS: one still being written (cp,
// scp or rsync --inplace of a large file) would be judged half written and rejected for good, its
// version number used up. Neither a watch event nor the scan it starts says when a copy ends.
// Settled means seen unchanged by two scans SETTLE_MS apart; its mtime alone says so only once it
// is MOVED_IN_MS old: a writer's clock behind ours (a file server's) or a filesystem keeping
// mtimes to 1-2 s (ext3, HFS+, FAT/exFAT, some NFS/SMB) makes a file being written look seconds old.
import type { ModelDirectory } from './store.ts'

/** Longer than the watch's debounce (200 ms): a copy pausing between writes for less than this is not taken for finished. */
export const SETTLE_MS = 1000

/**
 * A model file whose mtime is this old is taken at the first scan (a directory built a while ago,
 * then moved in). Far beyond a coarse mtime's rounding; a writer's clock further behind than
 * this still fools it (docs/models.md).
 */
export const MOVED_IN_MS = 60_000

export interface FileState {
  readonly size: number
  readonly mtimeMs: number
}

export class CopiesIn {
  /** Per version, its model file as a scan last saw it change, and when. */
  private readonly seen = new Map<number, FileState & { readonly since: number }>()

  /**
   * A version's model file once it has settled; undefined while it is absent, still being copied
   * in, or cannot be read (a later scan sees it).
   */
  async read(version: number, directory: ModelDirectory): Promise<Buffer | undefined> {
    const file = await directory.modelStat(version)
    if (!file) {
      this.forget(version) // none yet (or removed): nothing to wait for
      return undefined
    }
    if (!this.settled(version, file)) return undefined
    const bytes = await directory.readModelAsync(version)
    if (bytes === undefined || bytes.byteLength === file.size) {
      this.forget(version)
      return bytes
    }
    this.changing(version, file) // written to between the stat and the read: still being copied
    return undefined
  }

  /**
   * Whether a version's model file has stayed as it is for SETTLE_MS: a scan that long ago saw it
   * as it is now, or its mtime is MOVED_IN_MS old. An mtime merely SETTLE_MS old is not trusted:
   * it may come from a clock behind ours, or be rounded down to whole seconds. One seen changing
   * is noted, for a later scan.
   */
  private settled(version: number, file: FileState): boolean {
    const now = Date.now()
    const seen = this.seen.get(version)
    const same = seen !== undefined && seen.size === file.size && seen.mtimeMs === file.mtimeMs
    if (now - file.mtimeMs >= MOVED_IN_MS || (same && now - seen.since >= SETTLE_MS)) return true
    if (!same) this.changing(version, file)
    return false
  }

  /** Seen changing now (written to while a scan read it). */
  private changing(version: number, file: FileState): void {
    this.seen.set(version, { ...file, since: Date.now() })
  }

  /** Taken (or read), or no model file (any more): nothing to wait for. */
  private forget(version: number): void {
    this.seen.delete(version)
  }

  /** Forgets the versions no longer waiting (removed, or stored by an upload meanwhile). */
  retain(waiting: (version: number) => boolean): void {
    for (const version of this.seen.keys()) if (!waiting(version)) this.seen.delete(version)
  }

  /** Whether any is still being copied in: the registry scans again SETTLE_MS later by itself, with a watch or without one (a watch sends no event once a copy stops writing). */
  get any(): boolean {
    return this.seen.size > 0
  }
}
