import { getStrategy } from '../collectors/registry.ts'
import type { Strategy } from '../collectors/types.ts'
import type { Calibration } from '../config/calibration.ts'
import type { EnsembleConfig, ModelConfig } from '../config/load.ts'
import type { ConfigIssue } from '../config/yaml.ts'
import { GatewayError, inputFailure } from '../errors.ts'
import type { Executor } from '../executors/types.ts'
import { checkTensor, declaredShape, formatShape, quote, sameRank, specsText, type Tensor, type TensorMap, type TensorSpec } from '../tensor/index.ts'
import { Selection } from './selection.ts'
import { ShadowCounts, ShadowRunner } from './shadow.ts'
import { EnsembleStats, type ModelStats } from './stats.ts'

/** An ensemble ready to serve: its executors loaded, its inputs agreed, its strategy built. */
export interface EnsembleRuntime {
  readonly name: string
  readonly strategyName: string
  readonly config: EnsembleConfig
  readonly strategy: Strategy
  readonly executors: readonly Executor[]
  readonly models: readonly ModelConfig[]
  readonly stats: readonly ModelStats[]
  /** Request counters of this ensemble (kept by name across hot reloads). */
  readonly requestStats: EnsembleStats
  /**
   * Inputs every model accepts: the first model's names and datatypes, a dimension fixed
   * where any model fixes it (-1 only where every model declares -1), whatever their order.
   */
  readonly inputs: readonly TensorSpec[]
  /**
   * Outputs every model produces: same name and datatype, compatible shapes (in the first
   * model's order), -1 in a dimension some model declares -1. Answers carry exactly these.
   */
  readonly outputs: readonly TensorSpec[]
  /** Per member: whether it produces nothing but `outputs`, so its answer is returned as it is (no copy per predict). */
  readonly answersAsDeclared: readonly boolean[]
  /** Member selection (`select:`); undefined for `all`, so the starter's plain path checks one field. */
  readonly selection: Selection | undefined
  /** Shadow members (`shadow:`), run after the answer on a sample of predicts; undefined when none. */
  readonly shadow: ShadowRunner | undefined
}

type Member = { model: ModelConfig; executor: Executor }
type Issue = Omit<ConfigIssue, 'line' | 'col'>

/** The ensemble's inputs, and per input and dimension the member that fixed its size. */
interface MergedInputs {
  readonly specs: (Omit<TensorSpec, 'shape'> & { shape: number[] })[]
  readonly fixedBy: (Member | undefined)[][]
}

/**
 * Whether a model's inputs agree with the ensemble's so far (same names and datatypes as the
 * first member's, same ranks (any rank only beside any rank), no dimension fixed at another
 * size): undefined when they do, else the member they differ from (the first, or the one that
 * fixed the size). With `fix`, a size it fixes is fixed in the ensemble's from now on.
 */
function mergeInputs(merged: MergedInputs, first: Member, m: Member, fix: boolean): Member | undefined {
  const theirs = m.executor.metadata().inputs
  if (theirs.length !== merged.specs.length) return first
  const matched = merged.specs.map((spec) => theirs.find((t) => t.name === spec.name && t.datatype === spec.datatype && sameRank(t, spec)))
  for (const [i, other] of matched.entries()) {
    if (!other) return first
    const at = other.shape.findIndex((d, k) => d >= 0 && merged.specs[i]!.shape[k]! >= 0 && d !== merged.specs[i]!.shape[k])
    if (at >= 0) return merged.fixedBy[i]![at]
  }
  if (fix) {
    for (const [i, other] of matched.entries()) {
      other!.shape.forEach((d, k) => {
        if (d < 0 || merged.specs[i]!.shape[k]! >= 0) return
        merged.specs[i]!.shape[k] = d
        merged.fixedBy[i]![k] = m
      })
    }
  }
  return undefined
}

