// What readiness waits for besides the load. A loaded gateway takes predicts (gateway.ready),
// but it may not be what a load balancer should send traffic to yet: a new instance whose
// model stream is still reading the topic serves old versions until it reaches the end. Such
// a part holds readiness (/readyz, the health services) until it lets go, and must let go by
// itself within a bound: nothing here times out.

/** A part readiness waits for (the model stream catching up). */
export interface ReadinessHold {
  /** Why readiness waits for it, while it does; null once it no longer does (for good). */
  waiting(): string | null
  /** Settles once it no longer holds readiness (it may hold it no longer than its own bound). */
  readonly released: Promise<void>
}

export class ReadinessHolds {
  private readonly holds = new Map<string, ReadinessHold>()

  /** Readiness waits for `hold` too, named `name` in /readyz. */
  add(name: string, hold: ReadinessHold): void {
    this.holds.set(name, hold)
  }

  /** Whether anything still holds readiness. */
  get holding(): boolean {
    for (const hold of this.holds.values()) if (hold.waiting() !== null) return true
    return false
  }

  /** Why readiness waits, by name, for the holds that still hold it. */
  waiting(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [name, hold] of this.holds) {
      const why = hold.waiting()
      if (why !== null) out[name] = why
    }
    return out
  }

  /** Settles once none of the holds added so far holds readiness. */
  async released(): Promise<void> {
    await Promise.all([...this.holds.values()].map((hold) => hold.released))
  }
}
