import type { Calibration } from '../config/calibration.ts'
import type { TObject } from 'typebox'
import type { TensorSpec } from '../tensor/index.ts'
import type { Decision, OptionContext, Outcome } from '../types.ts'

/** The codes a decision may fail with. */
export type FailCode = Extract<Decision, { kind: 'fail' }>['code']

/** What a strategy knows about the ensemble it serves, fixed at config load. */
export interface EnsembleShape {
  readonly name: string
  /** Model names in configured order: preference order and tie-break order. */
  readonly models: readonly string[]
  /** Outputs common to every model of the ensemble. */
  readonly outputs: readonly TensorSpec[]
  /** Static `quality` per model from config (best-quality), undefined where not set. */
  readonly staticQuality: readonly (number | undefined)[]
  /** Fitted calibration per model (`<config>.calibration.json`: a temperature or an isotonic map), undefined where not calibrated. */
  readonly calibrations?: readonly (Calibration | undefined)[]
}

/**
 * One request's collector. The starter calls `onOutcome` as each model finishes (in
 * arrival order) and `onDeadline` once if nothing was decided by then. Returning a
 * Decision from `onOutcome` decides early: the rest are cancelled.
 */
export interface Collector {
  onOutcome(outcome: Outcome): Decision | undefined
  onDeadline(): Decision
}

/** A strategy configured for one ensemble: creates a fresh collector per request. */
export interface Strategy {
  readonly name: string
  /**
   * Delay in ms before starting each model (same order as the ensemble's models).
   * Undefined means all start at once. A delayed model starts early if a started one fails.
   */
  readonly startDelaysMs?: readonly number[]
  /**
   * Which members a decision may come without (same order as the models): a fallback, a
   * vote past the quorum. A shared runtime holds their runs back while it is busy, so a
   * request decided meanwhile never runs them. Undefined: every member but the first.
   */
  readonly spareable?: readonly boolean[]
  /**
   * The codes its decisions may fail with besides every strategy's ALL_MODELS_FAILED and
   * DEADLINE_EXCEEDED (a majority vote with `on_no_majority: error`: NO_CONSENSUS). /metrics
   * exports each at 0 before its first, so an alert on its rate sees the first burst.
   */
  readonly failCodes?: readonly FailCode[]
  /**
   * The output its options say it decides on (a majority vote's `output:`), which eval then
   * scores. Undefined: each reader picks the output as the strategy does.
   */
  readonly decidesOn?: string
  /**
   * A fresh collector for one request. `rows` is the request's row count (the first
   * dimension its inputs share, when every input's is dynamic: a batch; undefined
   * otherwise, or where no request is at hand), so a collector can tell a member
   * answering another number of rows without trusting whichever member answers first.
   */
  collector(rows?: number): Collector
}

/** What a strategy's parse() is told besides its options. */
export interface StrategyParseContext extends OptionContext {
  /** The ensemble's budget_ms, defaults applied (absent where no ensemble is known, as in unit tests). */
  readonly budgetMs?: { readonly default: number; readonly max: number }
}

/**
 * Registry entry. Options are validated against `options` and parsed once at config load
 * into the typed, defaulted form `check` and `create` receive.
 */
export interface StrategyFactory<Options = unknown, Raw = never> {
  readonly name: string
  /** TypeBox schema of the options (everything but `name`); validated with paths and lines. */
  readonly options: TObject
  /** Typed options with defaults applied. Without it the validated options are passed as they are. */
  parse?(raw: Raw, ctx: StrategyParseContext): Options
  /** Check options against the ensemble (e.g. quorum <= model count). Return messages; empty = fine. */
  check?(options: Options, ensemble: EnsembleShape): string[]
  create(options: Options, ensemble: EnsembleShape): Strategy
}
