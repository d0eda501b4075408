// best-quality: score each answer (max class probability, temperature-scaled when the model
// is calibrated; a declared quality output; or a static quality from config) and return the best one; `good_enough` returns the first
// answer that clears the bar without waiting for the rest.
import Type from 'typebox'
import type { Static } from 'typebox'
import type { TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome } from '../types.ts'
import { ALL_FAILED, DEADLINE, quality, resolveQualitySource } from './outputs.ts'
import type { QualitySource } from './outputs.ts'
import type { Collector, EnsembleShape, Strategy, StrategyFactory } from './types.ts'

export const BestQualitySchema = Type.Object(
  {
    good_enough: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    quality_output: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

export interface BestQualityOptions {
  /** Answer with the first model scoring at least this; Infinity when unset (wait for all). */
  readonly goodEnough: number
  /** The output to read quality from; undefined: max class probability, else static quality. */
  readonly qualityOutput: string | undefined
}

interface Plan {
  readonly n: number
  readonly source: QualitySource
  /** Infinity when unset, so the early-exit test needs no branch. */
  readonly goodEnough: number
  readonly staticQuality: readonly (number | undefined)[]
  /** Temperature per model for max-probability quality; undefined where not calibrated. */
  readonly temperatures: readonly (number | undefined)[]
}

class BestQualityCollector implements Collector {
  private readonly plan: Plan
  private readonly seen: Uint8Array
  // Only the running best is kept: a model that is beaten can never win later.
  private best = -1
  private bestQuality = Number.NEGATIVE_INFINITY
  private bestOutputs: TensorMap | null = null
  private arrived = 0
  private failed = 0
  private done = false

  constructor(plan: Plan) {
    this.plan = plan
    this.seen = new Uint8Array(plan.n)
  }

  onOutcome(outcome: Outcome): Decision | undefined {
    const i = outcome.index
    const { n } = this.plan
    if (this.done || i < 0 || i >= n || this.seen[i] === 1) return undefined
    this.seen[i] = 1
    this.arrived++
    if (outcome.status !== 'ok') {
      if (++this.failed === n) return this.finish(ALL_FAILED)
    } else {
      const q = quality(outcome.outputs, this.plan.source, this.plan.staticQuality[i], this.plan.temperatures[i])
      if (q >= this.plan.goodEnough) return this.finish(answer(i, 'good-enough', outcome.outputs))
      if (this.best < 0 || q > this.bestQuality || (q === this.bestQuality && i < this.best)) {
        this.best = i
        this.bestQuality = q
        this.bestOutputs = outcome.outputs
      }
    }
    return this.arrived === n ? this.finish(answer(this.best, 'best-quality', this.bestOutputs)) : undefined
  }

  onDeadline(): Decision {
    if (this.best >= 0) return this.finish(answer(this.best, 'best-quality', this.bestOutputs))
    return this.finish(this.failed === this.plan.n ? ALL_FAILED : DEADLINE)
  }

  private finish(decision: Decision): Decision {
    this.done = true
    return decision
  }
}

function answer(chosen: number, reason: string, outputs: TensorMap | null): Decision {
  return { kind: 'answer', chosen, reason, outputs, votes: null }
}

/**
 * Why this best-quality ensemble's comparison may not mean much: it compares raw maximum
 * probabilities of several models, some uncalibrated and without a static quality. Models
 * of different families (trees, kNN, linear, neural) are confident in different ways, so
 * the most overconfident one wins. Undefined when there is nothing to say.
 */
export function uncalibratedWarning(options: BestQualityOptions, ensemble: EnsembleShape): string | undefined {
  const source = resolveQualitySource(ensemble.outputs, options.qualityOutput)
  if (source.kind !== 'maxprob' || ensemble.models.length < 2) return undefined
  const raw = ensemble.models.filter((_, i) => ensemble.temperatures?.[i] === undefined && ensemble.staticQuality[i] === undefined)
  if (raw.length === 0) return undefined
  return (
    `best-quality compares raw maximum probabilities and ${raw.join(', ')} ${raw.length === 1 ? 'is' : 'are'} not calibrated: ` +
    'models of different families are confident in different ways, so the most overconfident wins; ' +
    'fit temperatures with `specserve eval --calibrate` (or declare quality_output)'
  )
}

export const bestQuality: StrategyFactory<BestQualityOptions, Static<typeof BestQualitySchema>> = {
  name: 'best-quality',
  options: BestQualitySchema,
  parse: (raw) => ({ goodEnough: raw.good_enough ?? Number.POSITIVE_INFINITY, qualityOutput: raw.quality_output }),
  check(options: BestQualityOptions, ensemble: EnsembleShape): string[] {
    const source = resolveQualitySource(ensemble.outputs, options.qualityOutput)
    return source.kind === 'invalid' ? [source.message] : []
  },
  create(options: BestQualityOptions, ensemble: EnsembleShape): Strategy {
    const source = resolveQualitySource(ensemble.outputs, options.qualityOutput)
    if (source.kind === 'invalid') throw new Error(`best-quality for ensemble "${ensemble.name}": ${source.message}`)
    const plan: Plan = Object.freeze({
      n: ensemble.models.length,
      source,
      goodEnough: options.goodEnough,
      staticQuality: ensemble.staticQuality,
      temperatures: ensemble.temperatures ?? [],
    })
    // Every answer is compared, unless good_enough lets a confident early one spare the rest.
    const spareable = Object.freeze(Array.from({ length: plan.n }, (_, i) => i > 0 && Number.isFinite(plan.goodEnough)))
    return { name: 'best-quality', spareable, collector: () => new BestQualityCollector(plan) }
  },
}
