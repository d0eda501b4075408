// Every predict's deadline on shared timers. Most predicts end long before their deadline,
// so a timer each (armed, then cleared) is pure cost: Node's timer insert and removal were
// ~0.8 µs of the event loop per predict in the single-model profile. Predicts with the same
// budget start one after another, so their deadlines come in the order they were queued:
// one FIFO per budget, and one timer per FIFO, for its oldest predict still waiting. A
// predict that ends first leaves a hole (O(1)); holes at the head are skipped as they form.
// Budgets must be equal, not close, to share a FIFO: deadlines out of order by a fraction
// of a ms would be decided late. The waits are stepped (timer-step.ts) so the timer that
// decides is short.
import { timerStep } from '../timer-step.ts'

/** The method a queue calls (a symbol: not part of what a run shows its callers). */
export const EXPIRE = Symbol('expire')

/** What waits for its deadline (a performance.now() time): [EXPIRE]() is called once it has come, within the timers' 1 ms grain. */
export interface Expiring {
  readonly deadline: number
  [EXPIRE](): void
}

/** A queue's array is cut down to its waiting part once this many slots at its head are spent (and they are half of it). */
const COMPACT_AT = 1024

/** The deadlines of one budget, in the order they were queued (and so of their deadlines). */
export class DeadlineQueue {
  private items: (Expiring | null)[] = []
  /** Index in `items` of the oldest entry still waiting (items.length when none is). */
  private head = 0
  /** Slot number of items[0]: slots stay valid when the array is cut down. */
  private base = 0
  private waiting = 0
  private timer: NodeJS.Timeout | undefined
  /** The owner's key for this queue. */
  private readonly key: number
  private readonly owner: Deadlines

  constructor(key: number, owner: Deadlines) {
    this.key = key
    this.owner = owner
  }

  /** Queues `entry`, whose deadline is no earlier than any queued before it; returns its slot, for remove(). */
  add(entry: Expiring): number {
    if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.base += this.head
      this.head = 0
    }
    const slot = this.base + this.items.length
    this.items.push(entry)
    if (this.waiting++ === 0) this.arm(entry.deadline - performance.now())
    return slot
  }

  /** The entry in `slot` ended before its deadline (a no-op once it expired or was removed). */
  remove(slot: number): void {
    const i = slot - this.base
    if (i < this.head || i >= this.items.length || this.items[i] === null) return
    this.items[i] = null
    if (i === this.head) this.skipEnded()
    if (--this.waiting === 0) this.close()
  }

  private skipEnded(): void {
    const items = this.items
    let h = this.head
    while (h < items.length && items[h] === null) h++
    this.head = h
  }

  private arm(leftMs: number): void {
    this.timer = setTimeout(this.fire, timerStep(leftMs))
  }

  /** Expires every entry at the head whose deadline has come; waits again for the first that has not. */
  private readonly fire = (): void => {
    this.timer = undefined
    try {
      while (this.waiting > 0) {
        const entry = this.items[this.head] as Expiring
        const left = entry.deadline - performance.now()
        if (left >= 1) return this.arm(left)
        this.items[this.head] = null
        this.skipEnded()
        if (--this.waiting === 0) this.close()
        entry[EXPIRE]() // may end (remove) others, or queue new ones: the loop reads the fields again
      }
    } finally {
      // An expiry that threw must not leave the others of this budget without a timer.
      if (this.waiting > 0 && this.timer === undefined) this.arm((this.items[this.head] as Expiring).deadline - performance.now())
    }
  }

  /** Nothing waits: no timer, and the owner forgets this queue (a new one starts with the next entry). */
  private close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.owner.forget(this.key, this)
  }
}

/** The queues by budget (ms): one gateway's, so the runs of a gateway closed by a test never hold another's timers. */
export class Deadlines {
  private readonly queues = new Map<number, DeadlineQueue>()

  /** The queue of this budget's deadlines. */
  of(budgetMs: number): DeadlineQueue {
    let queue = this.queues.get(budgetMs)
    if (queue === undefined) this.queues.set(budgetMs, (queue = new DeadlineQueue(budgetMs, this)))
    return queue
  }

  forget(key: number, queue: DeadlineQueue): void {
    if (this.queues.get(key) === queue) this.queues.delete(key)
  }

  /** Budgets with predicts waiting (one timer each). */
  get size(): number {
    return this.queues.size
  }
}
