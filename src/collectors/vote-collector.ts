// Hard votes (labels, or argmax of probabilities), each weighed by its member's weight and
// counted row by row: a batch is one request, but each row is its own vote, as with soft
// votes. An early exit once no weight still to come can change any row's winner. Ties break
// by model order. With every weight 1 this is plain vote counting.
import { elementCount, type Tensor } from '../tensor/index.ts'
import type { Decision, Outcome, Votes } from '../types.ts'
import { ALL_FAILED_VOTED, DEADLINE_VOTED, allFinite, answerRows, argmaxAt, classCount } from './outputs.ts'
import { spliceRows } from './row-splice.ts'
import type { Collector } from './types.ts'
import { meetsQuorum, Tally, unseenWeight } from './vote-plan.ts'

// What a row's tally says so far.
const OPEN = 0
const BY_QUORUM = 1
const BY_PLURALITY = 2
const NO_MAJORITY = 3

// Shared until the first vote sizes the tables: a request whose members all fail allocates none.
const NO_KEYS: string[] = []
const NO_WEIGHTS = new Float64Array(0)
const NO_INTS = new Int32Array(0)

/**
 * The most rows of a batch whose votes are listed. A batch of up to this many rows lists every
 * row; a larger one sums up (`rows`, `rows_split`, `rows_omitted`) and lists only the rows its
 * voters split on, the first this many: `votes` stays small in every response and record.
 */
export const VOTES_ROW_LIMIT = 100

