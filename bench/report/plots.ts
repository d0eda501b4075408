// Hand-written SVG plots of the raw results (no plotting dependency): throughput per
// scenario, latency percentiles vs offered load, and the straggler tail vs the budget.
import type { Summary } from '../lib/stats.ts'
import type { BenchResults, ScenarioResult } from '../lib/types.ts'

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1']
const FONT = 'font-family="system-ui, sans-serif" font-size="12"'

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const num = (v: number): string => (Math.round(v * 10) / 10).toString()

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function svg(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

interface Bar {
  label: string
  value: Summary
  /** Bars of one group share a color. */
  group: string
}

/** Horizontal bars with min–max whiskers. */
function barChart(title: string, unit: string, bars: Bar[], reference?: { value: number; label: string }): string {
  const left = 300
  const plotW = 420
  const rowH = 22
  const top = 48
  const height = top + bars.length * rowH + 40
  const max = niceMax(Math.max(...bars.map((b) => b.value.max), reference?.value ?? 0))
  const groups = [...new Set(bars.map((b) => b.group))]
  const x = (v: number): number => left + (v / max) * plotW
  const body: string[] = []
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4
    body.push(`<line x1="${num(x(v))}" y1="${top - 4}" x2="${num(x(v))}" y2="${height - 34}" stroke="#ddd"/>`)
    body.push(`<text x="${num(x(v))}" y="${height - 20}" text-anchor="middle">${Math.round(v).toLocaleString('en-US')}</text>`)
  }
  body.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle">${esc(unit)}</text>`)
  bars.forEach((b, i) => {
    const y = top + i * rowH
    body.push(`<text x="${left - 6}" y="${y + 14}" text-anchor="end">${esc(b.label)}</text>`)
    const color = COLORS[groups.indexOf(b.group) % COLORS.length] as string
    body.push(`<rect x="${left}" y="${y + 3}" width="${num(x(b.value.median) - left)}" height="${rowH - 8}" fill="${color}"/>`)
    if (b.value.values.length > 1) {
      body.push(`<line x1="${num(x(b.value.min))}" y1="${y + rowH / 2}" x2="${num(x(b.value.max))}" y2="${y + rowH / 2}" stroke="black"/>`)
    }
  })
  if (reference) {
    const rx = num(x(reference.value))
    body.push(`<line x1="${rx}" y1="${top - 4}" x2="${rx}" y2="${height - 34}" stroke="#e15759" stroke-dasharray="6 4"/>`)
    body.push(`<text x="${rx}" y="${top - 8}" text-anchor="middle" fill="#e15759">${esc(reference.label)}</text>`)
  }
  return svg(left + plotW + 40, height, title, body)
}

interface Series {
  name: string
  points: [number, number][]
  dashed?: boolean
}

/** Lines over a numeric x axis, with an optional horizontal reference line. */
function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], reference?: { y: number; label: string }): string {
  const left = 60
  const top = 40
  const w = 520
  const h = 280
  const xs = series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).concat(reference ? [reference.y] : [])
  const xMax = niceMax(Math.max(...xs))
  const yMax = niceMax(Math.max(...ys))
  const x = (v: number): number => left + (v / xMax) * w
  const y = (v: number): number => top + h - (v / yMax) * h
  const body: string[] = []
  for (let i = 0; i <= 4; i++) {
    const vy = (yMax * i) / 4
    const vx = (xMax * i) / 4
    body.push(`<line x1="${left}" y1="${num(y(vy))}" x2="${left + w}" y2="${num(y(vy))}" stroke="#ddd"/>`)
    body.push(`<text x="${left - 6}" y="${num(y(vy) + 4)}" text-anchor="end">${num(vy)}</text>`)
    body.push(`<text x="${num(x(vx))}" y="${top + h + 16}" text-anchor="middle">${Math.round(vx).toLocaleString('en-US')}</text>`)
  }
  body.push(`<text x="${left + w / 2}" y="${top + h + 34}" text-anchor="middle">${esc(xLabel)}</text>`)
  body.push(`<text transform="translate(14 ${top + h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`)
  if (reference) {
    body.push(`<line x1="${left}" y1="${num(y(reference.y))}" x2="${left + w}" y2="${num(y(reference.y))}" stroke="#e15759" stroke-dasharray="6 4"/>`)
    body.push(`<text x="${left + w - 4}" y="${num(y(reference.y) - 4)}" text-anchor="end" fill="#e15759">${esc(reference.label)}</text>`)
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string
    const pts = [...s.points].sort((a, b) => a[0] - b[0]).map(([px, py]) => `${num(x(px))},${num(y(py))}`)
    body.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`)
    for (const p of pts) body.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`)
    body.push(`<rect x="${left + w + 12}" y="${top + i * 18}" width="12" height="3" fill="${color}"/>`)
    body.push(`<text x="${left + w + 28}" y="${top + i * 18 + 5}">${esc(s.name)}</text>`)
  })
  return svg(left + w + 180, top + h + 44, title, body)
}

