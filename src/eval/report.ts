// The eval report: report.json (every figure), report.md (a table per ensemble and a
// verdict: does it beat its best member at each budget, and at what cost) and one SVG
// plot per ensemble.
import { join } from 'node:path'
import { writeAllAtomically, WrittenNotSynced } from '../durable.ts'
import type { EnsembleReport, TargetResult } from './run.ts'
import { count } from '../plural.ts'
import { ensembleSvg } from './svg.ts'

export interface EvalReport {
  readonly config: string
  readonly data: string
  readonly label: string
  /** The feature columns --columns named, in the order fed; null (or absent): every column but the label, in file order. */
  readonly columns?: readonly string[] | null
  readonly rows: number
  readonly latency_profile: string | null
  /** The calibration file the config applied (`<config>.calibration.json`) and the evaluated members it calibrates; null without one. */
  readonly calibration?: { readonly file: string; readonly models: readonly string[] } | null
  readonly ensembles: readonly EnsembleReport[]
}

const pct = (v: number): string => (Number.isFinite(v) ? (v * 100).toFixed(1) : 'n/a')
const num = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a')
const score = (report: EnsembleReport, v: number): string => (report.metric === 'accuracy' ? pct(v) : num(v))
/**
 * Better score first: higher accuracy, lower MAE; a target that answered no row last, for either
 * metric (its accuracy is 0 of nothing, which would tie with every row answered wrong).
 */
const better = (report: EnsembleReport) => {
  const rank = (r: TargetResult): number => (r.answered === 0 || !Number.isFinite(r.score) ? Infinity : report.metric === 'accuracy' ? -r.score : r.score)
  return (a: TargetResult, b: TargetResult): number => rank(a) - rank(b) || 0
}

/** The best member alone at a budget (ties to the earlier member). */
export function bestMember(report: EnsembleReport, budget: number): TargetResult | undefined {
  return report.results.filter((r) => r.kind === 'member' && r.budget_ms === budget).sort(better(report))[0]
}

/** Why a target answered no row: all missed or failed, or the counts when some abstained or answered no finite number. */
function unanswered(r: TargetResult): string {
  // A report.json written before these counts has none.
  const abstained = r.abstained ?? 0
  const nonFinite = r.non_finite ?? 0
  if (abstained + nonFinite === 0) return 'all missed or failed'
  const counts: [number, string][] = [[r.misses, 'missed'], [r.failed, 'failed'], [abstained, 'abstained'], [nonFinite, 'not finite']]
  return counts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`).join(', ')
}

/**
 * A name as Markdown text: the characters Markdown or HTML would read as markup (`|` ending
 * a table cell, `*` and `_` emphasis, `<b>` a tag, `&amp;` an entity, `[` a link) escaped
 * with a backslash, which CommonMark and GitHub tables read as the character itself.
 */
export const markdownText = (text: string): string => text.replace(/[\\`*_[\]<>|&~]/g, '\\$&')

/** A code span holding `text` as it is: fenced by more backticks than any run in it (and padded where it starts or ends with one). */
export function markdownCode(text: string): string {
  const fence = '`'.repeat(Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length)) + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

/** One line per budget: the ensemble against its best member, in points of accuracy (or MAE); `name` shows a target's name (markdownText in report.md). */
export function verdicts(report: EnsembleReport, name: (target: string) => string = (target) => target): string[] {
  const budgets = [...new Set(report.results.map((r) => r.budget_ms))]
  return budgets.map((budget) => {
    const ens = report.results.find((r) => r.kind === 'ensemble' && r.budget_ms === budget)!
    const best = bestMember(report, budget)!
    const cost = `starting ${num(ens.members_started)} of ${count(ens.members, 'member')} per request; misses ${ens.misses} vs ${best.misses}`
    // A target that answered no row has no score to compare (an MAE of nothing): said as such.
    if (ens.answered === 0) {
      const member = best.answered === 0 ? 'nor any member alone' : `its best member ${name(best.target)} (${score(report, best.score)})`
      return `${budget} ms: ${name(report.ensemble)} no answers (${unanswered(ens)}), ${member}, ${cost}`
    }
    if (best.answered === 0) return `${budget} ms: ${name(report.ensemble)} ${score(report, ens.score)}, no member alone answered (${unanswered(best)}), ${cost}`
    const diff = report.metric === 'accuracy' ? (ens.score - best.score) * 100 : best.score - ens.score
    const unit = report.metric === 'accuracy' ? 'points' : 'MAE'
    // Within what the report shows (2 decimals), it is a match.
    const shown = num(Math.abs(diff))
    const word = shown === num(0) ? 'matches' : diff > 0 ? `beats by ${shown} ${unit}` : `trails by ${shown} ${unit}`
    return `${budget} ms: ${name(report.ensemble)} ${score(report, ens.score)} ${word} its best member ${name(best.target)} (${score(report, best.score)}), ${cost}`
  })
}

