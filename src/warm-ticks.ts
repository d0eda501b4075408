// V8 remembers, at each computed key of an object literal, the shape of the first object
// the key was defined on; one object of another shape there later and the site is
// megamorphic for the life of the process: its optimized code defines those keys through
// the runtime. process.nextTick builds its tick object with three symbol keys, and node's
// streams call it about four times per HTTP request. Measured on the single-model bench
// (perf, the main thread): in about 3 of 10 starts of the server nextTick fell into that
// state during start-up and stayed there, +3.3 µs per predict (~9% fewer predicts per
// second). Run hot before anything else (so its sites settle on one shape and it is
// optimized with them), it fell into it in none of 32 starts. The exact start-up event that
// brings the other shape is not known; the cost of this is ~2 ms once.

const RUNS = 20_000
const noop = (): void => {}

/** Runs process.nextTick hot once, before serving. */
export function warmNextTick(): void {
  for (let i = 0; i < RUNS; i++) process.nextTick(noop)
}
