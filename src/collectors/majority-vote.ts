// majority-vote: classification by label (a label output or argmax of probabilities), hard
// (weighted counts, ./vote-collector.ts) or soft (weighted mean of probabilities,
// ./soft-vote.ts), each with an exact early exit; regression by median or mean
// (./regression-collector.ts). Options are parsed once here into a frozen plan.
import Type from 'typebox'
import type { Static } from 'typebox'
import type { OptionContext } from '../types.ts'
import { findLabelOutput, findProbabilitiesOutput, resolveVoteSource, type Invalid, type VoteSource } from './outputs.ts'
import { RegressionCollector } from './regression-collector.ts'
import { SoftVoteCollector } from './soft-vote.ts'
import type { EnsembleShape, Strategy, StrategyFactory } from './types.ts'
import { VoteCollector } from './vote-collector.ts'
import { spareableMembers, type QuorumRule, type VotePlan } from './vote-plan.ts'

export const MajorityVoteSchema = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('hard'), Type.Literal('soft')])),
    weights: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Number({ exclusiveMinimum: 0 }))),
    quorum: Type.Optional(Type.Union([Type.Literal('majority'), Type.Literal('all'), Type.Integer({ minimum: 1 })])),
    on_no_majority: Type.Optional(Type.Union([Type.Literal('plurality'), Type.Literal('abstain'), Type.Literal('error')])),
    regression: Type.Optional(Type.Union([Type.Literal('median'), Type.Literal('mean')])),
    output: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
)

export interface MajorityVoteOptions {
  /** `hard` counts labels; `soft` sums class probabilities. */
  readonly mode: 'hard' | 'soft'
  /** Weight per model name; a model not listed weighs 1. */
  readonly weights: Readonly<Record<string, number>>
  readonly quorum: 'majority' | 'all' | number
  readonly onNoMajority: 'plurality' | 'abstain' | 'error'
  readonly regression: 'median' | 'mean'
  /** The output to vote on; undefined: a label output, else argmax of probabilities, else a float value. */
  readonly output: string | undefined
  /** The option keys as written: check() refuses those the vote kind ignores (quorum on a regression). */
  readonly written: readonly string[]
}

type Raw = Static<typeof MajorityVoteSchema>

function parse(raw: Raw, ctx: OptionContext): MajorityVoteOptions {
  const mode = raw.mode ?? 'hard'
  if (mode === 'soft') {
    // A soft vote has no quorum: the most probability mass wins.
    if (raw.quorum !== undefined) ctx.problem('quorum', 'quorum applies to hard votes; mode soft answers with the class of most probability mass')
    if (raw.on_no_majority !== undefined) ctx.problem('on_no_majority', 'on_no_majority applies to hard votes; mode soft always has a winner')
  }
  return {
    mode,
    weights: raw.weights ?? {},
    quorum: raw.quorum ?? 'majority',
    onNoMajority: raw.on_no_majority ?? 'plurality',
    regression: raw.regression ?? 'median',
    output: raw.output,
    written: Object.keys(raw),
  }
}

/** Options written that the vote kind `source` ignores: said, so nobody relies on them. */
function ignoredOptions(options: MajorityVoteOptions, source: VoteSource, ensemble: EnsembleShape): string[] {
  const written = (key: string): boolean => options.written.includes(key)
  if (source.kind === 'regression') {
    const what = `the models of ensemble "${ensemble.name}" give a value (output "${source.name}"), aggregated by regression: ${options.regression}`
    return ['quorum', 'on_no_majority'].filter(written).map((key) => `${key} applies to classification votes, but ${what}; remove ${key}`)
  }
  if (!written('regression')) return []
  const voted = source.kind === 'label' ? `labels (output "${source.name}")` : `the most probable class (output "${source.name}")`
  return [`regression applies when the models give a value to aggregate, but ensemble "${ensemble.name}" votes on ${voted}; remove regression`]
}

