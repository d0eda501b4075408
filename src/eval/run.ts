// `specserve eval`: each ensemble, and each of its members alone, over a labeled data set
// through the real predict path (gateway.start: budget, fan-out, executors, collector,
// annotations), at each budget, one request at a time so latencies are the path's own.
import { getStrategy } from '../collectors/registry.ts'
import { resolveVoteSource } from '../collectors/outputs.ts'
import type { EnsembleConfig, GatewayConfig } from '../config/load.ts'
import { quantileOf } from '../executors/onnx/run-times.ts'
import { ConfigError, shownPath } from '../config/yaml.ts'
import { Gateway } from '../gateway.ts'
import { RepositoryPreview } from '../registry/preview.ts'
import { roundMs } from '../starter/stats.ts'
import { DATATYPES, type Tensor, type TensorSpec } from '../tensor/index.ts'
import type { PredictResult } from '../types.ts'
import { beyondRange, EvalInputError, featureRow, NARROW_FLOATS, type LabeledData } from './data.ts'
import { count } from '../plural.ts'
import { featureInput, fittingEnsembles } from './fit.ts'
import { delayAnswers, type LatencyProfile } from './latency.ts'
import { checkLabels, predictionReader, type Task } from './scoring.ts'

export type { Task } from './scoring.ts'

/** One target (an ensemble or one member alone) at one budget. */
export interface TargetResult {
  readonly target: string
  readonly kind: 'ensemble' | 'member'
  readonly budget_ms: number
  /** Accuracy (classification: failures count as wrong) or MAE over the answered rows (regression). */
  readonly score: number
  readonly answered: number
  /** Rows with no usable answer by the deadline (DEADLINE_EXCEEDED). */
  readonly misses: number
  /** Rows that failed otherwise (every model failed, no consensus). */
  readonly failed: number
  /** Rows answered with no answer and no error: the strategy abstained (a vote's `on_no_majority: abstain`). */
  readonly abstained: number
  /** Rows whose answer was not a finite number (NaN probabilities, say): no answer, and no error. */
  readonly non_finite: number
  readonly p50_ms: number
  readonly p99_ms: number
  /** Members started per request (not `skipped`), on average. */
  readonly members_started: number
  readonly members: number
}

export interface EnsembleReport {
  readonly ensemble: string
  readonly strategy: string
  readonly task: Task
  readonly metric: 'accuracy' | 'mae'
  readonly models: readonly string[]
  readonly results: readonly TargetResult[]
}

export interface EvalOptions {
  /** Ensembles to evaluate; default: every ensemble of the config the data set fits (fit.ts). */
  readonly ensembles?: readonly string[] | undefined
  /** Budgets in ms; default: each ensemble's default budget. */
  readonly budgets?: readonly number[] | undefined
  readonly profile?: LatencyProfile | undefined
  /** Rows run before measuring each target (warm-up); default 20. */
  readonly warmup?: number | undefined
  /** Told of features beyond the range of an ensemble's FP32 (or FP16) input, once the inputs are known. */
  readonly warn?: ((message: string) => void) | undefined
}

const SOLO = 'solo:'

/**
 * The name of each member's one-model ensemble: `solo:<model>`, suffixed (`#2`, `#3`…) past a
 * name the config's own ensembles or another member's already took, so eval never replaces
 * an ensemble the user named so.
 */
function soloNames(config: GatewayConfig, names: readonly string[]): Map<string, string> {
  const taken = new Set(config.ensembles.keys())
  const solos = new Map<string, string>()
  for (const model of names.flatMap((name) => config.ensembles.get(name)!.models)) {
    if (solos.has(model)) continue
    let solo = SOLO + model
    for (let n = 2; taken.has(solo); n++) solo = `${SOLO}${model}#${n}`
    taken.add(solo)
    solos.set(model, solo)
  }
  return solos
}

/**
 * The config eval runs: the chosen ensembles, and one deadline-fallback ensemble per member
 * (a member alone, same path; `solos` names them by model). Other ensembles are left out, so
 * their models are not loaded.
 */
function withSoloEnsembles(config: GatewayConfig, names: readonly string[]): { config: GatewayConfig; solos: Map<string, string> } {
  const solos = soloNames(config, names)
  const fallback = getStrategy('deadline-fallback')!
  const options = fallback.parse!({} as never, { problem: () => undefined, warn: () => undefined })
  const ensembles = new Map(names.map((name) => [name, config.ensembles.get(name)!]))
  for (const name of names) {
    const ens = config.ensembles.get(name)!
    for (const model of ens.models) {
      const budget = ensembles.get(solos.get(model)!)?.budget
      const solo: EnsembleConfig = {
        name: solos.get(model)!,
        models: [model],
        strategy: { name: 'deadline-fallback', options, raw: {} },
        budget: { default: ens.budget.default, max: Math.max(budget?.max ?? 0, ens.budget.max) },
        description: `${model} alone (specserve eval)`,
        select: { policy: 'all' },
        shadow: undefined,
      }
      ensembles.set(solo.name, solo)
    }
  }
  return { config: { ...config, ensembles }, solos }
}

