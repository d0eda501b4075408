// Answers written but not sent yet. node:http2 sends what a callback writes only once the
// event loop turns (a session flushes from a native setImmediate, ahead of the next turn's
// JavaScript callbacks), where node:http writes a response to its socket at once. The
// inline lane (src/executors/onnx/inline-lane.ts) runs a burst of requests one setImmediate
// callback each, all in one turn: on one HTTP/2 connection (how gRPC clients talk) every
// answer of the burst would leave at its end, the client idle meanwhile, and its next burst
// would come only then (measured with ghz, 32 calls on one connection: the box ~32% idle).
// So the gRPC frontend's unary path says when an answer waits, and the lane then lets the
// loop turn every few runs. Not PredictStream's answers (grpc-js writes them): measured with
// 32 messages in flight on one stream, turning the loop for them cost more CPU per message
// than it gained (10-15k messages/s without, 8-11k with).
export const unsentAnswers = {
  /** An HTTP/2 answer was written since the lane's turn began: it leaves when the loop turns. */
  waiting: false,
}
