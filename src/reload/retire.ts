// Closing what a reload replaced, only once nothing can still use it. Predicts finish on the
// config they started with, so a replaced config is "draining" until its last predict ends.
// A model runtime may be shared by several configs (kept by one reload, replaced by the
// next): it closes only once no draining config holds it.
import type { RunScope } from '../starter/run-hooks.ts'

interface Closable {
  readonly model: { readonly name: string }
  readonly executor: { close(): Promise<void> }
}

/** A replaced config: its predicts' count and its models by name. */
export interface ReplacedState<R extends Closable> extends RunScope {
  readonly models: ReadonlyMap<string, R>
}

export class Retirement<R extends Closable> {
  private readonly retiring = new Set<R>()
  private readonly draining = new Set<ReplacedState<R>>()
  /** idle() callers, told once no replaced state is draining. */
  private waiting: (() => void)[] = []

  /** A reload replaced `old` and dropped `retired` from it: each closes once no draining state holds it. */
  retire(old: ReplacedState<R>, retired: Iterable<R>): void {
    for (const runtime of retired) this.retiring.add(runtime)
    if (old.inFlight > 0) {
      this.draining.add(old)
      const before = old.onIdle // the gateway's idle() may be waiting on it too
      old.onIdle = () => {
        before?.()
        this.draining.delete(old)
        this.closeUnheld()
        if (this.draining.size === 0) this.wake()
      }
    }
    this.closeUnheld()
  }

  /** Resolves once no replaced config has a predict running (its shadows and serving record included). */
  idle(): Promise<void> {
    if (this.draining.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  /** Everything not closed yet (at shutdown, when nothing waits any more): handed over and forgotten here. */
  takeAll(): R[] {
    const all = [...this.retiring]
    this.retiring.clear()
    this.draining.clear()
    this.wake()
    return all
  }

  private wake(): void {
    for (const resolve of this.waiting.splice(0)) resolve()
  }

  private closeUnheld(): void {
    for (const runtime of this.retiring) {
      if ([...this.draining].some((state) => state.models.get(runtime.model.name) === runtime)) continue
      this.retiring.delete(runtime)
      void runtime.executor.close().catch(() => undefined)
    }
  }
}
