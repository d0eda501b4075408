// The `ensembles:` section of a config: its typed form (members, strategy, budget, selection,
// shadows) and its parser, which parseConfig (load.ts) runs between the models and the output.
import { getStrategy, strategyNames } from '../collectors/registry.ts'
import type { ParseContext } from '../executors/types.ts'
import { nameProblem } from './forms.ts'
import type { RawConfig, RawEnsemble } from './schema.ts'
import { schemaIssues, type ConfigIssue, type SourceMap } from './yaml.ts'

export interface EnsembleConfig {
  readonly name: string
  readonly models: readonly string[]
  readonly strategy: {
    readonly name: string
    /** The options as the strategy parsed them (typed, defaulted). */
    readonly options: unknown
    /** The options as written. */
    readonly raw: Readonly<Record<string, unknown>>
  }
  readonly budget: { readonly default: number; readonly max: number }
  readonly description: string | undefined
  /** Which members a request starts; `all` unless `select:` says otherwise. */
  readonly select: SelectConfig
  /** Shadow members: run on `sample` of the predicts once they are answered; never chosen. */
  readonly shadow: { readonly models: readonly string[]; readonly sample: number } | undefined
}

export type SelectConfig =
  | { readonly policy: 'all' }
  | { readonly policy: 'latency-aware' }
  | { readonly policy: 'adaptive'; readonly accuracyTarget: number; readonly explore: number }

const ALL_MEMBERS: SelectConfig = Object.freeze({ policy: 'all' })

export const DEFAULT_BUDGET = { default: 100, max: 1000 } as const

/** `select:` as written → typed; adaptive needs its accuracy_target. */
function parseSelect(raw: RawEnsemble['select'], problem: (field: string[], message: string) => void): SelectConfig {
  if (raw === undefined) return ALL_MEMBERS
  const { policy, accuracy_target: target, explore } = typeof raw === 'string' ? { policy: raw, accuracy_target: undefined, explore: undefined } : raw
  if (policy !== 'adaptive') {
    if (target !== undefined || explore !== undefined) problem(['policy'], `accuracy_target and explore apply to policy adaptive, not ${policy}`)
    return policy === 'all' ? ALL_MEMBERS : { policy }
  }
  if (target === undefined) {
    problem(typeof raw === 'string' ? [] : ['policy'], 'policy adaptive needs accuracy_target (e.g. { policy: adaptive, accuracy_target: 0.99 })')
    return ALL_MEMBERS
  }
  return { policy, accuracyTarget: target, explore: explore ?? 0.05 }
}

/** parseConfig's collectors: a problem `at` a path, the validator's issues into `problems`, a strategy parse()'s `context`. */
export interface SectionReport {
  readonly source: SourceMap
  readonly problems: ConfigIssue[]
  at(path: (string | number)[], message: string): void
  context(base: (string | number)[]): ParseContext
}

/** The ensembles, typed; what is wrong is reported, and parseConfig throws it with the rest of the config's problems. */
export function parseEnsembles(raw: RawConfig, { source, problems, at, context }: SectionReport): Map<string, EnsembleConfig> {
  const ensembles = new Map<string, EnsembleConfig>()
  for (const [name, e] of Object.entries(raw.ensembles)) {
    const base = ['ensembles', name]
    const badName = nameProblem(name)
    if (badName) at(base, badName)
    // Own keys only: `toString` or `constructor` is not a model because every object has one.
    // Sets, not indexOf: an aliased list of a thousand members in a thousand ensembles is a
    // billion comparisons (seconds of a reload on the serving event loop).
    const members = new Set<string>()
    e.models.forEach((m, i) => {
      if (!Object.hasOwn(raw.models, m)) at([...base, 'models', i], `unknown model "${m}"`)
      else if (members.has(m)) at([...base, 'models', i], `"${m}" is listed twice`)
      members.add(m)
    })
    const shadows = new Set<string>()
    e.shadow?.models.forEach((m, i) => {
      if (!Object.hasOwn(raw.models, m)) at([...base, 'shadow', 'models', i], `unknown model "${m}"`)
      else if (members.has(m)) at([...base, 'shadow', 'models', i], `"${m}" is a member of the ensemble; a shadow is never chosen`)
      else if (shadows.has(m)) at([...base, 'shadow', 'models', i], `"${m}" is listed twice (it would run, and be counted, twice)`)
      shadows.add(m)
    })
    const budget = e.budget_ms ?? DEFAULT_BUDGET
    if (budget.default > budget.max) at([...base, 'budget_ms', 'default'], `default ${budget.default} is over max ${budget.max}`)
    const { name: strategyName, ...rawOptions } = typeof e.strategy === 'string' ? { name: e.strategy } : e.strategy
    const factory = getStrategy(strategyName)
    const strategyPath = typeof e.strategy === 'string' ? [...base, 'strategy'] : [...base, 'strategy', 'name']
    if (!factory) {
      at(strategyPath, `unknown strategy "${strategyName}" (known: ${strategyNames().join(', ')})`)
      continue
    }
    // Checks that need the models' outputs (e.g. what to vote on) run after load, in buildEnsemble.
    const optionIssues = schemaIssues(factory.options, rawOptions, [...base, 'strategy'], source)
    problems.push(...optionIssues)
    if (optionIssues.length) continue
    const options = factory.parse ? factory.parse(rawOptions as never, { ...context([...base, 'strategy']), budgetMs: budget }) : rawOptions
    ensembles.set(name, {
      name,
      models: e.models,
      strategy: { name: strategyName, options, raw: rawOptions },
      budget: { default: budget.default, max: budget.max },
      description: e.description,
      select: parseSelect(e.select, (field, message) => at([...base, 'select', ...field], message)),
      shadow: e.shadow && { models: e.shadow.models, sample: e.shadow.sample ?? 1 },
    })
  }
  return ensembles
}
