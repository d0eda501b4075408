// What a version must keep of the serving version's to answer in its place: every output it
// declares. An ensemble answers with the outputs all its members give (commonOutputs), so an
// output a new version drops or changes would vanish from every answer, with no error for the
// clients that read it. Held to it: a canary beside the serving version (canary.ts), and a
// newer version swapped in for it (reload-gate.ts). Outputs only the new version has are fine.
import { sameRank, specsText, type TensorSpec } from '../tensor/index.ts'

/**
 * A version that loaded but cannot answer for the serving one: the load reports its message
 * as it is, a refusal, never as "failed to load" (the file loaded fine).
 */
export class IncompatibleVersion extends Error {}

/** The serving version's outputs `theirs` lacks: none of the same name and datatype with a compatible shape. */
export function lackedOutputs(theirs: readonly TensorSpec[], serving: readonly TensorSpec[]): TensorSpec[] {
  return serving.filter((o) => !theirs.some((t) => t.name === o.name && t.datatype === o.datatype && compatibleShape(t, o)))
}

/** Why `who` (its outputs `theirs`) cannot answer for the serving version; undefined when it can. */
export function outputsRefusal(who: string, theirs: readonly TensorSpec[], serving: readonly TensorSpec[]): string | undefined {
  const lacked = lackedOutputs(theirs, serving)
  return lacked.length ? `${who}'s outputs ${specsText(theirs) || '(none)'} lack the serving version's ${specsText(lacked)}` : undefined
}

/** Same rank, and no dimension known to differ (-1 on either side matches anything). */
const compatibleShape = (theirs: TensorSpec, serving: TensorSpec): boolean =>
  sameRank(theirs, serving) && serving.shape.every((d, i) => d < 0 || theirs.shape[i]! < 0 || d === theirs.shape[i])
