// Which version a remote model without a pinned version is shown as, from the versions its
// upstream's answers name. Each answer is annotated with its own version; this decides the
// one the model is shown as everywhere else (GET /v1/models, the metrics label, failures).
// Rules: a newer version shows at its first answer (the upstream moved on, or started a
// canary: the newest version answering is shown); an older or incomparable one shows only
// once the one shown has named no answer for STALE_AFTER_MS (a rollback, a label moved back,
// a one-off bogus version), so an upstream answering with two versions at once never makes
// it flip. The version read at load is provisional: the first answer naming any replaces it.

/** How long the version shown may go unnamed by any answer before an older one replaces it. */
export const STALE_AFTER_MS = 60_000

/** Versions remembered with the last time an answer named them, at most. */
const MAX_TRACKED = 8

export class ShownVersion {
  /** The version shown; undefined until one is known (the upstream's metadata named none). */
  current: string | undefined
  /** Last time (performance.now()) an answer named each version. */
  private readonly seen = new Map<string, number>()

  constructor(atLoad: string | undefined) {
    this.current = atLoad
  }

  /** An answer named `version` at `now`; true when the version shown changed. */
  answered(version: string, now: number): boolean {
    this.seen.set(version, now)
    if (version === this.current) return false
    if (this.seen.size > MAX_TRACKED) this.forgetBefore(now - STALE_AFTER_MS)
    const shownAt = this.current === undefined ? undefined : this.seen.get(this.current)
    if (shownAt !== undefined && now - shownAt < STALE_AFTER_MS && !isNewer(version, this.current!)) return false
    this.current = version
    return true
  }

  /** Versions unnamed since `cutoff` go; if that is not enough (an upstream naming a new version in every answer), the first remembered do. */
  private forgetBefore(cutoff: number): void {
    for (const [version, at] of this.seen) if (at < cutoff && version !== this.current) this.seen.delete(version)
    for (const version of this.seen.keys()) {
      if (this.seen.size <= MAX_TRACKED) break
      if (version !== this.current) this.seen.delete(version)
    }
  }
}

const VERSION = /^[vV]?(\d+(?:[.-]\d+)*)$/

/**
 * Whether `version` is newer than `than`: both numbers, or dotted or dashed numbers with an
 * optional `v` (`1.10.0` after `1.9.2`, `v3` after `v2`, `2024-02-01` after `2024-01-31`),
 * compared part by part; false when either is anything else (not comparable).
 */
export function isNewer(version: string, than: string): boolean {
  const a = VERSION.exec(version)?.[1]
  const b = VERSION.exec(than)?.[1]
  if (a === undefined || b === undefined) return false
  const pa = a.split(/[.-]/)
  const pb = b.split(/[.-]/)
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = BigInt(pa[i]!)
    const y = BigInt(pb[i]!)
    if (x !== y) return x > y
  }
  return pa.length > pb.length
}
