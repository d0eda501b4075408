// The registry's YAML: the root `repository:` section and the keys an embedded model takes
// when its versions come from the repository (`source: repository`, `version_policy`,
// `validation`). Parsed once at config load into typed settings; paths resolved.
import { accessSync, constants } from 'node:fs'
import { MAX_TIMER_MS } from '../config/forms.ts'
import { configPath } from '../config/paths.ts'
import Type, { type Static } from 'typebox'
import type { OptionContext } from '../types.ts'

export const RepositorySchema = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    /** Versions whose model file is kept (the serving one included); older ones are retired. */
    keep_versions: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Pick up a new version directory without a signal. */
    watch: Type.Optional(Type.Boolean()),
    /** Largest model a PUT may upload (or the model stream fetch). */
    max_model_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The model stream: ModelDescriptor records on a topic; every instance reads all of them. */
    kafka: Type.Optional(
      Type.Object(
        {
          // Checked by addressIssues (src/kafka/names.ts), as output.kafka's.
          brokers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
          topic: Type.Optional(Type.String({ minLength: 1 })),
          /** Prefix of the consumer group; the instance name is appended, so each instance has its own. */
          group: Type.Optional(Type.String({ minLength: 1 })),
          /** How long readiness waits, after the load, for the stream to read the topic to its end; 0: not at all. */
          catch_up_timeout_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMER_MS })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export interface RepositoryConfig {
  /** Absolute path of the repository directory. */
  readonly path: string
  readonly keepVersions: number
  readonly watch: boolean
  readonly maxModelBytes: number
  readonly kafka: RepositoryKafka | undefined
  /** Where a descriptor's relative `location` resolves (the config file's directory). */
  readonly baseDir: string
}

export interface RepositoryKafka {
  readonly brokers: readonly string[]
  readonly topic: string
  readonly group: string
  /** Readiness waits at most this long for the model stream to catch up (0: it does not wait). */
  readonly catchUpTimeoutMs: number
}

/**
 * A new instance reads the whole topic before it serves the latest version (each record is
 * loaded and gated in turn: about a minute for 20 records was seen); two minutes covers such a
 * backlog, and a broker that is down holds a pod out of its Service no longer than that.
 */
export const DEFAULT_CATCH_UP_TIMEOUT_MS = 120_000

export function parseRepository(raw: Static<typeof RepositorySchema> | undefined, baseDir: string): RepositoryConfig | undefined {
  if (!raw) return undefined
  return {
    path: configPath(baseDir, raw.path),
    keepVersions: raw.keep_versions ?? 3,
    watch: raw.watch ?? true,
    maxModelBytes: raw.max_model_bytes ?? 64 * 1024 * 1024,
    kafka: raw.kafka && {
      brokers: [...raw.kafka.brokers],
      topic: raw.kafka.topic ?? 'specserve.models',
      group: raw.kafka.group ?? 'specserve-models',
      catchUpTimeoutMs: raw.kafka.catch_up_timeout_ms ?? DEFAULT_CATCH_UP_TIMEOUT_MS,
    },
    baseDir,
  }
}

/** Keys of a model entry whose versions come from the repository (ONNX models). */
export const repositoryModelFields = {
  source: Type.Optional(Type.Literal('repository')),
  version_policy: Type.Optional(Type.Union([Type.Literal('latest'), Type.Object({ specific: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }) }, { additionalProperties: false })])),
  validation: Type.Optional(
    Type.Object(
      {
        /** JSON lines `{"inputs": {...}, "outputs": {...}}`: every output must match. */
        examples: Type.Optional(Type.String({ minLength: 1 })),
        /** A labeled CSV: feature columns in order form one [1, F] row; accuracy over it. */
        dataset: Type.Optional(
          Type.Object(
            {
              path: Type.String({ minLength: 1 }),
              label: Type.String({ minLength: 1 }),
              min_accuracy: Type.Number({ minimum: 0, maximum: 1 }),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  /** A passing version first serves `weight` of the model's traffic, then is promoted or rolled back on evidence. */
  rollout: Type.Optional(
    Type.Object(
      {
        canary: Type.Object(
          {
            weight: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
            promote_after: Type.Integer({ minimum: 1 }),
            max_error_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
            min_agreement: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  ),
}

export interface CanarySettings {
  readonly weight: number
  /** Canary requests (answered or failed) before the decision. */
  readonly promoteAfter: number
  readonly maxErrorRate: number
  readonly minAgreement: number
}

export type VersionPolicy = { readonly kind: 'latest' } | { readonly kind: 'specific'; readonly versions: readonly number[] }

export interface ValidationSettings {
  readonly examples: string | undefined
  readonly dataset: { readonly path: string; readonly label: string; readonly minAccuracy: number } | undefined
}

/** A model served from the repository, as its entry asks. */
export interface RepositoryModelSettings {
  readonly policy: VersionPolicy
  readonly validation: ValidationSettings
  /** The entry's `path`: imported as version 1 when the model has no version yet. */
  readonly seed: string | undefined
  /** `rollout.canary`: a passing version starts as a canary. */
  readonly canary: CanarySettings | undefined
}

type RawRepositoryFields = {
  source?: 'repository'
  path?: string
  version_policy?: Static<(typeof repositoryModelFields)['version_policy']>
  validation?: Static<(typeof repositoryModelFields)['validation']>
  rollout?: Static<(typeof repositoryModelFields)['rollout']>
}

function readable(path: string, field: string, ctx: OptionContext): void {
  try {
    accessSync(path, constants.R_OK)
  } catch {
    ctx.problem(field, `cannot read ${path}`)
  }
}

/** The entry's repository settings, or undefined when the model is not `source: repository`. */
export function parseRepositoryFields(entry: RawRepositoryFields, ctx: OptionContext & { readonly baseDir: string }): RepositoryModelSettings | undefined {
  if (entry.source !== 'repository') {
    if (entry.version_policy !== undefined) ctx.problem('version_policy', 'needs source: repository')
    if (entry.validation !== undefined) ctx.problem('validation', 'needs source: repository')
    if (entry.rollout !== undefined) ctx.problem('rollout', 'needs source: repository')
    return undefined
  }
  const examples = entry.validation?.examples === undefined ? undefined : configPath(ctx.baseDir, entry.validation.examples)
  if (examples) readable(examples, 'validation.examples', ctx)
  const rawDataset = entry.validation?.dataset
  const dataset = rawDataset && { path: configPath(ctx.baseDir, rawDataset.path), label: rawDataset.label, minAccuracy: rawDataset.min_accuracy }
  if (dataset) readable(dataset.path, 'validation.dataset.path', ctx)
  const seed = entry.path === undefined ? undefined : configPath(ctx.baseDir, entry.path)
  if (seed) readable(seed, 'path', ctx)
  const policy: VersionPolicy = entry.version_policy === undefined || entry.version_policy === 'latest' ? { kind: 'latest' } : { kind: 'specific', versions: [...entry.version_policy.specific] }
  const c = entry.rollout?.canary
  const canary = c && { weight: c.weight, promoteAfter: c.promote_after, maxErrorRate: c.max_error_rate ?? 0.01, minAgreement: c.min_agreement ?? 0.95 }
  return { policy, validation: { examples, dataset }, seed, canary }
}
