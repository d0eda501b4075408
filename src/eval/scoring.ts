// How eval scores a target's answers: what a classifier's labels must be (class indices of the
// probabilities it is scored by) and which output an answer is read from (a regression's
// value; a classifier's argmax, or its label output, or the output a vote decides on).
import { allFinite, argmaxRows, findLabelOutput, findProbabilitiesOutput, resolveVoteSource, type Invalid, type VoteSource } from '../collectors/outputs.ts'
import { numberAt, type Tensor, type TensorSpec } from '../tensor/index.ts'
import { EvalInputError, type LabeledData } from './data.ts'

export type Task = 'classification' | 'regression'

/**
 * A classifier's labels must be class indices: `k` names probability column `k` (the demo
 * models' label output, and the class index the soft vote gives, follow the same rule). With
 * a label output alone the classes are not known (they may be any integers): integers, then.
 */
export function checkLabels(outputs: readonly TensorSpec[], name: string, data: LabeledData, voted: string | undefined): void {
  const source = resolveVoteSource(outputs, voted)
  if (source.kind === 'regression') return
  const probs = scoredProbabilities(outputs, voted, source)
  if (probs) return checkClassIndices(data, probs.shape[probs.shape.length - 1]!, `ensemble "${name}"'s probabilities`)
  const at = data.truth.findIndex((truth) => !Number.isInteger(truth))
  if (at >= 0) throw new EvalInputError(`${data.file}:${data.lines[at]}: label ${data.truth[at]} is not a class (an integer) of ensemble "${name}"`)
}

/** Every label an integer in 0..classes-1 (classes ≤ 0: a width not fixed, any non-negative integer); else an error at its line. */
export function checkClassIndices(data: LabeledData, classes: number, whose: string): void {
  for (let i = 0; i < data.truth.length; i++) {
    const truth = data.truth[i]!
    if (!Number.isInteger(truth) || truth < 0 || (classes > 0 && truth >= classes)) {
      throw new EvalInputError(`${data.file}:${data.lines[i]}: label ${truth} is not a class index ${classes > 0 ? `0..${classes - 1}` : '(0, 1, …)'} of ${whose}`)
    }
  }
}

/**
 * Reads a prediction from a result's outputs: the regression value; for a classifier the argmax
 * of its probabilities, the class index its labels were checked against (checkLabels), or its
 * label output when it has no probabilities. A label output may number the classes otherwise
 * (scikit-learn's are the training labels, e.g. 1 and 2). An answer that is not a finite number
 * is no answer.
 */
export function predictionReader(task: Task, outputs: readonly TensorSpec[], voted: string | undefined): (out: Readonly<Record<string, Tensor>>) => number | undefined {
  const finite = (v: number | undefined): number | undefined => (v !== undefined && Number.isFinite(v) ? v : undefined)
  const source = resolveVoteSource(outputs, voted)
  const readValue = (name: string) => (out: Readonly<Record<string, Tensor>>) => (out[name] ? finite(numberAt(out[name]!, 0)) : undefined)
  if (task === 'regression') return readValue(source.kind === 'invalid' ? '' : source.name)
  if (voted !== undefined && source.kind === 'label') return readValue(source.name)
  const probs = scoredProbabilities(outputs, voted, source)
  // One row is sent; a NaN among its probabilities would read as class 0.
  if (probs) return (out) => (out[probs.name] && allFinite(out[probs.name]!) ? argmaxRows(out[probs.name]!)[0] : undefined)
  return readValue(findLabelOutput(outputs)!.name)
}

/**
 * The probabilities a classifier is scored by (their argmax): the voted output when the vote is
 * on probabilities, none when it is on a label output (its values are compared as they are),
 * else the ensemble's probabilities output.
 */
function scoredProbabilities(outputs: readonly TensorSpec[], voted: string | undefined, source: VoteSource | Invalid): TensorSpec | undefined {
  if (voted === undefined) return findProbabilitiesOutput(outputs)
  return source.kind === 'argmax' ? outputs.find((o) => o.name === voted) : undefined
}
