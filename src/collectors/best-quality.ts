// best-quality: score each answer (a declared quality output; else a model's static quality
// from config; else its max class probability, temperature-scaled or mapped isotonically when
// the model is calibrated) and return the best one; `good_enough` returns the first answer
// that clears the bar without waiting for the rest.
import Type from 'typebox'
import type { Static } from 'typebox'
import type { TensorMap } from '../tensor/index.ts'
import type { Decision, Outcome } from '../types.ts'
import type { Calibration } from '../config/calibration.ts'
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
  /** The output to read quality from; undefined: a model's static quality, else its max class probability. */
  readonly qualityOutput: string | undefined
}

interface Plan {
  readonly n: number
  readonly source: QualitySource
  /** Infinity when unset, so the early-exit test needs no branch. */
  readonly goodEnough: number
  readonly staticQuality: readonly (number | undefined)[]
  /** Calibration per model for max-probability quality (a temperature or an isotonic map); undefined where not calibrated. */
  readonly calibrations: readonly (Calibration | undefined)[]
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
      const q = quality(outcome.outputs, this.plan.source, this.plan.staticQuality[i], this.plan.calibrations[i])
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
 * Why this best-quality ensemble's comparison may not mean much: it compares maximum
 * probabilities of several models (a model with a static quality is scored by it, not by its
 * maximum: quality() in outputs.ts), some uncalibrated (no calibration, no static quality),
 * across model families (trees, kNN, linear, SVM, neural: confident in different ways, so the
 * most overconfident wins), or with some members calibrated and others raw. `families`: each
 * model's family where it is known (read from an ONNX graph); a model whose family is not
 * known may be of any. Undefined when there is nothing to say: every model calibrated or
 * declared, or all compared raw and of one known family.
 */
export function uncalibratedWarning(options: BestQualityOptions, ensemble: EnsembleShape, families: readonly (string | undefined)[] = []): string | undefined {
  const source = resolveQualitySource(ensemble.outputs, options.qualityOutput)
  if (source.kind !== 'maxprob' || ensemble.models.length < 2) return undefined
  const compared = ensemble.models.map((_, i) => i).filter((i) => ensemble.staticQuality[i] === undefined)
  const raw = compared.filter((i) => ensemble.calibrations?.[i] === undefined)
  if (raw.length === 0 || compared.length < 2) return undefined
  const familyOf = (i: number): string => (families[i] === undefined || families[i] === 'unknown' ? 'unknown' : families[i])
  const kinds = new Set(compared.map(familyOf))
  const oneFamily = kinds.size === 1 && !kinds.has('unknown')
  const names = raw.map((i) => ensemble.models[i]!)
  const fix = 'fit calibrations with `specserve eval --calibrate` (or declare quality_output)'
  if (oneFamily) {
    if (raw.length === compared.length) return undefined
    return `best-quality compares calibrated maxima with raw ones: ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} not calibrated; ${fix}`
  }
  const mix = compared.map((i) => `${ensemble.models[i]}: ${familyOf(i)}`).join(', ')
  return (
    `best-quality compares maximum probabilities across model families (${mix}) and ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} not calibrated: ` +
    `families are confident in different ways, so the most overconfident wins; ${fix}`
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
      calibrations: ensemble.calibrations ?? [],
    })
    // Every answer is compared, unless good_enough lets a confident early one spare the rest.
    const spareable = Object.freeze(Array.from({ length: plan.n }, (_, i) => i > 0 && Number.isFinite(plan.goodEnough)))
    return { name: 'best-quality', spareable, collector: () => new BestQualityCollector(plan) }
  },
}
