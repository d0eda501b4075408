// What a scenario gets (settings, a temp dir, results of earlier scenarios) and the
// helpers every scenario uses to turn repeated runs into table rows and targets.
import { summarize, type Summary } from './stats.ts'
import type { LoadResult, ScenarioResult, Target, Variant } from './types.ts'

export interface BenchContext {
  readonly quick: boolean
  readonly repetitions: number
  readonly warmupS: number
  readonly durationS: number
  /** Interleaved closed loops: how long each target runs before the next takes its turn (bench/load/interleaved.ts). */
  readonly sliceS: number
  /** Closed-loop connections (and ghz workers) for every max-throughput run. */
  readonly connections: number
  /** Fractions of the baseline's max rate for the open-loop latency sweep (0.5 is the target's). */
  readonly sweep: readonly number[]
  /** A temp dir for generated configs and model repositories. */
  readonly dir: string
  readonly log: (message: string) => void
  /** Figures later scenarios build on (e.g. specserve's max rate, for overload at 2×). */
  readonly shared: Map<string, number>
}

export interface Scenario {
  readonly id: string
  readonly title: string
  run(ctx: BenchContext): Promise<ScenarioResult>
  /** Always called at the end of the bench, whatever happened: stop what run left running (a broker). */
  cleanup?(ctx: BenchContext): Promise<void>
}

/** Accumulates each variant's runs and per-repetition metrics, in first-seen order. */
export class Rows {
  private readonly rows = new Map<string, { description: string; runs: LoadResult[]; values: Map<string, number[]> }>()

  add(name: string, description: string, run: LoadResult | null, metrics: Readonly<Record<string, number | null | undefined>>): void {
    let row = this.rows.get(name)
    if (!row) {
      row = { description, runs: [], values: new Map() }
      this.rows.set(name, row)
    }
    if (run) row.runs.push(run)
    for (const [key, value] of Object.entries(metrics)) {
      const list = row.values.get(key) ?? []
      if (value !== null && value !== undefined) list.push(value)
      row.values.set(key, list)
    }
  }

  summary(name: string, metric: string): Summary | null {
    return summarize(this.rows.get(name)?.values.get(metric) ?? [])
  }

  variants(): Variant[] {
    return [...this.rows].map(([name, row]) => ({
      name,
      description: row.description,
      metrics: Object.fromEntries([...row.values].map(([k, v]) => [k, summarize(v)])),
      runs: row.runs,
    }))
  }
}

/**
 * A target from the issue, judged on the median of the repetitions; a target whose threshold
 * is zero ("no failed request") on the worst repetition, since one bad repetition in three is
 * a failure the median would hide.
 */
export function target(
  description: string,
  metric: string,
  value: Summary | null,
  comparison: '>=' | '<=',
  threshold: number,
  why: () => string,
): Target {
  if (!value) return unmeasured(description, metric, comparison, threshold, 'no repetition gave a value (the table shows what was measured)')
  const worst = threshold === 0
  const judged = worst ? (comparison === '<=' ? value.max : value.min) : value.median
  const met = comparison === '>=' ? judged >= threshold : judged <= threshold
  return { description, metric, threshold, comparison, value: judged, met, ...(worst ? { statistic: 'worst' as const } : {}), ...(met ? {} : { why: why() }) }
}

/** A target the run could not judge (its measurement is missing or meaningless), and why. */
export function unmeasured(description: string, metric: string, comparison: '>=' | '<=', threshold: number, why: string): Target {
  return { description, metric, threshold, comparison, value: null, met: null, why }
}

export function notRun(id: string, title: string, reason: string): ScenarioResult {
  return { id, title, status: 'not run', reason, variants: [], targets: [], notes: [] }
}

/** Runs `body` once per repetition; the rows interleave variants within a repetition so drift hits all alike. */
export async function repeat(ctx: BenchContext, label: string, body: (rep: number) => Promise<void>): Promise<void> {
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    ctx.log(`${label}: repetition ${rep + 1}/${ctx.repetitions}`)
    await body(rep)
  }
}

/** The headline figures of a load run: 2xx/s and latency, and the req/s ratio against `reference` when given. */
export function headline(run: LoadResult, reference?: LoadResult): Record<string, number | undefined> {
  return { rps: run.throughput, p50: run.latency?.p50, p99: run.latency?.p99, ...(reference ? { rps_ratio: run.throughput / reference.throughput } : {}) }
}

/** Successful answers: HTTP 2xx, or gRPC OK (paired gRPC targets record gRPC status names). */
export const ok2xx = (run: LoadResult): number => Object.entries(run.statuses).reduce((n, [s, c]) => (s.startsWith('2') || s === 'OK' ? n + c : n), 0)
export const countStatus = (run: LoadResult, status: number): number => run.statuses[String(status)] ?? 0
