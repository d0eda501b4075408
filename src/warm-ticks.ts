// process.nextTick builds each tick object as a literal with three symbol keys, and node's
// streams call it about four times per HTTP request. Measured on the single-model bench
// (perf, the main thread): in about a third of the server's starts (12 of 37), nextTick's
// optimized code defined those keys through V8's runtime for the life of the process, +3.3 µs
// per predict (~9% fewer predicts per second); the gRPC path showed it too. Our reading is
// that the literal's key sites saw objects of more than one shape during start-up, and were
// compiled for that. Run hot at the start of serve (after the imports, before the config is
// read), before anything serves, it fell into that state in none of 32 starts. Cost: ~2 ms once.
// The bench's bare baseline runs it too, so the two are compared warmed alike.

const RUNS = 20_000
const noop = (): void => {}

/** Runs process.nextTick hot, once, before serving. */
export function warmNextTick(): void {
  for (let i = 0; i < RUNS; i++) process.nextTick(noop)
}
