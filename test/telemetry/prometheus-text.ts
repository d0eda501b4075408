// Parses /metrics with the parser the Prometheus server itself scrapes with (Go's
// expfmt, built by scripts/promparse.sh), and also with parse-prometheus-text-format
// (a port of the Python client's parser) as a second, independent grammar check. The npm
// parser alone is not enough: it drops the labels, count and sum of a histogram whose
// _count/_sum lines come before its buckets, as the OTel exporter writes them.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { root } from '../helpers.ts'

export interface Sample {
  readonly labels: Record<string, string>
  readonly value?: number
  readonly count?: number
  readonly sum?: number
  readonly buckets?: { le: string; count: number }[]
}

export interface Family {
  readonly name: string
  readonly help: string
  readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  readonly samples: readonly Sample[]
}

const pythonGrammar = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => unknown[]

let binary: string | undefined
/** Builds the Go parser once per test process (a no-op with a warm cache). */
export function promparse(): string {
  binary ??= execFileSync(join(root, 'scripts', 'promparse.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
  return binary
}

/**
 * The text with each unlabelled histogram's _count and _sum lines moved after its buckets, for
 * parse-prometheus-text-format: it crashes on one written the OTel exporter's way, _count and
 * _sum first (its flattenMetrics starts the family without a buckets map, then sets a bucket in
 * it). Labelled histograms it reads either way; the Go parser gets the text as written.
 */
const bucketsFirst = (text: string): string =>
  text.replace(/^([a-zA-Z_:][\w:]*)_count (\S+)\n\1_sum (\S+)\n((?:\1_bucket\{[^\n]*\n)+)/gm, '$4$1_count $2\n$1_sum $3\n')

/** Throws with the parser's message when the text is not valid exposition format. */
export function parseExposition(text: string): Map<string, Family> {
  pythonGrammar(bucketsFirst(text))
  const json = execFileSync(promparse(), { input: text, encoding: 'utf8' })
  return new Map((JSON.parse(json) as Family[]).map((f) => [f.name, f]))
}

/** The one sample of `family` whose labels include `labels`. */
export function sample(families: Map<string, Family>, family: string, labels: Record<string, string> = {}): Sample {
  const f = families.get(family)
  if (!f) throw new Error(`no metric family ${family} (have: ${[...families.keys()].join(', ')})`)
  const found = f.samples.filter((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v))
  if (found.length !== 1) throw new Error(`${found.length} samples of ${family} match ${JSON.stringify(labels)}`)
  return found[0]!
}
