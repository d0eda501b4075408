// What the event loop and the producer thread (producer-thread.ts) say to each other. A
// produce request's keys and values travel as one buffer of bytes, moved to the thread, not
// copied: the thread hands the client views into it, so neither side encodes them again.
// The client's errors come back as plain trees, with what errorMessage() and isTooLarge()
// read (message, the broker's error id, nested errors and causes).
import { ERROR_DEPTH, type MessageKey } from './client.ts'
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

/**
 * Keys and values packed one after another as bytes: message i's key ends at `ends[2i]` and its
 * value at `ends[2i + 1]`; `keyed[i]` is 0 for a message without a key. Only `topics` is
 * cloned (a key given as bytes may be a view into a large buffer: its bytes are copied in, not
 * its buffer).
 */
export interface PackedMessages {
  readonly topics: readonly string[]
  readonly bytes: ArrayBuffer
  readonly ends: Uint32Array
  readonly keyed: Uint8Array
}

export type ToThread =
  | { readonly type: 'send'; readonly id: number; readonly messages: PackedMessages }
  | { readonly type: 'metadata'; readonly id: number; readonly topics: readonly string[]; readonly autocreateTopics: boolean }
  | { readonly type: 'close'; readonly id: number; readonly force: boolean }

export type FromThread =
  | { readonly type: 'ready' }
  /** The client could not be made: no request will be answered otherwise. */
  | { readonly type: 'failed'; readonly error: ErrorTree }
  | { readonly type: 'done'; readonly id: number; readonly error: ErrorTree | null }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly fields: object; readonly msg: string }

export interface ErrorTree {
  readonly name: string
  readonly message: string
  readonly apiId?: string
  readonly errors?: readonly ErrorTree[]
  readonly cause?: ErrorTree
}

/** Keys and values in one buffer of their exact size, its own memory (not the pool's): it can be moved to the thread. */
export function packMessages(messages: readonly OutgoingRecord[]): PackedMessages {
  let size = 0
  for (const m of messages) size += Buffer.byteLength(m.value) + (m.key === undefined ? 0 : typeof m.key === 'string' ? Buffer.byteLength(m.key) : m.key.length)
  const buffer = Buffer.allocUnsafeSlow(size)
  const ends = new Uint32Array(2 * messages.length)
  const keyed = new Uint8Array(messages.length)
  const topics: string[] = new Array(messages.length)
  let at = 0
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!
    const key = m.key
    if (key !== undefined) {
      keyed[i] = 1
      if (typeof key === 'string') at += buffer.write(key, at)
      else at += key.copy(buffer, at)
    }
    ends[2 * i] = at
    at += buffer.write(m.value, at)
    ends[2 * i + 1] = at
    topics[i] = m.topic
  }
  return { topics, bytes: buffer.buffer as ArrayBuffer, ends, keyed }
}

/** The messages again, each key and value a view into the moved buffer. */
export function unpackMessages(packed: PackedMessages): { topic: string; key?: Buffer; value: Buffer }[] {
  const all = Buffer.from(packed.bytes)
  const out: { topic: string; key?: Buffer; value: Buffer }[] = new Array(packed.keyed.length)
  let start = 0
  for (let i = 0; i < packed.keyed.length; i++) {
    const keyEnd = packed.ends[2 * i]!
    const end = packed.ends[2 * i + 1]!
    const value = all.subarray(keyEnd, end)
    out[i] = packed.keyed[i] ? { topic: packed.topics[i]!, key: all.subarray(start, keyEnd), value } : { topic: packed.topics[i]!, value }
    start = end
  }
  return out
}

/** The client's error as a plain tree (its nesting kept to the depth errorMessage() reads). */
export function errorTree(err: unknown, depth = 0): ErrorTree {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as { name?: unknown; message?: unknown; apiId?: unknown; errors?: unknown; cause?: unknown }
  const tree: { -readonly [K in keyof ErrorTree]: ErrorTree[K] } = { name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(err) }
  if (typeof e.apiId === 'string') tree.apiId = e.apiId
  if (depth < ERROR_DEPTH) {
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
