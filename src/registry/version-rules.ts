// The rules that read a model's versions (their meta.json): which versions a version_policy
// allows, which one serves at start, what a version that failed at a start carries, and a new
// version's first meta. Pure: `specserve validate` asks them without opening anything.
import { GatewayError } from '../errors.ts'
import { quote } from '../tensor/index.ts'
import type { VersionPolicy } from './config.ts'
import { sha256Hex } from './sha256.ts'
import type { VersionMeta, VersionSource } from './version-meta.ts'

/** An arrival naming a version the model has already (other bytes, or judged): refused, versions are immutable. */
export const versionExists = (name: string, version: number): GatewayError =>
  new GatewayError('VERSION_EXISTS', `model ${quote(name)} has a version ${version} already: versions are immutable, publish a new one`)

export const allowedBy = (policy: VersionPolicy, version: number): boolean => policy.kind === 'latest' || policy.versions.includes(version)

/**
 * The reason a version that failed at start carries: it stays a candidate (the failure may be
 * the config or the box, not the file), and the next start tries it again.
 */
export const FAILED_AT_START = 'failed at start: '
/** Failed at the last start and a candidate still: `ready` (it passed before), or `loading` (never judged). */
export const failedAtStart = (meta: VersionMeta): boolean => (meta.state === 'ready' || meta.state === 'loading') && (meta.reason?.startsWith(FAILED_AT_START) ?? false)

export const lastServed = (metas: readonly VersionMeta[]): VersionMeta[] => metas.filter((m) => m.state === 'serving').sort((a, b) => (b.serving_since ?? '').localeCompare(a.serving_since ?? ''))

/**
 * The version to serve at start, from the versions' metas (ascending): a version newer than the
 * one that served last whose only failure was at a start (it served, or was about to, when a
 * start fell back from it: `ready`, or `loading` if never judged; tried again first); else the one that served last; else the highest
 * the policy allows that was never rejected nor retired (a canary cut short counts as never
 * judged), each with its model file (hasModel). Pure: `specserve validate` asks it without opening anything.
 */
export function servingChoice(metas: readonly VersionMeta[], allowed: (version: number) => boolean, hasModel: (version: number) => boolean): number | undefined {
  return servedChoice(metas, allowed, hasModel) ?? metas
    .filter((m) => allowed(m.version) && (m.state === 'loading' || m.state === 'canary' || m.state === 'ready' || m.state === 'serving') && hasModel(m.version))
    .at(-1)?.version
}

/** servingChoice's first two: a version that failed at the last start, newer than the one that served last; else that one. */
function servedChoice(metas: readonly VersionMeta[], allowed: (version: number) => boolean, hasModel: (version: number) => boolean): number | undefined {
  const candidate = (m: VersionMeta): boolean => allowed(m.version) && hasModel(m.version)
  const last = lastServed(metas).find(candidate)
  return (metas.filter((m) => failedAtStart(m) && candidate(m) && m.version > (last?.version ?? 0)).at(-1) ?? last)?.version
}

/**
 * The versions that served last, or failed at the last start, that a start would try first but
 * whose model file is gone (deleted while the gateway was stopped): a start rejects them,
 * saying so, rather than passing them over in silence and leaving them candidates with no
 * file. So too every other `ready` version whose file is gone: no rollback nor fallback can
 * serve it (they pass it over), and listed `ready` it would say one could. Pure, as servingChoice.
 */
export function goneAtStart(metas: readonly VersionMeta[], allowed: (version: number) => boolean, hasModel: (version: number) => boolean): number[] {
  const gone: number[] = []
  let left = metas
  for (;;) {
    const chosen = servedChoice(left, allowed, () => true)
    if (chosen === undefined || hasModel(chosen)) break
    gone.push(chosen)
    left = left.filter((m) => m.version !== chosen)
  }
  return [...gone, ...goneReady(left, hasModel)]
}

/** The `ready` versions whose model file is gone: rollback targets, or fallbacks, no rollback nor fallback can serve. */
export const goneReady = (metas: readonly VersionMeta[], hasModel: (version: number) => boolean): number[] =>
  metas.filter((m) => m.state === 'ready' && !hasModel(m.version)).map((m) => m.version)

/** At start, when `failed` cannot serve: the newest earlier version that passed (ready, or served) and `allowed` allows. Pure, as servingChoice. */
export function fallbackChoice(metas: readonly VersionMeta[], failed: number, allowed: (version: number) => boolean, hasModel: (version: number) => boolean): number | undefined {
  return metas.filter((m) => m.version < failed && (m.state === 'ready' || m.state === 'serving') && allowed(m.version) && hasModel(m.version)).at(-1)?.version
}

export function newMeta(version: number, bytes: Uint8Array, source: VersionSource, description: string | null): VersionMeta {
  return versionMeta(version, sha256Hex(bytes), bytes.byteLength, source, description)
}

export function versionMeta(version: number, sha256: string, size: number, source: VersionSource, description: string | null): VersionMeta {
  return {
    version,
    state: 'loading',
    source,
    sha256,
    size_bytes: size,
    description,
    created_at: new Date().toISOString(),
    serving_since: null,
    reason: null,
    gate: null,
  }
}
