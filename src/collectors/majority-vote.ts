// majority-vote: classification by label (a label output or argmax of probabilities), with
// an early exit once no vote still to come can change the winner; regression by median or
// mean once every model has answered. Ties always break by model order.
import Type from 'typebox'
import type { Static } from 'typebox'
import { numberAt } from '../tensor/index.ts'
import type { Tensor, TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome, Votes } from '../types.ts'
import { ALL_FAILED, ALL_FAILED_VOTED, DEADLINE, DEADLINE_VOTED, labelKey, resolveVoteSource } from './outputs.ts'
import type { VoteSource } from './outputs.ts'
import type { Collector, EnsembleShape, Strategy, StrategyFactory } from './types.ts'

export const MajorityVoteSchema = Type.Object(
  {
    quorum: Type.Optional(Type.Union([Type.Literal('majority'), Type.Literal('all'), Type.Integer({ minimum: 1 })])),
    on_no_majority: Type.Optional(Type.Union([Type.Literal('plurality'), Type.Literal('abstain'), Type.Literal('error')])),
    regression: Type.Optional(Type.Union([Type.Literal('median'), Type.Literal('mean')])),
    output: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

export interface MajorityVoteOptions {
  readonly quorum: 'majority' | 'all' | number
  readonly onNoMajority: 'plurality' | 'abstain' | 'error'
  readonly regression: 'median' | 'mean'
  /** The output to vote on; undefined: a label output, else argmax of probabilities, else a float value. */
  readonly output: string | undefined
}

/** Everything a collector needs, resolved once per ensemble so requests only read it. */
interface Plan {
  readonly n: number
  readonly required: number
  readonly quorumReason: 'majority' | 'unanimous' | 'quorum'
  readonly onNoMajority: 'plurality' | 'abstain' | 'error'
  readonly regression: 'median' | 'mean'
  readonly source: VoteSource
}

class VoteCollector implements Collector {
  private readonly plan: Plan
  private readonly seen: Uint8Array
  private readonly outputs: (TensorMap | undefined)[]
  // Distinct labels so far, in first-seen order; at most one per model, so sized n.
  private readonly keys: string[]
  private readonly counts: Int32Array
  /** Lowest model index among each label's voters: its tie-break rank and its answer. */
  private readonly first: Int32Array
  private distinct = 0
  private arrived = 0
  private failed = 0
  private done = false

  constructor(plan: Plan) {
    this.plan = plan
    this.seen = new Uint8Array(plan.n)
    this.outputs = new Array<TensorMap | undefined>(plan.n)
    this.keys = new Array<string>(plan.n)
    this.counts = new Int32Array(plan.n)
    this.first = new Int32Array(plan.n)
  }

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    if (this.done || i < 0 || i >= this.plan.n || this.seen[i] === 1) return undefined
    this.seen[i] = 1
    this.arrived++
    // An ok model without the voted output cannot vote: it counts as failed.
    const outputs = outcome.status === 'ok' ? outcome.outputs : undefined
    const key = outputs === undefined ? undefined : labelKey(outputs, this.plan.source)
    if (key === undefined) {
      if (++this.failed === this.plan.n) return this.finish(ALL_FAILED_VOTED)
    } else {
      this.outputs[i] = outputs
      this.vote(key, i)
    }
    return this.evaluate()
  }

  onDeadline(): Decision {
    return this.settle() ?? DEADLINE_VOTED
  }

  private vote(key: string, index: number): void {
    for (let j = 0; j < this.distinct; j++) {
      if (this.keys[j] === key) {
        this.counts[j]!++
        if (index < this.first[j]!) this.first[j] = index
        return
      }
    }
    const j = this.distinct++
    this.keys[j] = key
    this.counts[j] = 1
    this.first[j] = index
  }

  /** Label slot of the leader: most votes, ties to the lowest model index; -1 if none. */
  private leader(): number {
    let lead = -1
    for (let j = 0; j < this.distinct; j++) {
      if (lead < 0 || this.counts[j]! > this.counts[lead]! || (this.counts[j] === this.counts[lead] && this.first[j]! < this.first[lead]!)) lead = j
    }
    return lead
  }

  /** Most votes of any label other than `lead`. */
  private runnerUp(lead: number): number {
    let second = 0
    for (let j = 0; j < this.distinct; j++) if (j !== lead && this.counts[j]! > second) second = this.counts[j]!
    return second
  }

  private evaluate(): Decision | undefined {
    const remaining = this.plan.n - this.arrived
    if (remaining === 0) return this.settle()
    const lead = this.leader()
    const leadCount = lead < 0 ? 0 : this.counts[lead]!
    // Safe to stop only when even every remaining vote going to the runner-up (or to a
    // new label, which starts at 0) would leave it strictly behind.
    const unbeatable = lead >= 0 && leadCount > this.runnerUp(lead) + remaining
    if (leadCount >= this.plan.required && unbeatable) return this.answer(lead, this.plan.quorumReason)
    if (leadCount + remaining >= this.plan.required) return undefined
    // No label can reach the quorum any more.
    if (this.plan.onNoMajority !== 'plurality') return this.noMajority()
    return unbeatable ? this.answer(lead, 'plurality') : undefined
  }

  /** Decides on the votes in hand: used once all have arrived, and at the deadline. */
  private settle(): Decision | undefined {
    this.done = true
    const lead = this.leader()
    if (lead < 0) return this.failed === this.plan.n ? ALL_FAILED_VOTED : undefined
    if (this.counts[lead]! >= this.plan.required) return this.answer(lead, this.plan.quorumReason)
    if (this.plan.onNoMajority !== 'plurality') return this.noMajority()
    return this.answer(lead, 'plurality')
  }

  private noMajority(): Decision {
    const votes = this.votes()
    if (this.plan.onNoMajority === 'error') return this.finish({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes })
    return this.finish({ kind: 'answer', chosen: null, reason: 'no-majority', outputs: null, votes })
  }

  private answer(slot: number, reason: string): Decision {
    const chosen = this.first[slot]!
    return this.finish({ kind: 'answer', chosen, reason, outputs: this.outputs[chosen] ?? null, votes: this.votes() })
  }

  private votes(): Votes {
    // fromEntries defines own properties, so a label such as "__proto__" is kept as data.
    const entries = new Array<[string, number]>(this.distinct)
    for (let j = 0; j < this.distinct; j++) entries[j] = [this.keys[j]!, this.counts[j]!]
    return Object.fromEntries(entries)
  }

  private finish(decision: Decision): Decision {
    this.done = true
    return decision
  }
}

class RegressionCollector implements Collector {
  private readonly plan: Plan
  private readonly values: (Tensor | undefined)[]
  private readonly seen: Uint8Array
  private arrived = 0
  private failed = 0
  private done = false

  constructor(plan: Plan) {
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
    if (value === undefined || value.datatype === 'BYTES') {
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
    const output: Tensor = { datatype: 'FP32', shape: ref.shape, data: Float32Array.from(result) }
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

function requiredVotes(quorum: MajorityVoteOptions['quorum'], n: number): number {
  if (quorum === 'all') return n
  if (typeof quorum === 'number') return quorum
  return Math.floor(n / 2) + 1
}

export const majorityVote: StrategyFactory<MajorityVoteOptions, Static<typeof MajorityVoteSchema>> = {
  name: 'majority-vote',
  options: MajorityVoteSchema,
  parse: (raw) => ({
    quorum: raw.quorum ?? 'majority',
    onNoMajority: raw.on_no_majority ?? 'plurality',
    regression: raw.regression ?? 'median',
    output: raw.output,
  }),
  check(options: MajorityVoteOptions, ensemble: EnsembleShape): string[] {
    const messages: string[] = []
    const n = ensemble.models.length
    if (typeof options.quorum === 'number' && options.quorum > n) {
      messages.push(`quorum ${options.quorum} is more than the ${n} models of ensemble "${ensemble.name}"`)
    }
    const source = resolveVoteSource(ensemble.outputs, options.output)
    if (source.kind === 'invalid') messages.push(source.message)
    return messages
  },
  create(options: MajorityVoteOptions, ensemble: EnsembleShape): Strategy {
    const source = resolveVoteSource(ensemble.outputs, options.output)
    if (source.kind === 'invalid') throw new Error(`majority-vote for ensemble "${ensemble.name}": ${source.message}`)
    const quorum = options.quorum
    const n = ensemble.models.length
    const plan: Plan = Object.freeze({
      n,
      required: requiredVotes(quorum, n),
      quorumReason: quorum === 'all' ? 'unanimous' : typeof quorum === 'number' ? 'quorum' : 'majority',
      onNoMajority: options.onNoMajority,
      regression: options.regression,
      source,
    })
    const collector = source.kind === 'regression' ? () => new RegressionCollector(plan) : () => new VoteCollector(plan)
    // No vote is decided before `required` answers (a regression waits for all): the members past them may be spared.
    const needed = source.kind === 'regression' ? n : plan.required
    const spareable = Object.freeze(Array.from({ length: n }, (_, i) => i >= needed))
    return { name: 'majority-vote', spareable, collector }
  },
}
