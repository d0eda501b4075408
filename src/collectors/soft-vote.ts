// Soft votes (`mode: soft`): each member adds its weight times its class probabilities
// (each row normalized to sum 1, negatives as 0), the class with the most mass wins per
// row. A member can add at most its weight to any one class, so the vote stops as soon as
// every row's leader is ahead of its runner-up by more than the weight still to come: the
// answer is then exactly the one all members would give. Ties break by model order.
import { DATATYPES, elementCount, floatOrFP32, numberAt, type Tensor, type TensorData, type TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome, Votes } from '../types.ts'
import { ALL_FAILED_VOTED, DEADLINE_VOTED, answerRows, argmaxAt, classCount } from './outputs.ts'
import type { Collector } from './types.ts'
import { Tally, unseenWeight } from './vote-plan.ts'

export class SoftVoteCollector extends Tally implements Collector {
  /** Weighted probability mass per [row, class]; sized by the first member whose probabilities count. */
  private mass: Float64Array | undefined
  private rows = 0
  private classes = 0
  private votedWeight = 0

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    if (!this.admit(i)) return undefined
    // An ok model without usable probabilities cannot vote: it counts as failed.
    if (outcome.status !== 'ok' || !this.add(outcome.outputs, i)) {
      if (++this.failed === this.plan.n) return this.finish(ALL_FAILED_VOTED)
    }
    return this.evaluate()
  }

  onDeadline(): Decision {
    return this.settle() ?? DEADLINE_VOTED
  }

  private add(outputs: TensorMap, index: number): boolean {
    const tensor = outputs[this.plan.source.name]
    if (tensor === undefined || tensor.datatype === 'BYTES') return false
    // Another row count than the request's: not a vote (when unknown, the first voter's holds).
    if (this.expectedRows !== 0 && answerRows(tensor) !== this.expectedRows) return false
    const classes = classCount(tensor)
    const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
    if (rows === 0 || tensor.data.length !== rows * classes) return false
    if (this.mass !== undefined && (rows !== this.rows || classes !== this.classes)) return false
    for (let r = 0; r < rows; r++) {
      const sum = rowSum(tensor, r * classes, classes)
      if (!(sum > 0 && sum < Number.POSITIVE_INFINITY)) return false
    }
    // Sized only once a member really votes: a tally with no vote in it would answer 0/0.
    if (this.mass === undefined) {
      this.mass = new Float64Array(rows * classes)
      this.rows = rows
      this.classes = classes
    }
    const w = this.plan.weights[index]!
    const mass = this.mass
    for (let r = 0; r < rows; r++) {
      const base = r * classes
      const scale = w / rowSum(tensor, base, classes)
      for (let c = 0; c < classes; c++) mass[base + c]! += Math.max(numberAt(tensor, base + c), 0) * scale
    }
    this.votedWeight += w
    this.outputs[index] = outputs
    return true
  }

  private evaluate(): Decision | undefined {
    if (this.arrived === this.plan.n) return this.settle()
    const mass = this.mass
    if (mass === undefined) return undefined
    const remaining = unseenWeight(this.plan, this.seen)
    for (let r = 0; r < this.rows; r++) {
      const base = r * this.classes
      const lead = this.leader(r)
      let second = 0
      for (let c = 0; c < this.classes; c++) if (c !== lead && mass[base + c]! > second) second = mass[base + c]!
      // Strictly ahead even if all that is left went to the runner-up: the final tally cannot tie.
      if (!(mass[base + lead]! > second + remaining)) return undefined
    }
    return this.answer()
  }

  /** Decides on the probabilities in hand: used once all have arrived, and at the deadline. */
  private settle(): Decision | undefined {
    this.done = true
    if (this.mass === undefined) return this.failed === this.plan.n ? ALL_FAILED_VOTED : undefined
    return this.answer()
  }

  /** Class with the most mass in `row`; a tie goes to the class the lowest-index voter rates higher. */
  private leader(row: number): number {
    const mass = this.mass!
    const base = row * this.classes
    let best = 0
    for (let c = 1; c < this.classes; c++) {
      const m = mass[base + c]!
      if (m > mass[base + best]! || (m === mass[base + best]! && this.prefers(base, c, best))) best = c
    }
    return best
  }

  private prefers(base: number, a: number, b: number): boolean {
    for (let i = 0; i < this.plan.n; i++) {
      const t = this.outputs[i]?.[this.plan.source.name]
      if (t === undefined) continue
      const pa = Math.max(numberAt(t, base + a), 0)
      const pb = Math.max(numberAt(t, base + b), 0)
      if (pa !== pb) return pa > pb
    }
    return a < b
  }

  private answer(): Decision {
    const { rows, classes } = this
    const mass = this.mass!
    const winners = new Int32Array(rows)
    for (let r = 0; r < rows; r++) winners[r] = this.leader(r)
    // In the voters' own form (a float datatype, a shape such as [rows, 1, classes]), as the ensemble declares it.
    const like = this.voterTensor()
    const datatype = floatOrFP32(like.datatype)
    const averaged = new (DATATYPES[datatype].array as Float32ArrayConstructor)(rows * classes)
    for (let e = 0; e < averaged.length; e++) averaged[e] = mass[e]! / this.votedWeight
    const probabilities: Tensor = { datatype, shape: like.shape, data: averaged }
    const chosen = this.agreeing(winners)
    const name = this.plan.source.name
    const outputs: TensorMap =
      chosen >= 0 ? { ...this.outputs[chosen], [name]: probabilities } : this.withLabel({ [name]: probabilities }, winners)
    return this.finish({ kind: 'answer', chosen: chosen >= 0 ? chosen : null, reason: 'soft', outputs, votes: this.votes() })
  }

  /** A voter's probabilities (all voters' have one shape: add() refuses another). */
  private voterTensor(): Tensor {
    for (let i = 0; i < this.plan.n; i++) {
      const t = this.outputs[i]?.[this.plan.source.name]
      if (t !== undefined) return t
    }
    throw new Error('a soft vote answered without a voter')
  }

  /** The lowest-index voter whose own argmax is the winner on every row (its answer is the ensemble's), or -1. */
  private agreeing(winners: Int32Array): number {
    for (let i = 0; i < this.plan.n; i++) {
      const t = this.outputs[i]?.[this.plan.source.name]
      if (t === undefined) continue
      let agrees = true
      for (let r = 0; r < this.rows && agrees; r++) agrees = argmaxAt(t, r, this.classes) === winners[r]
      if (agrees) return i
    }
    return -1
  }

  /**
   * No single member gave the winning classes: the label output is built row by row from
   * a member that did rate that row's winner highest, else it is the class index.
   */
  private withLabel(outputs: Record<string, Tensor>, winners: Int32Array): TensorMap {
    const spec = this.plan.label
    if (spec === undefined) return outputs
    let template: Tensor | undefined
    for (let i = 0; i < this.plan.n && template === undefined; i++) template = this.outputs[i]?.[spec.name]
    if (template?.data.length !== this.rows) return outputs
    const data = template.data.slice() as TensorData
    for (let r = 0; r < this.rows; r++) setElement(data, r, this.labelFor(spec.name, r, winners[r]!))
    outputs[spec.name] = { datatype: template.datatype, shape: template.shape, data }
    return outputs
  }

  private labelFor(name: string, row: number, winner: number): unknown {
    for (let i = 0; i < this.plan.n; i++) {
      const probs = this.outputs[i]?.[this.plan.source.name]
      const label = this.outputs[i]?.[name]
      if (probs !== undefined && label?.data.length === this.rows && argmaxAt(probs, row, this.classes) === winner) return label.data[row]
    }
    return winner
  }

  /** Class → weighted probability mass (mean over rows), as hard votes give label → weight. */
  private votes(): Votes {
    const mass = this.mass!
    const entries: [string, number][] = []
    for (let c = 0; c < this.classes; c++) {
      let sum = 0
      for (let r = 0; r < this.rows; r++) sum += mass[r * this.classes + c]!
      const value = Math.round((sum / this.rows) * 1e4) / 1e4
      if (value > 0) entries.push([String(c), value])
    }
    return Object.fromEntries(entries)
  }
}

function rowSum(tensor: Tensor, base: number, classes: number): number {
  let sum = 0
  for (let c = 0; c < classes; c++) sum += Math.max(numberAt(tensor, base + c), 0)
  return sum
}

/** Writes a label into a copied label tensor, converting a class index to the array's element kind. */
function setElement(data: TensorData, i: number, value: unknown): void {
  const sample = data[0]
  if (typeof sample === 'bigint') (data as BigInt64Array)[i] = typeof value === 'bigint' ? value : BigInt(value as number)
  else if (typeof sample === 'string') (data as string[])[i] = String(value)
  else (data as Float64Array)[i] = Number(value)
}
