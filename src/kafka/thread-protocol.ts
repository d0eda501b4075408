// What the event loop and the producer thread (producer-thread.ts) say to each other. A
// produce request's values travel as one buffer of UTF-8 bytes, moved to the thread, not
// copied: the thread hands the client slices of it, so neither side encodes a value again.
// The client's errors come back as plain trees, with what errorMessage() and isTooLarge()
// read (message, the broker's error id, nested errors and causes).
import type { MessageKey } from './client.ts'
import type { KafkaSettings } from './config.ts'

/** A message as the record sink sends it: keys and values as text (or a key as bytes). */
export interface OutgoingRecord {
  readonly topic: string
  readonly key?: MessageKey
  readonly value: string
}

export interface ThreadSetup {
  readonly settings: KafkaSettings
  readonly clientId: string
}

/** Values packed one after another; `ends[i]` is where message i's value ends in `bytes`. */
export interface PackedMessages {
  readonly topics: readonly string[]
  readonly keys: readonly (MessageKey | null)[]
  readonly bytes: ArrayBuffer
  readonly ends: Uint32Array
}

export type ToThread =
  | { readonly type: 'send'; readonly id: number; readonly messages: PackedMessages }
  | { readonly type: 'metadata'; readonly id: number; readonly topics: readonly string[]; readonly autocreateTopics: boolean }
  | { readonly type: 'close'; readonly id: number; readonly force: boolean }

export type FromThread =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly id: number; readonly error: ErrorTree | null }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly fields: object; readonly msg: string }

export interface ErrorTree {
  readonly name: string
  readonly message: string
  readonly apiId?: string
  readonly errors?: readonly ErrorTree[]
  readonly cause?: ErrorTree
}

/** The values in one buffer that can be moved to the thread (its own memory, not the pool's). */
export function packMessages(messages: readonly OutgoingRecord[]): PackedMessages {
  let bound = 0
  for (const m of messages) bound += m.value.length * 3 // UTF-16 units to UTF-8 bytes, at most
  const buffer = Buffer.allocUnsafeSlow(bound)
  const ends = new Uint32Array(messages.length)
  const topics: string[] = new Array(messages.length)
  const keys: (MessageKey | null)[] = new Array(messages.length)
  let at = 0
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!
    at += buffer.write(m.value, at)
    ends[i] = at
    topics[i] = m.topic
    keys[i] = m.key ?? null
  }
  return { topics, keys, bytes: buffer.buffer as ArrayBuffer, ends }
}

/** The messages again, each value a view into the moved buffer. */
export function unpackMessages(packed: PackedMessages): { topic: string; key?: MessageKey; value: Buffer }[] {
  const all = Buffer.from(packed.bytes)
  const out: { topic: string; key?: MessageKey; value: Buffer }[] = new Array(packed.ends.length)
  let start = 0
  for (let i = 0; i < packed.ends.length; i++) {
    const end = packed.ends[i]!
    const key = packed.keys[i]
    const value = all.subarray(start, end)
    out[i] = key === null || key === undefined ? { topic: packed.topics[i]!, value } : { topic: packed.topics[i]!, key: typeof key === 'string' ? key : Buffer.from(key), value }
    start = end
  }
  return out
}

/** The client's error as a plain tree (its nesting kept to the depth errorMessage() reads). */
export function errorTree(err: unknown, depth = 0): ErrorTree {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as { name?: unknown; message?: unknown; apiId?: unknown; errors?: unknown; cause?: unknown }
  const tree: { -readonly [K in keyof ErrorTree]: ErrorTree[K] } = { name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(err) }
  if (typeof e.apiId === 'string') tree.apiId = e.apiId
  if (depth < 6) {
    if (Array.isArray(e.errors)) tree.errors = e.errors.map((inner) => errorTree(inner, depth + 1))
    if (e.cause !== undefined && e.cause !== null) tree.cause = errorTree(e.cause, depth + 1)
  }
  return tree
}

/** An Error again, with the tree's broker error id, nested errors and cause. */
export function errorFromTree(tree: ErrorTree): Error {
  const err = new Error(tree.message, tree.cause ? { cause: errorFromTree(tree.cause) } : undefined) as Error & { apiId?: string; errors?: Error[] }
  err.name = tree.name
  if (tree.apiId !== undefined) err.apiId = tree.apiId
  if (tree.errors) err.errors = tree.errors.map(errorFromTree)
  return err
}
