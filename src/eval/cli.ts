// `specserve eval -c config.yaml --data holdout.csv --label <col> [--columns a,b,c]
// [--ensembles a,b] [--budgets 5,10,20] [--out DIR] [--latency-profile SPEC]`: flags, input checks with
// clear messages (exit 2), the run, the report files, a verdict per ensemble on stdout.
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { commaList, type ListFlag } from '../comma-list.ts'
import { calibrationPath } from '../config/calibration.ts'
import { loadConfigFile, type GatewayConfig } from '../config/load.ts'
import { fileInTheWay, makeDirs, removeDirs } from '../config/paths.ts'
import { ConfigError, formatIssue, shownPath } from '../config/yaml.ts'
import { calibrate, CALIBRATION_METHODS, TEMPERATURE_RANGE, type CalibrationMethod } from './calibrate.ts'
import { EvalInputError, NUMBER, readLabeledCsv } from './data.ts'
import { refuseInput } from './errors.ts'
import { count } from '../plural.ts'
import { parseLatencyProfile } from './latency.ts'
import { verdicts, writeReport, type EvalReport } from './report.ts'
import { runEval, type EnsembleReport } from './run.ts'
import { evalUsage } from './usage.ts'

const ENSEMBLES: ListFlag = { flag: '--ensembles', one: 'ensemble name', many: 'ensemble names', example: 'a,b' }
const COLUMNS: ListFlag = { flag: '--columns', one: 'feature column', many: 'feature columns', example: 'f0,f1,f2' }
const BUDGETS: ListFlag = { flag: '--budgets', one: 'budget in ms', many: 'budgets in ms', example: '5,10,20' }

const list = (text: string | undefined, flag: ListFlag): string[] | undefined => (text === undefined ? undefined : commaList(text, flag, refuseInput))

/** The budgets in ms, each a number as a CSV cell is one (no hex, no blanks inside). */
function budgetsOf(text: string | undefined): number[] | undefined {
  return list(text, BUDGETS)?.map((item) => {
    const ms = Number(item)
    if (!NUMBER.test(item) || !(ms > 0) || !Number.isFinite(ms)) throw new EvalInputError(`--budgets: "${item}" is not a positive number of ms`)
    return ms
  })
}

/**
 * `--out` names a directory, made here (before the run, and before --calibrate writes its file),
 * then probed by writing a file in it: a place the report cannot go is refused before
 * anything runs, not after. Returns the directories made, for removeDirs on a later refusal.
 */
function makeOutDir(dir: string): string[] {
  const path = resolve(dir)
  const file = fileInTheWay(path)
  if (file === path) throw new EvalInputError(`--out ${dir}: not a directory (the report is report.json, report.md and SVG files in it)`)
  if (file !== undefined) throw new EvalInputError(`--out ${dir}: ${asGiven(dir, file)} is not a directory`)
  let made: string[] = []
  try {
    made = makeDirs(dir)
    const probe = join(dir, `.specserve-eval-${process.pid}.probe`)
    writeFileSync(probe, '', { flag: 'wx' })
    rmSync(probe)
  } catch (err) {
    removeDirs(made)
    throw new EvalInputError(`--out ${dir}: cannot write the report there: ${(err as Error).message}`)
  }
  return made
}

/** `path` (an ancestor of `dir`, resolved) as `dir` spells it: `x.csv` for --out x.csv/r, not /home/…/x.csv. */
function asGiven(dir: string, path: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (resolve(at) === path) return at
    if (dirname(at) === at) return path
  }
}

/** A member none of whose answers had finite probabilities: on every row, or on every row it answered when some went unanswered. */
export const nonFiniteOnly = (model: string, rows: number, unanswered: number | undefined): string =>
  `not calibrated ${model}: its probabilities were non-finite on ` +
  (unanswered ? `every row it answered (${count(rows, 'row')})${leftOut(undefined, unanswered)}` : rows === 1 ? 'its 1 row' : `all ${rows} rows`)

/** What a fit left out, as the end of its line. */
const leftOut = (nonFinite: number | undefined, unanswered: number | undefined): string =>
  (nonFinite ? `; ${count(nonFinite, 'row')} left out: non-finite probabilities` : '') + (unanswered ? `; ${count(unanswered, 'row')} left out: no answer` : '')

/**
 * The report files, or an input error naming --out: an unwritable place (a file system error)
 * is the flag's problem; any other error is a bug, and stays one.
 */
function writeReportTo(dir: string, report: EvalReport): string[] {
  try {
    return writeReport(dir, report)
  } catch (err) {
    if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err
    throw new EvalInputError(`--out ${dir}: cannot write the report: ${(err as Error).message}`)
  }
}

/** The calibration file the config applied, and which of the evaluated members it calibrates; null when the config has none. */
function calibrationApplied(config: GatewayConfig, reports: readonly EnsembleReport[]): EvalReport['calibration'] {
  if (config.calibration.size === 0) return null
  const members = [...new Set(reports.flatMap((e) => e.models))]
  return { file: shownPath(calibrationPath(config.file)), models: members.filter((m) => config.calibration.has(m)) }
}

/**
 * `--calibrate` alone means a temperature; `--calibrate isotonic` (or `=isotonic`) names the
 * method. parseArgs has no optional values, so the method is read here and the flag passed on bare.
 */
