// Connections to one upstream are shared by every model served there: the first
// executor creates them, the last one to close destroys them. One ref-counted registry
// serves both the HTTP pools and the gRPC channels.
export interface Lease<T> {
  readonly value: T
  /** Idempotent; the resource is destroyed when its last lease is released. */
  release(): Promise<void>
}

export class SharedByKey<T> {
  private readonly entries = new Map<string, { readonly value: T; refs: number }>()
  private readonly destroy: (value: T) => void | Promise<void>

  constructor(destroy: (value: T) => void | Promise<void>) {
    this.destroy = destroy
  }

  acquire(key: string, create: () => T): Lease<T> {
    let entry = this.entries.get(key)
    if (!entry) {
      entry = { value: create(), refs: 0 }
      this.entries.set(key, entry)
    }
    entry.refs++
    const held = entry
    let released = false
    return {
      value: held.value,
      release: async () => {
        if (released) return
        released = true
        if (--held.refs > 0) return
        this.entries.delete(key)
        await this.destroy(held.value)
      },
    }
  }
}
