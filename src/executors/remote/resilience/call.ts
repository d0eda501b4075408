// The shape every resilience layer shares: a call to an upstream, given its request, the
// signal that cancels it and its absolute deadline (performance.now() clock). A layer takes
// a Call and returns one, so they compose (breaker ∘ retry ∘ hedge ∘ timeout ∘ the protocol
// call) once per model, and a request pays only for what it uses.
export type Call<Req, Res> = (req: Req, signal: AbortSignal, deadline: number) => Promise<Res>

/** Smoothed latency of an upstream's successful calls (0 until the first). */
export class LatencyEstimate {
  ms = 0

  observe(ms: number): void {
    this.ms = this.ms === 0 ? ms : this.ms * 0.8 + ms * 0.2
  }
}