/** Checks the loaded models agree on inputs; returns issues instead of throwing so all are reported. */
export function buildEnsemble(
  config: EnsembleConfig,
  lookup: (name: string) => { model: ModelConfig; executor: Executor; stats: ModelStats },
  requestStats: EnsembleStats = new EnsembleStats(),
  calibrations: ReadonlyMap<string, Calibration> = new Map(),
): { ensemble?: EnsembleRuntime; issues: Issue[] } {
  const members = config.models.map(lookup)
  const first = members[0]!
  const issues: Issue[] = []
  // The ensemble's inputs: a dimension any member fixes is fixed, whatever the members' order.
  // Were a -1 kept where a sibling fixes the size, a request of another size would pass the
  // check and fail in that sibling's runtime, counted against it, or (first in the list) be
  // refused: as outputs (commonOutputs), the members' order decides nothing.
  const merged: MergedInputs = {
    specs: first.executor.metadata().inputs.map((spec) => ({ ...spec, shape: [...spec.shape] })),
    fixedBy: first.executor.metadata().inputs.map((spec) => spec.shape.map((d) => (d < 0 ? undefined : first))),
  }
  const check = (m: Member, path: string, fix: boolean): void => {
    const against = mergeInputs(merged, first, m, fix)
    if (against) issues.push({ path, message: `inputs of "${m.model.name}" (${specsText(m.executor.metadata().inputs)}) differ from "${against.model.name}" (${specsText(against.executor.metadata().inputs)})` })
  }
  members.slice(1).forEach((m, i) => check(m, `ensembles.${config.name}.models.${i + 1}`, true))
  const inputs: readonly TensorSpec[] = merged.specs
  // Shadows run after the answer: checked against the members' inputs, they fix no size of the ensemble's.
  const shadows = (config.shadow?.models ?? []).map(lookup)
  shadows.forEach((m, i) => check(m, `ensembles.${config.name}.shadow.models.${i}`, false))
  const outputs = commonOutputs(members.map((m) => m.executor.metadata().outputs))
  if (outputs.length === 0) issues.push({ path: `ensembles.${config.name}.models`, message: 'the models share no output (same name and datatype, compatible shapes)' })
  if (issues.length) return { issues }
  const factory = getStrategy(config.strategy.name)
  if (!factory) return { issues: [{ path: `ensembles.${config.name}.strategy`, message: `unknown strategy ${config.strategy.name}` }] }
  const shape = {
    name: config.name,
    models: config.models,
    outputs,
    staticQuality: members.map((m) => m.model.quality),
    calibrations: config.models.map((name) => calibrations.get(name)),
  }
  const options = config.strategy.options as never
  const problems = factory.check?.(options, shape) ?? []
  if (problems.length) return { issues: problems.map((message) => ({ path: `ensembles.${config.name}.strategy`, message })) }
  const selectProblem = Selection.problem(config.select, outputs)
  if (selectProblem) return { issues: [{ path: `ensembles.${config.name}.select`, message: selectProblem }] }
  const strategy = factory.create(options, shape)
  const stats = members.map((m) => m.stats)
  return {
    issues,
    ensemble: {
      name: config.name,
      strategyName: config.strategy.name,
      config,
      strategy,
      executors: members.map((m) => m.executor),
      models: members.map((m) => m.model),
      stats,
      requestStats,
      inputs,
      outputs,
      // Declared outputs are a subset of each member's (by name): as many means the same set.
      answersAsDeclared: members.map((m) => m.executor.metadata().outputs.length === outputs.length),
      selection: config.select.policy === 'all' ? undefined : new Selection(config.select, stats, strategy, outputs),
      shadow: config.shadow && new ShadowRunner(shadows.map((m) => ({ model: m.model, executor: m.executor, counts: shadowCounts(requestStats, m.model.name) })), config.shadow.sample, config.budget.max, outputs),
    },
  }
}

/**
 * The outputs every member declares with the same name and datatype and a compatible shape,
 * in the first member's order. Shapes are compatible when of one rank (any rank is one of
 * its own) with no dimension fixed at two sizes (2 classes here, 3 there: left out, as a
 * datatype that differs); a dimension fixed in one and -1 in another is -1. Every answer then
 * fits what the ensemble declares.
 */
