// A registry swap that takes outputs from the ensembles is not silent: an arrival that its
// model's `outputs_may_drop` lets through, a rollback, a canary's end. Each is logged at warn
// level naming the ensembles and the outputs, and the version's meta.json says what it took
// (`outputs_lost`), so the answer of an upload or rollback carries it. A version judged aside
// (a late upload kept as a rollback target) records what it would take, for whoever rolls back.
import type { Logger } from '../types.ts'
import { lostRecord, lostText, type LostOutputs } from './compatible.ts'
import type { ModelVersions } from './versions.ts'

/** Writes what `version` takes from the ensembles (none: cleared, when it said otherwise before). */
export function recordLost(versions: ModelVersions, version: number, lost: readonly LostOutputs[]): void {
  if (lost.length) versions.update(version, { outputs_lost: lostRecord(lost) })
  else if (versions.get(version)?.outputs_lost) versions.update(version, { outputs_lost: null })
}

/**
 * Records and warns of the outputs a swap to `version` took, if any; `why` says what let it (a
 * rollback, `outputs_may_drop`). `fresh`: none taken clears an old record (not so for a canary's
 * promotion or end, which keep what its start recorded).
 */
export function sayLost(log: Logger, versions: ModelVersions, version: number, lost: readonly LostOutputs[], why: string, fresh: boolean): void {
  if (fresh || lost.length) recordLost(versions, version, lost)
  if (lost.length) log.warn({ model: versions.name, version, outputs_lost: lostRecord(lost) }, `version ${version} of "${versions.name}" swapped in (${why}): ${lostText(lost)}`)
}
