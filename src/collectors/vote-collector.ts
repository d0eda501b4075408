// Hard votes (labels, or argmax of probabilities), each weighed by its member's weight:
// an early exit once no weight still to come can change the winner. Ties break by model
// order. With every weight 1 this is plain vote counting.
import type { Decision, Outcome, Votes } from '../types.ts'
import { ALL_FAILED_VOTED, DEADLINE_VOTED, labelKey } from './outputs.ts'
import type { Collector } from './types.ts'
import { meetsQuorum, Tally, unseenWeight, type VotePlan } from './vote-plan.ts'

export class VoteCollector extends Tally implements Collector {
  // Distinct labels so far, in first-seen order; at most one per model, so sized n.
  private readonly keys: string[]
  /** Summed weight of each label's voters. */
  private readonly weight: Float64Array
  /** Number of each label's voters (quorum `all` counts members, not weight). */
  private readonly voters: Int32Array
  /** Lowest model index among each label's voters: its tie-break rank and its answer. */
  private readonly first: Int32Array
  private distinct = 0

  constructor(plan: VotePlan) {
    super(plan)
    this.keys = new Array<string>(plan.n)
    this.weight = new Float64Array(plan.n)
    this.voters = new Int32Array(plan.n)
    this.first = new Int32Array(plan.n)
  }

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    if (!this.admit(i)) return undefined
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
    const w = this.plan.weights[index]!
    for (let j = 0; j < this.distinct; j++) {
      if (this.keys[j] === key) {
        this.weight[j]! += w
        this.voters[j]!++
        if (index < this.first[j]!) this.first[j] = index
        return
      }
    }
    const j = this.distinct++
    this.keys[j] = key
    this.weight[j] = w
    this.voters[j] = 1
    this.first[j] = index
  }

  /** Label slot of the leader: most weight, ties to the lowest model index; -1 if none. */
  private leader(): number {
    let lead = -1
    for (let j = 0; j < this.distinct; j++) {
      if (lead < 0 || this.weight[j]! > this.weight[lead]! || (this.weight[j] === this.weight[lead] && this.first[j]! < this.first[lead]!)) lead = j
    }
    return lead
  }

  /** Most weight of any label other than `lead`. */
  private runnerUp(lead: number): number {
    let second = 0
    for (let j = 0; j < this.distinct; j++) if (j !== lead && this.weight[j]! > second) second = this.weight[j]!
    return second
  }

  private evaluate(): Decision | undefined {
    const { plan } = this
    if (this.arrived === plan.n) return this.settle()
    const remaining = unseenWeight(plan, this.seen)
    const lead = this.leader()
    const leadWeight = lead < 0 ? 0 : this.weight[lead]!
    const leadVoters = lead < 0 ? 0 : this.voters[lead]!
    // Safe to stop only when even all the remaining weight going to the runner-up (or to a
    // new label, which starts at 0) would leave it strictly behind: the final tally could
    // not tie, so model order could not pick another label either.
    const unbeatable = lead >= 0 && leadWeight > this.runnerUp(lead) + remaining
    if (unbeatable && meetsQuorum(plan, leadWeight, leadVoters)) return this.answer(lead, plan.quorumReason)
    // The leader has the most weight: if it cannot reach the quorum, no label can.
    if (meetsQuorum(plan, leadWeight + remaining, leadVoters + plan.n - this.arrived)) return undefined
    if (plan.onNoMajority !== 'plurality') return this.noMajority()
    return unbeatable ? this.answer(lead, 'plurality') : undefined
  }

  /** Decides on the votes in hand: used once all have arrived, and at the deadline. */
  private settle(): Decision | undefined {
    this.done = true
    const lead = this.leader()
    if (lead < 0) return this.failed === this.plan.n ? ALL_FAILED_VOTED : undefined
    if (meetsQuorum(this.plan, this.weight[lead]!, this.voters[lead]!)) return this.answer(lead, this.plan.quorumReason)
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
    for (let j = 0; j < this.distinct; j++) entries[j] = [this.keys[j]!, this.weight[j]!]
    return Object.fromEntries(entries)
  }
}
