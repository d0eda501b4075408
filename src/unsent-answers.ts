// Answers written but not sent yet. node:http2 sends what a callback writes only once the
// event loop turns (a session flushes from a native setImmediate, ahead of the next turn's
// JavaScript callbacks), where node:http writes a response to its socket at once. The
// inline lane runs a burst of requests one setImmediate callback each, all in one turn: on
// one HTTP/2 connection (how gRPC clients talk) every answer of the burst would leave at its
// end, the client idle meanwhile, and its next burst would come only then (measured with
// ghz, 32 calls on one connection: the box ~32% idle). So the gRPC frontend's fast unary
// path says when it writes an answer, and the lane then lets the loop turn every few runs
// (src/executors/onnx/inline-turns.ts). Not PredictStream's answers (grpc-js writes them):
// measured with 32 messages in flight on one stream, turning the loop for them cost more CPU
// per message than it gained (10-15k messages/s without, 8-11k with).
export const unsentAnswers = {
  /**
   * An HTTP/2 answer was written since this flag was last cleared (at the loop's next turn):
   * approximate, since a turn's callbacks may run before or after the clear.
   */
  waiting: false,
}

/** An HTTP/2 answer was written: it waits until the loop turns (one callback per turn clears the flag, not one per answer). */
export function answerWritten(): void {
  if (unsentAnswers.waiting) return
  unsentAnswers.waiting = true
  setImmediate(answersSent)
}

/** The loop turned: a session flushes ahead of the turn's JavaScript callbacks, so what was written before it has left. */
function answersSent(): void {
  unsentAnswers.waiting = false
}
