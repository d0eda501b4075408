// The `kind: onnx` model entry: its YAML fields (docs/executors.md documents each), and the
// typed settings they parse into once, at config load.
import { accessSync, constants } from 'node:fs'
import { configPath } from '../../config/paths.ts'
import Type, { type Static } from 'typebox'
import { parseRepositoryFields, repositoryModelFields, type RepositoryModelSettings } from '../../registry/config.ts'
import { commonModelFields } from '../common.ts'
import type { ParseContext } from '../types.ts'
import type { BatchSettings } from './batch.ts'
import { PLACEMENTS, type PlacementMode } from './placement.ts'

export const onnxSchema = Type.Object(
  {
    kind: Type.Literal('onnx'),
    /** The model file; with `source: repository`, the file imported as version 1 into an empty model directory. */
    path: Type.Optional(Type.String({ minLength: 1 })),
    /** Most jobs of this model that may run at once in the shared pool (default: no limit). */
    max_concurrency: Type.Optional(Type.Integer({ minimum: 1 })),
    /**
     * Run this model in worker threads of its own instead of the shared pool: a slow model
     * then never occupies a worker the other models need (the only sure isolation when the
     * shared pool has a single worker, as on a 2-core machine). Implies `placement: worker`.
     */
    dedicated_workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** `auto` (measured), or pinned `inline` (main thread) or `worker`; `worker` (the only one allowed) with `dedicated_workers`. */
    placement: Type.Optional(Type.Union(PLACEMENTS.map((p) => Type.Literal(p)))),
    /** The run time (ms) under which `auto` runs the model inline (warm-up median within half of it, p90 within it); default executors.inline_max_ms. */
    inline_max_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Dynamic batching: requests waiting together (in the workers), or arriving in one turn (a model pinned inline), run as one session.run. */
    batching: Type.Optional(
      Type.Object(
        {
          /** Most rows in one batched run. */
          max_batch: Type.Integer({ minimum: 2, maximum: 4096 }),
          /** Longest a request waits for others to join (never past what its deadline allows); 0 for a model pinned inline. */
          max_queue_delay_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
        },
        { additionalProperties: false },
      ),
    ),
    ...commonModelFields,
    ...repositoryModelFields,
  },
  { additionalProperties: false },
)

export type OnnxEntry = Static<typeof onnxSchema>

export interface OnnxSpec {
  /** Absolute path of the .onnx file. */
  readonly path: string
  readonly version: string
  readonly maxConcurrency: number
  readonly dedicatedWorkers: number
  readonly placement: PlacementMode
  readonly inlineMaxMs: number | undefined
  readonly batching: BatchSettings | undefined
  /** Set when versions come from the repository: the registry picks `path` and `version`. */
  readonly repository: RepositoryModelSettings | undefined
}

/** max_queue_delay_ms when batching leaves it out. */
const DEFAULT_QUEUE_DELAY_MS = 2

/**
 * The entry (already valid against onnxSchema) as an OnnxSpec; what the schema cannot check
 * (an unreadable file, fields that exclude each other) goes to `ctx.problem`.
 */
export function parseOnnxEntry(entry: OnnxEntry, ctx: ParseContext): OnnxSpec {
  const repository = parseRepositoryFields(entry, ctx)
  // A repository model's file is the registry's choice (src/registry resolves it before load).
  const path = repository ? (repository.seed ?? '') : configPath(ctx.baseDir, entry.path ?? '')
  if (!repository && entry.path === undefined) ctx.problem('path', 'missing: the model file (or source: repository)')
  else if (!repository) {
    try {
      accessSync(path, constants.R_OK)
    } catch {
      ctx.problem('path', `cannot read model file ${path}`)
    }
  }
  // Workers of its own are for a model that must not hold anything up: it runs there, never on the event loop.
  if (entry.dedicated_workers && entry.placement === 'inline') ctx.problem('placement', 'a model pinned inline uses no workers: drop dedicated_workers')
  if (entry.dedicated_workers && entry.placement === 'auto') {
    ctx.problem('placement', 'dedicated_workers runs the model in workers of its own; auto would run it on the event loop whenever its warm-up (on zeros) is quick, its workers idle: leave placement out, or say worker')
  }
  const inlineBatching = entry.placement === 'inline' && entry.batching !== undefined
  if (inlineBatching && (entry.batching?.max_queue_delay_ms ?? 0) > 0) {
    ctx.problem('batching.max_queue_delay_ms', 'a model pinned inline batches what arrives in one turn of the event loop and never holds a request back: leave max_queue_delay_ms out (or 0), or let the workers batch it (placement auto or worker)')
  }
  return {
    path,
    version: String(entry.version ?? '1'),
    maxConcurrency: entry.max_concurrency ?? Infinity,
    dedicatedWorkers: entry.dedicated_workers ?? 0,
    placement: entry.placement ?? (entry.dedicated_workers ? 'worker' : 'auto'),
    inlineMaxMs: entry.inline_max_ms,
    batching: entry.batching && { maxBatch: entry.batching.max_batch, maxDelayMs: inlineBatching ? 0 : (entry.batching.max_queue_delay_ms ?? DEFAULT_QUEUE_DELAY_MS) },
    repository,
  }
}