function calibrationFlag(argv: readonly string[]): { args: string[]; method: CalibrationMethod | undefined } {
  const args: string[] = []
  let method: CalibrationMethod | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const named = arg.startsWith('--calibrate=') ? arg.slice('--calibrate='.length) : undefined
    if (arg !== '--calibrate' && named === undefined) {
      args.push(arg)
      continue
    }
    // eval takes no positional argument: a word after the bare flag is meant as its method.
    const following = argv[i + 1]
    const next = named ?? (following !== undefined && !following.startsWith('-') ? argv[++i]! : 'temperature')
    if (!CALIBRATION_METHODS.includes(next as CalibrationMethod)) throw new EvalInputError(`--calibrate: "${next}" is not ${CALIBRATION_METHODS.join(' or ')}`)
    method = next as CalibrationMethod
  }
  return { args, method }
}

/** Runs the command; returns the exit code (0 done, 1 the run failed, 2 bad flags or input). */
export async function evalMain(argv: readonly string[]): Promise<number> {
  let values
  let method: CalibrationMethod | undefined
  try {
    let args: string[]
    ;({ args, method } = calibrationFlag(argv))
    ;({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        data: { type: 'string' },
        label: { type: 'string' },
        columns: { type: 'string' },
        ensembles: { type: 'string' },
        budgets: { type: 'string' },
        out: { type: 'string' },
        'latency-profile': { type: 'string' },
      },
    }))
  } catch (err) {
    console.error(`specserve eval: ${(err as Error).message}\nusage:\n${evalUsage}`)
    return 2
  }
  if (values.help) {
    console.log(`usage:\n${evalUsage}`)
    return 0
  }
  if (values.data === undefined || values.label === undefined) {
    console.error(`specserve eval: --data and --label are required\nusage:\n${evalUsage}`)
    return 2
  }
  // An empty name would be the working directory, unsaid.
  if (values.out?.trim() === '') {
    console.error(`specserve eval: --out: give a directory for the report (the name is empty)\nusage:\n${evalUsage}`)
    return 2
  }
  const configFile = values.config ?? 'examples/demo.yaml'
  const out = values.out ?? 'eval-report'
  let made: string[] = []
  try {
    // Flags first, then the data, then the config and its models: the cheapest mistake is reported first.
    const budgets = budgetsOf(values.budgets)
    const ensembles = list(values.ensembles, ENSEMBLES)
    const columns = list(values.columns, COLUMNS)
    const profileText = values['latency-profile']
    const profile = profileText === undefined ? undefined : parseLatencyProfile(profileText)
    made = makeOutDir(out)
    const data = readLabeledCsv(values.data, values.label, undefined, columns)
    let config = loadConfigFile(configFile)
    if (method !== undefined) {
      // The calibration file changes what the gateway serves: written only by a run whose every flag holds.
      const fitted = await calibrate(config, data, ensembles, method, { budgets, profile, lock: { note: (message) => console.error(`warning: ${message}`) } })
      for (const [model, c] of Object.entries(fitted.models)) {
        const left = leftOut(fitted.skipped[model], fitted.unanswered[model])
        if ('temperature' in c) {
          console.log(`calibrated ${model}: temperature ${c.temperature} (mean NLL ${c.nll_before} → ${c.nll_after} on ${count(c.rows, 'row')}${left})`)
          if (fitted.unpinned.includes(model)) {
            console.error(
              `warning: ${model}'s temperature ${c.temperature} is not pinned down by its rows: an end of the range searched (${TEMPERATURE_RANGE.join(' to ')}) fits them as well ` +
                '(a model right on every row); a larger data set with rows it gets wrong fits it better',
            )
          }
        } else console.log(`calibrated ${model}: isotonic, ${count(c.isotonic.confidence.length, 'point')} (Brier ${c.brier_before} → ${c.brier_after} on ${count(c.rows, 'row')}${left})`)
      }
      for (const [model, rows] of Object.entries(fitted.skipped)) {
        if (!fitted.models[model]) console.log(nonFiniteOnly(model, rows, fitted.unanswered[model]))
      }
      for (const [model, rows] of Object.entries(fitted.unanswered)) {
        if (!fitted.models[model] && !fitted.skipped[model]) console.log(`not calibrated ${model}: it answered ${rows === 1 ? 'not its 1 row (it failed or was over the budget)' : `none of the ${rows} rows (each failed or was over the budget)`}`)
      }
      // The file watch (admin.watch_config) sees the config file, not this one.
      if (fitted.written) console.log(`wrote ${shownPath(fitted.path)} (a running server takes it on reload: SIGHUP or POST /admin/reload)`)
      else {
        const why = fitted.candidates.length === 0 ? `no member of ${fitted.ensembles.join(', ')} has a probabilities output` : 'no member gave probabilities to fit (above)'
        console.log(`nothing calibrated: ${why}; ${shownPath(fitted.path)} not written`)
      }
      // The report that follows scores the calibrated config.
      config = loadConfigFile(configFile)
    }
    const reports = await runEval(config, data, { ensembles, budgets, profile, warn: (message) => console.error(`warning: ${message}`) })
    const report: EvalReport = {
      config: shownPath(config.file),
      data: values.data,
      label: values.label,
      columns: columns ?? null,
      rows: data.rows,
      latency_profile: profileText ?? null,
      calibration: calibrationApplied(config, reports),
      ensembles: reports,
    }
    // The verdicts first: a report that cannot be written after a long run still says them.
    for (const ens of reports) for (const line of verdicts(ens)) console.log(line)
    const files = writeReportTo(out, report)
    console.log(`wrote ${files.join(', ')}`)
    return 0
  } catch (err) {
    removeDirs(made)
    if (err instanceof EvalInputError) {
      console.error(`specserve eval: ${err.message}`)
      return 2
    }
    if (err instanceof ConfigError) {
      for (const issue of err.issues) console.error(formatIssue(shownPath(err.file), issue))
      return 2
    }
    console.error((err as Error).stack ?? err)
    return 1
  }
}
