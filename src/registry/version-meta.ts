// What the repository records of each version (its meta.json): the states a version moves
// through, where it came from, its gate's report, and which numbers a version may have.
export const VERSION_STATES = ['loading', 'serving', 'canary', 'ready', 'rejected', 'retired'] as const
export type VersionState = (typeof VERSION_STATES)[number]

export const VERSION_SOURCES = ['seed', 'directory', 'upload', 'kafka'] as const
export type VersionSource = (typeof VERSION_SOURCES)[number]

export interface GateReport {
  readonly passed: boolean
  /** Why it failed; null when it passed. */
  readonly reason: string | null
  readonly examples: { readonly passed: number; readonly total: number } | null
  readonly dataset: { readonly accuracy: number; readonly min_accuracy: number; readonly rows: number } | null
}

/** meta.json of one version, as GET /v1/models/{name}/versions shows it. */
export interface VersionMeta {
  readonly version: number
  readonly state: VersionState
  readonly source: VersionSource
  readonly sha256: string
  readonly size_bytes: number
  readonly description: string | null
  readonly created_at: string
  /** When it last started serving; null if it never did. */
  readonly serving_since: string | null
  /** Why it is rejected or retired. */
  readonly reason: string | null
  readonly gate: GateReport | null
  /** A canary rollout's outcome: promoted or rolled back, on what evidence. */
  readonly rollout?: { readonly decision: 'promoted' | 'rolled_back'; readonly at: string; readonly evidence: Readonly<Record<string, number | null>> } | null
  /**
   * Outputs the ensembles declared that this version takes from them (ensemble → output names),
   * as last found: judged as a rollback target, or swapped in by a rollback, a config reload or
   * with `outputs_may_drop`. Null (or absent) when it took none.
   */
  readonly outputs_lost?: Readonly<Record<string, readonly string[]>> | null
}

/**
 * The highest version: beyond 2^53 - 1 a JavaScript number no longer names one integer
 * (9999999999999999 reads as 10000000000000000), so an upload, the scan and `meta.json`
 * would disagree on which version it is.
 */
export const MAX_VERSION = Number.MAX_SAFE_INTEGER

/** A version's text (a URL segment, a directory name) as its number; undefined unless it is 1..MAX_VERSION, written plainly. */
export function parseVersion(text: string): number | undefined {
  if (!/^[1-9]\d{0,15}$/.test(text)) return undefined
  const version = Number(text)
  return version <= MAX_VERSION ? version : undefined
}