export function commonOutputs(declared: readonly (readonly TensorSpec[])[]): TensorSpec[] {
  const common: TensorSpec[] = []
  for (const spec of declared[0]!) {
    const specs = declared.map((theirs) => theirs.find((o) => o.name === spec.name))
    if (!specs.every((o) => o !== undefined && o.datatype === spec.datatype && sameRank(o, spec))) continue
    const shape = spec.shape.map((_, i) => {
      const sizes = specs.map((o) => o!.shape[i]!)
      const fixed = sizes.filter((d) => d >= 0)
      if (fixed.some((d) => d !== fixed[0])) return undefined
      return fixed.length === sizes.length ? fixed[0]! : -1
    })
    if (shape.includes(undefined)) continue
    common.push(shape.every((d, i) => d === spec.shape[i]) ? spec : { ...spec, shape: shape as number[] })
  }
  return common
}

/**
 * An answer put together by the strategy (an aggregate, a batch spliced row by row from
 * several members) with only the ensemble's outputs: as it is when it has no other (no copy).
 */
export function declaredOutputs(outputs: TensorMap, ens: EnsembleRuntime): TensorMap {
  for (const name in outputs) if (!declares(ens.outputs, name)) return onlyOutputs(outputs, ens.outputs)
  return outputs
}

function declares(specs: readonly TensorSpec[], name: string): boolean {
  for (const spec of specs) if (spec.name === name) return true
  return false
}

/** `outputs` without those not in `specs` (by name): a member's or a canary's answer cut to what is declared. */
export function onlyOutputs(outputs: TensorMap, specs: readonly TensorSpec[]): TensorMap {
  const kept: [string, Tensor][] = []
  for (const spec of specs) {
    const tensor = Object.hasOwn(outputs, spec.name) ? outputs[spec.name] : undefined
    if (tensor !== undefined) kept.push([spec.name, tensor])
  }
  // fromEntries defines own properties: an output named "__proto__" stays an output.
  return Object.fromEntries(kept)
}

/** A shadow model's counters, kept with the ensemble's across reloads. */
function shadowCounts(stats: EnsembleStats, model: string): ShadowCounts {
  let counts = stats.shadows.get(model)
  if (!counts) stats.shadows.set(model, (counts = new ShadowCounts()))
  return counts
}

/** The declared input `name` of the ensemble; BAD_INPUT when it takes no such input. */
export function inputSpec(ens: EnsembleRuntime, name: string): TensorSpec {
  for (const spec of ens.inputs) if (spec.name === name) return spec
  throw new GatewayError('BAD_INPUT', `unknown input ${quote(name)} (ensemble "${ens.name}" takes: ${ens.inputs.map((s) => s.name).join(', ')})`)
}

/**
 * Every declared input given, of its datatype and shape, with at least one element, and
 * nothing else; BAD_INPUT otherwise. Every frontend (REST, OIP, gRPC, stream mode) passes
 * here before any executor runs: an empty tensor (a zero batch, any zero dimension) is
 * refused because ONNX Runtime kernels divide by it (KNN models die of SIGFPE).
 */
export function checkInputs(ens: EnsembleRuntime, inputs: TensorMap): void {
  let given = 0
  for (const spec of ens.inputs) {
    // Own properties only: an input named like an Object.prototype member ("constructor") is not given by default.
    const tensor = Object.hasOwn(inputs, spec.name) ? inputs[spec.name] : undefined
    if (!tensor) throw new GatewayError('BAD_INPUT', `missing input "${spec.name}" (${spec.datatype} ${declaredShape(spec)})`)
    checkTensor(tensor, spec, inputFailure)
    if (tensor.data.length === 0) throw new GatewayError('BAD_INPUT', `input "${spec.name}": shape ${formatShape(tensor.shape)} holds no elements; a predict needs at least one`)
    given++
  }
  let count = 0
  for (const _ in inputs) count++
  if (count !== given) for (const name in inputs) inputSpec(ens, name)
}