/**
 * The gateway eval runs: repository models at the version serve would serve (read-only, as
 * validate reads it), not their seed `path:`; a model with nothing to serve is a config error.
 */
export function evalGateway(config: GatewayConfig, names: readonly string[]): { gateway: Gateway; solos: Map<string, string> } {
  const repository = config.repository ? new RepositoryPreview(config) : undefined
  if (repository?.issues.length) throw new ConfigError(config.file, repository.issues)
  const run = withSoloEnsembles(config, names)
  return { gateway: new Gateway(run.config, repository && { versions: repository }), solos: run.solos }
}

/**
 * The ensembles to run and their budgets, checked before the run's models load. Named with
 * --ensembles: each must exist (its fit is checked once loaded). Otherwise: every ensemble the
 * data set fits (a config serves several data sets), found first, so the budgets are checked
 * against those alone.
 */
export async function planEval(config: GatewayConfig, data: LabeledData, options: EvalOptions): Promise<{ names: string[]; budgets: Map<string, number[]> }> {
  if (options.ensembles?.length === 0) throw new EvalInputError('--ensembles: give at least one ensemble name, e.g. --ensembles a,b')
  // One named twice would be run, and reported, twice (budgets as numbers: 10 and 10.0 are one).
  const twice = <T>(items: readonly T[] | undefined): T | undefined => items?.find((item, i) => items.indexOf(item) !== i)
  const ensembleTwice = twice(options.ensembles)
  if (ensembleTwice !== undefined) throw new EvalInputError(`--ensembles: ensemble "${ensembleTwice}" is named twice`)
  const budgetTwice = twice(options.budgets)
  if (budgetTwice !== undefined) throw new EvalInputError(`--budgets: ${budgetTwice} ms is given twice`)
  for (const name of options.ensembles ?? []) {
    if (!config.ensembles.has(name)) throw new EvalInputError(`--ensembles: no ensemble "${name}" in ${shownPath(config.file)} (${[...config.ensembles.keys()].join(', ')})`)
  }
  const names = options.ensembles ? [...options.ensembles] : await fittingEnsembles(config, data)
  if (names.length === 0) throw new EvalInputError(`${data.file}:1: no ensemble of ${shownPath(config.file)} takes ${count(data.features.length, 'feature column')}`)
  const budgets = new Map<string, number[]>()
  for (const name of names) {
    const ens = config.ensembles.get(name)!
    const list = options.budgets ? [...options.budgets] : [ens.budget.default]
    for (const b of list) {
      if (b > ens.budget.max) throw new EvalInputError(`--budgets: ${b} ms is over ensemble "${name}"'s max of ${ens.budget.max} ms (budget_ms.max)`)
    }
    budgets.set(name, list)
  }
  // A delay for a model no evaluated ensemble runs would change nothing, silently.
  const members = new Set(names.flatMap((name) => config.ensembles.get(name)!.models))
  for (const model of options.profile?.delays.keys() ?? []) {
    if (!config.models.has(model)) throw new EvalInputError(`--latency-profile: no model "${model}" in ${shownPath(config.file)}`)
    if (!members.has(model)) throw new EvalInputError(`--latency-profile: "${model}" is a member of no ensemble evaluated (${names.join(', ')})`)
  }
  return { names, budgets }
}

