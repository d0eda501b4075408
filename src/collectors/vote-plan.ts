// What a majority-vote collector reads on every request, resolved once per ensemble at
// config load: the vote source, the quorum as a test on weight (and voter count), each
// member's weight. Requests only read it.
import type { TensorMap, TensorSpec } from '../tensor/index.ts'
import type { Decision } from '../types.ts'
import type { VoteSource } from './outputs.ts'

export type QuorumRule =
  /** More than half of the total weight (⌊n/2⌋+1 votes when every weight is 1). */
  | { readonly kind: 'majority' }
  /** Every member, voting the same label. */
  | { readonly kind: 'all' }
  /** At least N of weight (N votes when every weight is 1). */
  | { readonly kind: 'count'; readonly weight: number }

export interface VotePlan {
  readonly n: number
  readonly quorum: QuorumRule
  readonly quorumReason: 'majority' | 'unanimous' | 'quorum'
  readonly onNoMajority: 'plurality' | 'abstain' | 'error'
  readonly regression: 'median' | 'mean'
  readonly source: VoteSource
  /** Each member's weight (default 1), in model order. */
  readonly weights: Float64Array
  readonly totalWeight: number
  /** Soft mode: where the averaged probabilities go and, when the models declare one, the label output. */
  readonly label: TensorSpec | undefined
  /**
   * Whether the voted output's first dimension is the batch (declared -1): then a member must
   * answer the request's row count to vote, when the request's is known.
   */
  readonly batched: boolean
}

/** Whether a label with `weight` from `voters` members meets the quorum. */
export function meetsQuorum(plan: VotePlan, weight: number, voters: number): boolean {
  const q = plan.quorum
  if (q.kind === 'majority') return weight * 2 > plan.totalWeight
  if (q.kind === 'all') return voters === plan.n
  return weight >= q.weight
}

/** Sum of the weights of the members not seen yet: what could still change the result. */
export function unseenWeight(plan: VotePlan, seen: Uint8Array): number {
  let w = 0
  for (let i = 0; i < plan.n; i++) if (seen[i] === 0) w += plan.weights[i]!
  return w
}

/**
 * Members a decision can come without: every one past the shortest prefix (in model
 * order) whose weight could already decide, so a shared runtime may hold them back.
 */
export function spareableMembers(plan: VotePlan, soft: boolean): readonly boolean[] {
  const { n, weights, totalWeight } = plan
  const spareable = new Array<boolean>(n).fill(false)
  if (plan.source.kind === 'regression') return Object.freeze(spareable)
  let prefix = 0
  for (let k = 0; k < n; k++) {
    // A soft decision needs the arrived mass to exceed what is left; a hard one the quorum.
    if (soft ? prefix > totalWeight - prefix : meetsQuorum(plan, prefix, k)) {
      for (let i = k; i < n; i++) spareable[i] = true
      break
    }
    prefix += weights[k]!
  }
  return Object.freeze(spareable)
}

/**
 * Per-request bookkeeping the vote collectors share: who has arrived (each member once,
 * nothing after the decision), who failed, the outputs of those that voted.
 */
export abstract class Tally {
  protected readonly plan: VotePlan
  protected readonly seen: Uint8Array
  protected readonly outputs: (TensorMap | undefined)[]
  protected arrived = 0
  protected failed = 0
  protected done = false

  /** Rows every member must answer to vote; 0 when not known (then the first voter's count holds). */
  protected readonly expectedRows: number

  constructor(plan: VotePlan, requestRows?: number) {
    this.plan = plan
    this.expectedRows = plan.batched && requestRows !== undefined ? requestRows : 0
    this.seen = new Uint8Array(plan.n)
    this.outputs = new Array<TensorMap | undefined>(plan.n)
  }

  /** Counts the outcome's member as arrived; false for a repeat, an unknown index or after the decision. */
  protected admit(index: number): boolean {
    if (this.done || index < 0 || index >= this.plan.n || this.seen[index] === 1) return false
    this.seen[index] = 1
    this.arrived++
    return true
  }

  protected finish(decision: Decision): Decision {
    this.done = true
    return decision
  }
}