export function markdown(report: EvalReport): string {
  const lines: string[] = [
    `# specserve eval`,
    '',
    `Config ${markdownCode(report.config)}, data ${markdownCode(report.data)} (${count(report.rows, 'row')}, label ${markdownCode(report.label)})` +
      (report.columns ? `, feature columns ${markdownCode(report.columns.join(','))}` : '') +
      (report.latency_profile ? `, latency profile ${markdownCode(report.latency_profile)}` : '') +
      (report.calibration ? `, calibration ${markdownCode(report.calibration.file)} (${report.calibration.models.map(markdownText).join(', ') || 'no member evaluated'})` : '') +
      '. Each ensemble and each of its members alone, through the real predict path, one request at a time.',
    '',
  ]
  const plots = svgNames(report.ensembles)
  report.ensembles.forEach((ens, i) => {
    const metric = ens.metric === 'accuracy' ? 'accuracy %' : 'MAE'
    lines.push(`## ${markdownText(ens.ensemble)} (${ens.strategy}, ${ens.task})`, '')
    lines.push(`| budget ms | target | ${metric} | answered | misses | failed | abstained / non-finite | p50 ms | p99 ms | members started |`)
    lines.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of ens.results) {
      const name = r.kind === 'ensemble' ? `**${markdownText(r.target)}** (ensemble)` : markdownText(r.target)
      lines.push(`| ${r.budget_ms} | ${name} | ${score(ens, r.score)} | ${r.answered} | ${r.misses} | ${r.failed} | ${r.abstained} / ${r.non_finite} | ${num(r.p50_ms)} | ${num(r.p99_ms)} | ${num(r.members_started)} / ${r.members} |`)
    }
    lines.push('', ...verdicts(ens, markdownText).map((v) => `- ${v}`), '', `![${markdownText(ens.ensemble)}](${encodeURI(plots[i]!)})`, '')
  })
  return lines.join('\n')
}

/**
 * Each ensemble's plot file: its name with what a file name cannot hold as `_`, and `-2`, `-3`…
 * after a name another ensemble's took (`fraud v2` and `fraud/v2`; compared ignoring case, as
 * macOS and Windows file systems do), so no plot overwrites another.
 */
export function svgNames(ensembles: readonly EnsembleReport[]): string[] {
  const taken = new Set<string>()
  return ensembles.map((ens) => {
    const base = ens.ensemble.replace(/[^\w.-]/g, '_')
    let name = `${base}.svg`
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}.svg`
    taken.add(name.toLowerCase())
    return name
  })
}

/**
 * Writes report.json, report.md and the SVG plots into the directory `dir` (eval's CLI made it
 * before the run); returns the files written. All or none, as far as a file system allows
 * (writeAllAtomically): a name taken by something not a file (a directory, or a link to one) is
 * refused before anything is written; a link is written through, and stays a link; a failure
 * removes the temporary files and leaves an earlier run's files as they were.
 */
export function writeReport(dir: string, report: EvalReport): string[] {
  const plots = svgNames(report.ensembles)
  const contents: [string, string][] = [
    ['report.json', JSON.stringify(report, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n'],
    ['report.md', markdown(report)],
    ...report.ensembles.map((ens, i): [string, string] => [plots[i]!, ensembleSvg(ens)]),
  ]
  const files = contents.map(([name, text]): [string, string] => [join(dir, name), text])
  try {
    writeAllAtomically(files)
  } catch (err) {
    // Written and in place (what a reader sees), only not synced.
    if (!(err instanceof WrittenNotSynced)) throw err
  }
  return files.map(([file]) => file)
}
