// Regression by majority-vote's `regression` option: the element-wise median or mean of
// the members' values, once every member has answered (an aggregate can move with every
// value) or at the deadline over those that did.
import { DATATYPES, floatOrFP32, numberAt } from '../tensor/index.ts'
import type { Tensor } from '../tensor/index.ts'
import type { Decision, Outcome } from '../types.ts'
import { ALL_FAILED, allFinite, DEADLINE } from './outputs.ts'
import type { Collector } from './types.ts'
import type { VotePlan } from './vote-plan.ts'

export class RegressionCollector implements Collector {
  private readonly plan: VotePlan
  private readonly values: (Tensor | undefined)[]
  private readonly seen: Uint8Array
  private arrived = 0
  private failed = 0
  private done = false

  constructor(plan: VotePlan) {
    this.plan = plan
    this.values = new Array<Tensor | undefined>(plan.n)
    this.seen = new Uint8Array(plan.n)
  }

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    if (this.done || i < 0 || i >= this.plan.n || this.seen[i] === 1) return undefined
    this.seen[i] = 1
    this.arrived++
    const value = outcome.status === 'ok' ? outcome.outputs[this.plan.source.name] : undefined
    // A NaN sorts last and would shift the median onto another model's value; ±∞ swamps a mean: such an answer does not count.
    if (value === undefined || value.datatype === 'BYTES' || !allFinite(value)) {
      if (++this.failed === this.plan.n) return this.finish(ALL_FAILED)
    } else {
      this.values[i] = value
    }
    // An aggregate can move with every value: wait for all of them.
    return this.arrived === this.plan.n ? this.finish(this.aggregate() ?? ALL_FAILED) : undefined
  }

  onDeadline(): Decision {
    return this.finish(this.aggregate() ?? (this.failed === this.plan.n ? ALL_FAILED : DEADLINE))
  }

  /** Element-wise median or mean over the ok models whose value has the reference size. */
  private aggregate(): Decision | undefined {
    const { n, regression } = this.plan
    let ref: Tensor | undefined
    const members = new Int32Array(n)
    let k = 0
    for (let i = 0; i < n; i++) {
      const v = this.values[i]
      if (v === undefined) continue
      // The most-preferred value fixes the shape; a model disagreeing on size is left out.
      ref ??= v
      if (v.data.length === ref.data.length) members[k++] = i
    }
    if (ref === undefined) return undefined
    const size = ref.data.length
    const result = new Float64Array(size)
    const column = new Float64Array(k)
    for (let e = 0; e < size; e++) {
      let sum = 0
      for (let m = 0; m < k; m++) {
        column[m] = numberAt(this.values[members[m]!]!, e)
        sum += column[m]!
      }
      if (regression === 'mean') {
        result[e] = sum / k
      } else {
        column.sort()
        const mid = k >> 1
        result[e] = k % 2 === 1 ? column[mid]! : (column[mid - 1]! + column[mid]!) / 2
      }
    }
    const singleRow = ref.shape.length === 0 || ref.shape[0] === 1
    // An odd median is one model's actual value; name that model when the request is one row.
    const chosen = regression === 'median' && singleRow && k % 2 === 1 ? this.matching(members, k, result) : null
    // In the models' own float datatype, as the ensemble declares it: FP64 values kept FP64, an odd median exactly one model's.
    const datatype = floatOrFP32(ref.datatype)
    const output: Tensor = { datatype, shape: ref.shape, data: (DATATYPES[datatype].array as Float64ArrayConstructor).from(result) }
    return { kind: 'answer', chosen, reason: regression, outputs: { [this.plan.source.name]: output }, votes: null }
  }

  private matching(members: Int32Array, k: number, result: Float64Array): number | null {
    for (let m = 0; m < k; m++) {
      const v = this.values[members[m]!]!
      let same = true
      for (let e = 0; e < result.length && same; e++) same = numberAt(v, e) === result[e]
      if (same) return members[m]!
    }
    return null
  }

  private finish(decision: Decision): Decision {
    this.done = true
    return decision
  }
}