const find = (r: BenchResults, id: string): ScenarioResult | undefined => r.scenarios.find((s) => s.id === id && s.status === 'ok')

function throughputPlot(r: BenchResults): string | null {
  const bars: Bar[] = []
  for (const s of r.scenarios) {
    if (s.status !== 'ok') continue
    for (const v of s.variants) {
      const rps = v.metrics.rps
      if (rps && !v.metrics.offered) bars.push({ label: `${s.title.split('.')[0]}. ${v.name}`, value: rps, group: s.id })
    }
  }
  return bars.length ? barChart('Max throughput per scenario (closed loop, median, min–max whiskers)', 'req/s (2xx)', bars) : null
}

function latencyPlot(r: BenchResults): string | null {
  const s = find(r, 'overhead')
  if (!s) return null
  const series: Series[] = []
  for (const who of ['baseline', 'specserve']) {
    const rows = s.variants.filter((v) => v.name.startsWith(`${who} @`))
    for (const [metric, label] of [['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']] as const) {
      const points = rows.flatMap((v) => (v.metrics.offered && v.metrics[metric] ? [[v.metrics.offered.median, (v.metrics[metric] as Summary).median] as [number, number]] : []))
      if (points.length) series.push({ name: `${who} ${label}`, points, dashed: who === 'baseline' })
    }
  }
  return series.length ? lineChart('Latency vs offered load (open loop, scenario 1)', 'offered req/s', 'ms', series) : null
}

function stragglerPlot(r: BenchResults): string | null {
  const s = find(r, 'stragglers')
  if (!s) return null
  const bars: Bar[] = []
  for (const v of s.variants) {
    for (const [metric, label] of [['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']] as const) {
      const value = v.metrics[metric]
      if (value) bars.push({ label: `${v.name} ${label}`, value, group: v.name })
    }
  }
  return bars.length ? barChart('Stragglers: client-side latency, budget 20 ms', 'ms', bars, { value: 22, label: 'budget + 2 ms' }) : null
}

const PLOTS: [string, string, (r: BenchResults) => string | null][] = [
  ['throughput.svg', 'Max throughput per scenario', throughputPlot],
  ['latency-vs-load.svg', 'Latency percentiles vs offered load', latencyPlot],
  ['stragglers.svg', 'Straggler latency vs the budget', stragglerPlot],
]

/** [file, svg] for every plot the results have data for. */
export function renderPlots(r: BenchResults): [string, string][] {
  return PLOTS.flatMap(([file, , render]) => {
    const out = render(r)
    return out ? [[file, out] as [string, string]] : []
  })
}

/** [file, title] of the plots renderPlots writes, for the markdown. */
export function plotFiles(r: BenchResults): [string, string][] {
  return PLOTS.filter(([, , render]) => render(r) !== null).map(([file, title]) => [file, title])
}
