// What clients are promised: each ensemble's outputs (name, datatype, shape), as GET
// /v1/ensembles/{name} declares them and every answer carries them. An ensemble answers with
// the outputs all its members give (commonOutputs), so a member's version that drops or
// changes one would take it from every answer, with no error for the clients reading it.
// This compares an ensemble's outputs before a swap with those after it; what is done with a
// loss is the caller's: a version arriving through the registry is refused for it unless the
// model's `outputs_may_drop` lets it go (gateway-state.ts); an operator's rollback, config
// reload or start is warned about (pipeline.ts, reload/index.ts, start). An output no
// ensemble declares (one only some members give) is nobody's to lose: it comes and goes freely.
import type { ModelConfig } from '../config/load.ts'
import type { EnsembleRuntime } from '../starter/ensemble.ts'
import { quote, sameRank, specsText, type TensorSpec } from '../tensor/index.ts'

/**
 * A version that loaded but cannot answer for the serving one (a canary whose inputs differ):
 * the load reports its message as it is, a refusal, never as "failed to load" (the file loaded fine).
 */
export class IncompatibleVersion extends Error {}

/** One ensemble's outputs that a swap takes away: declared before it, not (or not so) after. */
export interface LostOutputs {
  readonly ensemble: string
  /** The ensemble's members after the swap. */
  readonly models: readonly string[]
  readonly outputs: readonly TensorSpec[]
}

/** The outputs of `before` that `after` lacks: none of the same name and datatype with a compatible shape. */
export function lackedOutputs(after: readonly TensorSpec[], before: readonly TensorSpec[]): TensorSpec[] {
  return before.filter((o) => !after.some((t) => t.name === o.name && t.datatype === o.datatype && compatibleShape(t, o)))
}

/** Per ensemble in both, the outputs it declared `before` that it no longer declares `after`. An ensemble added or removed loses nothing. */
export function lostOutputs(before: ReadonlyMap<string, EnsembleRuntime>, after: ReadonlyMap<string, EnsembleRuntime>): LostOutputs[] {
  const lost: LostOutputs[] = []
  for (const [name, was] of before) {
    const now = after.get(name)
    const outputs = now ? lackedOutputs(now.outputs, was.outputs) : []
    if (outputs.length) lost.push({ ensemble: name, models: now!.config.models, outputs })
  }
  return lost
}

/**
 * Why a swap bringing new versions of the `arriving` models is refused: per such model a
 * losing ensemble uses, the outputs lost that its `outputs_may_drop` does not list. Empty
 * when nothing is refused (what is let go is in `lost`, for the caller to warn about).
 */
export function keptOutputsRefusals(
  lost: readonly LostOutputs[],
  arriving: ReadonlySet<string>,
  models: ReadonlyMap<string, ModelConfig>,
  outputsOf: (model: string) => readonly TensorSpec[],
): { path: string; message: string }[] {
  const refusals: { path: string; message: string }[] = []
  for (const name of arriving) {
    const model = models.get(name)
    if (!model) continue
    const refused = lost
      .filter((l) => l.models.includes(name))
      .map((l) => ({ ensemble: l.ensemble, outputs: l.outputs.filter((o) => !model.outputsMayDrop.includes(o.name)) }))
      .filter((l) => l.outputs.length)
    if (!refused.length) continue
    const who = model.canary ? `the canary (version ${model.canary.version})` : `version ${model.version}`
    const taken = refused.map((l) => `ensemble ${quote(l.ensemble)}'s ${specsText(l.outputs)}`).join(', ')
    refusals.push({
      path: `models.${name}`,
      message: `${who} would take away ${taken} (the model's outputs would be ${specsText(outputsOf(name)) || '(none)'}); list an output in models.${name}.outputs_may_drop to let it go`,
    })
  }
  return refusals
}

/** `lost` as one line: `ensemble "cancer" loses probabilities:FP32[-1,2]; ...`. */
export const lostText = (lost: readonly LostOutputs[]): string => lost.map((l) => `ensemble ${quote(l.ensemble)} loses ${specsText(l.outputs)}`).join('; ')

/** `lost` for a log line or an answer: ensemble → the outputs' names. */
export const lostRecord = (lost: readonly LostOutputs[]): Record<string, string[]> => Object.fromEntries(lost.map((l) => [l.ensemble, l.outputs.map((o) => o.name)]))

/** Same rank, and no dimension known to differ (-1 on either side matches anything). */
const compatibleShape = (after: TensorSpec, before: TensorSpec): boolean =>
  sameRank(after, before) && before.shape.every((d, i) => d < 0 || after.shape[i]! < 0 || d === after.shape[i])