export class VoteCollector extends Tally implements Collector {
  /** Vote positions per member (rows; each label element for a label output); 0 until the first vote. */
  private rows = 0
  // Tables indexed [row * n + slot]: each row's distinct labels in first-seen order, at most
  // one per member, so n slots a row.
  private keys = NO_KEYS
  /** Summed weight of each label's voters. */
  private weight = NO_WEIGHTS
  /**
   * Three int tables in one allocation: each label's voter count (quorum `all` counts
   * members, not weight) at [slot]; its lowest voter index, the tie-break rank and the answer,
   * at [firstAt + slot]; each row's number of distinct labels at [distinctAt + row].
   */
  private ints = NO_INTS
  private firstAt = 0
  private distinctAt = 0

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    if (!this.admit(i)) return undefined
    // An ok model without the voted output (or with another row count) cannot vote: it counts as failed.
    const outputs = outcome.status === 'ok' ? outcome.outputs : undefined
    const tensor = outputs?.[this.plan.source.name]
    if (outputs === undefined || tensor === undefined || !this.cast(tensor, i)) {
      if (++this.failed === this.plan.n) return this.finish(ALL_FAILED_VOTED)
    } else {
      this.outputs[i] = outputs
    }
    return this.evaluate()
  }

  onDeadline(): Decision {
    return this.settle() ?? DEADLINE_VOTED
  }

  /**
   * Counts member `index`'s vote on every row; false when it answers another number of rows
   * than the request has (when known), or than the first voter, or a value that is not finite.
   */
  private cast(tensor: Tensor, index: number): boolean {
    if (this.expectedRows !== 0 && answerRows(tensor) !== this.expectedRows) return false
    // NaN reads as class 0 in an argmax (and as a label of its own): a broken answer does not vote, as in a soft vote.
    if (!allFinite(tensor)) return false
    const argmax = this.plan.source.kind === 'argmax'
    const classes = argmax ? classCount(tensor) : 1
    const rows = argmax ? argmaxRows(tensor, classes) : tensor.data.length
    if (rows === 0 || (this.rows !== 0 && rows !== this.rows)) return false
    if (this.rows === 0) this.size(rows)
    if (argmax) for (let r = 0; r < rows; r++) this.vote(r, String(argmaxAt(tensor, r, classes)), index)
    else for (let r = 0; r < rows; r++) this.vote(r, String(tensor.data[r]), index)
    return true
  }

  private size(rows: number): void {
    const cells = rows * this.plan.n
    this.rows = rows
    this.keys = new Array<string>(cells)
    this.weight = new Float64Array(cells)
    this.ints = new Int32Array(2 * cells + rows)
    this.firstAt = cells
    this.distinctAt = 2 * cells
  }

  private vote(row: number, key: string, index: number): void {
    const { ints } = this
    const w = this.plan.weights[index]!
    const base = row * this.plan.n
    const distinct = ints[this.distinctAt + row]!
    for (let s = base; s < base + distinct; s++) {
      if (this.keys[s] === key) {
        this.weight[s]! += w
        ints[s]!++
        if (index < ints[this.firstAt + s]!) ints[this.firstAt + s] = index
        return
      }
    }
    const s = base + distinct
    ints[this.distinctAt + row] = distinct + 1
    this.keys[s] = key
    this.weight[s] = w
    ints[s] = 1
    ints[this.firstAt + s] = index
  }

  /** Slot of `row`'s leader: most weight, ties to the lowest model index. */
  private leader(row: number): number {
    const base = row * this.plan.n
    const end = base + this.ints[this.distinctAt + row]!
    let lead = base
    for (let s = base + 1; s < end; s++) {
      const w = this.weight[s]!
      if (w > this.weight[lead]! || (w === this.weight[lead] && this.ints[this.firstAt + s]! < this.ints[this.firstAt + lead]!)) lead = s
    }
    return lead
  }

  /** Most weight of any label of `row` other than `lead`. */
  private runnerUp(row: number, lead: number): number {
    const base = row * this.plan.n
    const end = base + this.ints[this.distinctAt + row]!
    let second = 0
    for (let s = base; s < end; s++) if (s !== lead && this.weight[s]! > second) second = this.weight[s]!
    return second
  }

  /** Whether `row` is decided, and how, with `remaining` weight still to come. */
  private rowState(row: number, remaining: number): number {
    const { plan } = this
    const lead = this.leader(row)
    const leadWeight = this.weight[lead]!
    const leadVoters = this.ints[lead]!
    // Safe to stop only when even all the remaining weight going to the runner-up (or to a
    // new label, which starts at 0) would leave it strictly behind: the final tally could
    // not tie, so model order could not pick another label either.
    const unbeatable = leadWeight > this.runnerUp(row, lead) + remaining
    if (unbeatable && meetsQuorum(plan, leadWeight, leadVoters)) return BY_QUORUM
    // The leader has the most weight: if it cannot reach the quorum, no label can.
    if (meetsQuorum(plan, leadWeight + remaining, leadVoters + plan.n - this.arrived)) return OPEN
    if (plan.onNoMajority !== 'plurality') return NO_MAJORITY
    return unbeatable ? BY_PLURALITY : OPEN
  }

  private evaluate(): Decision | undefined {
    const { plan } = this
    if (this.arrived === plan.n) return this.settle()
    const remaining = unseenWeight(plan, this.seen)
    if (this.rows === 0) {
      // No vote yet: stop only when no label could reach the quorum anyway.
      if (meetsQuorum(plan, remaining, plan.n - this.arrived) || plan.onNoMajority === 'plurality') return undefined
      return this.noMajority()
    }
    let open = false
    let plurality = false
    // Any row without a majority settles the request (abstain, error), so look at every row.
    for (let r = 0; r < this.rows; r++) {
      const state = this.rowState(r, remaining)
      if (state === NO_MAJORITY) return this.noMajority()
      if (state === OPEN) open = true
      else if (state === BY_PLURALITY) plurality = true
    }
    return open ? undefined : this.answer(plurality ? 'plurality' : plan.quorumReason)
  }

  /** Decides on the votes in hand: used once all have arrived, and at the deadline. */
  private settle(): Decision | undefined {
    this.done = true
    if (this.rows === 0) return this.failed === this.plan.n ? ALL_FAILED_VOTED : undefined
    let plurality = false
    for (let r = 0; r < this.rows; r++) {
      const lead = this.leader(r)
      if (meetsQuorum(this.plan, this.weight[lead]!, this.ints[lead]!)) continue
      if (this.plan.onNoMajority !== 'plurality') return this.noMajority()
      plurality = true
    }
    return this.answer(plurality ? 'plurality' : this.plan.quorumReason)
  }

  private noMajority(): Decision {
    const votes = this.votes()
    if (this.plan.onNoMajority === 'error') return this.finish({ kind: 'fail', code: 'NO_CONSENSUS', reason: 'no-majority', votes })
    return this.finish({ kind: 'answer', chosen: null, reason: 'no-majority', outputs: null, votes })
  }

  private answer(reason: string): Decision {
    if (this.rows === 1) {
      const chosen = this.ints[this.firstAt + this.leader(0)]!
      return this.finish({ kind: 'answer', chosen, reason, outputs: this.outputs[chosen] ?? null, votes: this.votes() })
    }
    const winners = new Int32Array(this.rows)
    for (let r = 0; r < this.rows; r++) winners[r] = this.leader(r)
    const chosen = this.agreeing(winners)
    if (chosen >= 0) return this.finish({ kind: 'answer', chosen, reason, outputs: this.outputs[chosen] ?? null, votes: this.votes() })
    // No member gave every row's winner: each row comes from that row's winner's first voter.
    const sources = Array.from(winners, (slot) => this.outputs[this.ints[this.firstAt + slot]!]!)
    const outputs = spliceRows(sources, this.rows, this.plan.source.name)
    return this.finish({ kind: 'answer', chosen: null, reason, outputs, votes: this.votes() })
  }

  /** The lowest-index voter that voted for the winner on every row (its answer is the ensemble's), or -1. */
  private agreeing(winners: Int32Array): number {
    const argmax = this.plan.source.kind === 'argmax'
    for (let i = 0; i < this.plan.n; i++) {
      const tensor = this.outputs[i]?.[this.plan.source.name]
      if (tensor === undefined) continue
      const classes = classCount(tensor)
      let agrees = true
      for (let r = 0; r < this.rows && agrees; r++) {
        const key = argmax ? String(argmaxAt(tensor, r, classes)) : String(tensor.data[r])
        agrees = key === this.keys[winners[r]!]
      }
      if (agrees) return i
    }
    return -1
  }

  /**
   * label → summed weight for one row; for several rows `"<row>:<label>"` → weight, row by
   * row, bounded by VOTES_ROW_LIMIT.
   */
  private votes(): Votes {
    // fromEntries defines own properties, so a label such as "__proto__" is kept as data.
    if (this.rows <= 1) {
      const distinct = this.rows === 0 ? 0 : this.ints[this.distinctAt]!
      const entries = new Array<[string, number]>(distinct)
      for (let s = 0; s < distinct; s++) entries[s] = [this.keys[s]!, this.weight[s]!]
      return Object.fromEntries(entries)
    }
    const entries: [string, number][] = []
    if (this.rows <= VOTES_ROW_LIMIT) {
      for (let r = 0; r < this.rows; r++) this.rowVotes(r, entries)
      return Object.fromEntries(entries)
    }
    // A unanimous row's label is in the answer; the rows the voters split on are the news.
    let split = 0
    for (let r = 0; r < this.rows; r++) {
      if (this.ints[this.distinctAt + r]! < 2) continue
      if (split++ < VOTES_ROW_LIMIT) this.rowVotes(r, entries)
    }
    const omitted = this.rows - Math.min(split, VOTES_ROW_LIMIT)
    return Object.fromEntries([['rows', this.rows], ['rows_split', split], ['rows_omitted', omitted], ...entries])
  }

  /** Appends `row`'s `"<row>:<label>"` → weight entries. */
  private rowVotes(row: number, entries: [string, number][]): void {
    const base = row * this.plan.n
    const end = base + this.ints[this.distinctAt + row]!
    for (let s = base; s < end; s++) entries.push([`${row}:${this.keys[s]!}`, this.weight[s]!])
  }
}

/** Rows of a probabilities tensor with `classes` a row; 0 if its data does not fill them. */
function argmaxRows(tensor: Tensor, classes: number): number {
  const rows = classes > 0 ? Math.floor(elementCount(tensor.shape) / classes) : 0
  return tensor.data.length === rows * classes ? rows : 0
}