/** The vote source for the options: soft mode needs a probabilities output. */
function sourceOf(options: MajorityVoteOptions, ensemble: EnsembleShape): VoteSource | Invalid {
  if (options.mode === 'hard') return resolveVoteSource(ensemble.outputs, options.output)
  if (options.output !== undefined) {
    const source = resolveVoteSource(ensemble.outputs, options.output)
    if (source.kind === 'argmax' || source.kind === 'invalid') return source
    return { kind: 'invalid', message: `mode soft needs class probabilities; output "${options.output}" is not a probabilities output` }
  }
  const probs = findProbabilitiesOutput(ensemble.outputs)
  if (probs === undefined) return { kind: 'invalid', message: 'mode soft needs a probabilities output common to every model; none is declared' }
  return { kind: 'argmax', name: probs.name }
}

function quorumRule(quorum: MajorityVoteOptions['quorum']): QuorumRule {
  if (quorum === 'all') return { kind: 'all' }
  if (typeof quorum === 'number') return { kind: 'count', weight: quorum }
  return { kind: 'majority' }
}

function weightsOf(options: MajorityVoteOptions, ensemble: EnsembleShape): Float64Array {
  // Own keys only: a model named `toString` is not weighed by Object.prototype.toString.
  return Float64Array.from(ensemble.models, (model) => (Object.hasOwn(options.weights, model) ? options.weights[model]! : 1))
}

export const majorityVote: StrategyFactory<MajorityVoteOptions, Raw> = {
  name: 'majority-vote',
  options: MajorityVoteSchema,
  parse,
  check(options: MajorityVoteOptions, ensemble: EnsembleShape): string[] {
    const messages: string[] = []
    const n = ensemble.models.length
    if (typeof options.quorum === 'number' && options.quorum > n && Object.keys(options.weights).length === 0) {
      messages.push(`quorum ${options.quorum} is more than the ${n} models of ensemble "${ensemble.name}"`)
    }
    for (const model of Object.keys(options.weights)) {
      if (!ensemble.models.includes(model)) messages.push(`weights: "${model}" is not a model of ensemble "${ensemble.name}" (${ensemble.models.join(', ')})`)
    }
    const total = weightsOf(options, ensemble).reduce((a, b) => a + b, 0)
    if (typeof options.quorum === 'number' && options.quorum > total && Object.keys(options.weights).length > 0) {
      messages.push(`quorum ${options.quorum} is more than the total weight ${total} of ensemble "${ensemble.name}"`)
    }
    const source = sourceOf(options, ensemble)
    if (source.kind === 'invalid') messages.push(source.message)
    else {
      if (source.kind === 'regression' && Object.keys(options.weights).length > 0) {
        messages.push('weights apply to classification votes; a regression aggregate is unweighted')
      }
      messages.push(...ignoredOptions(options, source, ensemble))
    }
    return messages
  },
  create(options: MajorityVoteOptions, ensemble: EnsembleShape): Strategy {
    const source = sourceOf(options, ensemble)
    if (source.kind === 'invalid') throw new Error(`majority-vote for ensemble "${ensemble.name}": ${source.message}`)
    const weights = weightsOf(options, ensemble)
    const quorum = options.quorum
    const plan: VotePlan = Object.freeze({
      n: ensemble.models.length,
      quorum: quorumRule(quorum),
      quorumReason: quorum === 'all' ? 'unanimous' : typeof quorum === 'number' ? 'quorum' : 'majority',
      onNoMajority: options.onNoMajority,
      regression: options.regression,
      source,
      weights,
      totalWeight: weights.reduce((a, b) => a + b, 0),
      label: findLabelOutput(ensemble.outputs),
      batched: ensemble.outputs.find((o) => o.name === source.name)?.shape[0] === -1,
    })
    const soft = options.mode === 'soft'
    const collector =
      source.kind === 'regression'
        ? () => new RegressionCollector(plan)
        : soft
          ? (rows?: number) => new SoftVoteCollector(plan, rows)
          : (rows?: number) => new VoteCollector(plan, rows)
    return {
      name: 'majority-vote',
      spareable: spareableMembers(plan, soft),
      // A regression aggregate always answers: on_no_majority does not apply to it (warned about at load).
      failCodes: options.onNoMajority === 'error' && source.kind !== 'regression' ? ['NO_CONSENSUS'] : undefined,
      decidesOn: options.output,
      collector,
    }
  },
}
