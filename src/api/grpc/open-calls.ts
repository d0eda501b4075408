// The long calls open on a gateway's gRPC server (PredictStream, ModelStreamInfer, health
// Watch): at shutdown each is asked to end (drain), those opened later too (their guard check
// was still running when the drain began), since one left open held tryShutdown to the end
// of the grace.
import type { Gateway } from '../../gateway.ts'

export interface Drainable {
  /** The server is shutting down: end once nothing runs on the call. */
  drain(): void
}

class OpenCalls {
  private readonly calls = new Set<Drainable>()
  private closing = false

  /** Keeps `call` until the returned function is called (its end); drained at once if the drain has begun. */
  track(call: Drainable): () => void {
    if (this.closing) {
      call.drain()
      return noop
    }
    this.calls.add(call)
    return () => this.calls.delete(call)
  }

  drain(): void {
    this.closing = true
    for (const call of this.calls) call.drain()
  }
}

function noop(): void {}

const byGateway = new WeakMap<Gateway, OpenCalls>()

export function openCalls(gateway: Gateway): OpenCalls {
  let calls = byGateway.get(gateway)
  if (!calls) byGateway.set(gateway, (calls = new OpenCalls()))
  return calls
}