export async function runEval(config: GatewayConfig, data: LabeledData, options: EvalOptions = {}): Promise<EnsembleReport[]> {
  const { names, budgets } = await planEval(config, data, options)
  const { gateway, solos } = evalGateway(config, names)
  try {
    await gateway.load()
    for (const [model, delay] of options.profile?.delays ?? []) delayAnswers(gateway.models.get(model)!.executor, delay)
    // Labels that are not the models' classes would score 0% without a word: refused before
    // anything runs (after the width, the mistake at line 1).
    const narrow = new Map<keyof typeof NARROW_FLOATS, string[]>()
    for (const name of names) {
      const ens = gateway.ensemble(name)
      const { datatype } = featureInput(name, ens.inputs, data)
      checkLabels(ens.outputs, name, data, ens.strategy.decidesOn)
      if (datatype in NARROW_FLOATS) narrow.set(datatype as keyof typeof NARROW_FLOATS, [...(narrow.get(datatype as keyof typeof NARROW_FLOATS) ?? []), name])
    }
    // A feature beyond an input's float range reaches its models as Infinity: said, once per datatype.
    for (const [datatype, ensembles] of narrow) {
      const huge = beyondRange(data, datatype)
      if (huge === undefined) continue
      const more = huge.count > 1 ? ` (${count(huge.count - 1, 'more cell')} too)` : ''
      const takers = ensembles.length === 1 ? `ensemble ${ensembles[0]} takes ${datatype} and gets` : `ensembles ${ensembles.join(', ')} take ${datatype} and get`
      options.warn?.(`${data.file}:${huge.line}: ${huge.value} in column "${huge.column}" is beyond ${datatype}'s range (${NARROW_FLOATS[datatype].range}): ${takers} Infinity there${more}`)
    }
    const reports: EnsembleReport[] = []
    for (const name of names) reports.push(await evalEnsemble(gateway, name, solos, data, budgets.get(name)!, options.warmup ?? 20))
    return reports
  } finally {
    await gateway.close()
  }
}

async function evalEnsemble(gateway: Gateway, name: string, solos: ReadonlyMap<string, string>, data: LabeledData, budgets: readonly number[], warmup: number): Promise<EnsembleReport> {
  const ens = gateway.ensemble(name)
  const input = featureInput(ens.name, ens.inputs, data)
  // The output the gateway decides on (a vote's `output:`: a float output, a second label), so eval scores that one.
  const voted = ens.strategy.decidesOn
  const task: Task = resolveVoteSource(ens.outputs, voted).kind === 'regression' ? 'regression' : 'classification'
  const targets = [{ ensemble: name, target: name, kind: 'ensemble' as const }, ...ens.models.map((m) => ({ ensemble: solos.get(m.name)!, target: m.name, kind: 'member' as const }))]
  const results: TargetResult[] = []
  for (const budget of budgets) {
    for (const { ensemble, target, kind } of targets) {
      const runtime = gateway.ensemble(ensemble)
      const read = predictionReader(task, runtime.outputs, voted)
      for (let i = 0; i < Math.min(warmup, data.rows); i++) await predictRow(gateway, ensemble, input, data, i, budget)
      const elapsed: number[] = []
      let hits = 0
      let absError = 0
      let answered = 0
      let misses = 0
      let failed = 0
      let abstained = 0
      let nonFinite = 0
      let started = 0
      for (let i = 0; i < data.rows; i++) {
        const result = await predictRow(gateway, ensemble, input, data, i, budget)
        elapsed.push(result.elapsed_ms)
        for (const m of result.models) if (m.status !== 'skipped') started++
        if (result.error?.code === 'DEADLINE_EXCEEDED') misses++
        else if (result.error) failed++
        const predicted = result.outputs === null ? undefined : read(result.outputs)
        if (predicted === undefined) {
          // Neither answered nor failed: said, so answered + misses + failed + these = rows.
          if (result.error === null) {
            if (result.outputs === null) abstained++
            else nonFinite++
          }
          continue
        }
        answered++
        if (task === 'classification') hits += predicted === data.truth[i] ? 1 : 0
        else absError += Math.abs(predicted - data.truth[i]!)
      }
      results.push({
        target,
        kind,
        budget_ms: budget,
        score: task === 'classification' ? hits / data.rows : answered === 0 ? Number.NaN : absError / answered,
        answered,
        misses,
        failed,
        abstained,
        non_finite: nonFinite,
        p50_ms: roundMs(quantileOf(elapsed, 0.5)),
        p99_ms: roundMs(quantileOf(elapsed, 0.99)),
        members_started: started / data.rows,
        members: runtime.models.length,
      })
    }
  }
  return { ensemble: name, strategy: ens.strategyName, task, metric: task === 'classification' ? 'accuracy' : 'mae', models: ens.models.map((m) => m.name), results }
}

export async function predictRow(gateway: Gateway, ensemble: string, input: TensorSpec, data: LabeledData, i: number, budget: number): Promise<PredictResult> {
  // A float datatype (featureInput checked it): its typed array takes the row as numbers.
  const row = featureRow(data, i)
  const values = new (DATATYPES[input.datatype].array!)(row.length) as Float32Array
  values.set(row)
  const tensor: Tensor = { datatype: input.datatype, shape: [1, values.length], data: values }
  try {
    return await gateway.predict({ id: `eval-${i}`, ensemble, inputs: { [input.name]: tensor }, budgetMs: budget })
  } catch (err) {
    throw new EvalInputError(`${data.file}:${data.lines[i]}: ${(err as Error).message}`)
  }
}
