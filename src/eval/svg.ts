// Small SVG line charts for eval reports: one panel per measure, budget on the x axis, one
// line per target (the ensemble drawn thick, its members thin). No dependency, no script.
import type { EnsembleReport, TargetResult } from './run.ts'

interface Panel {
  readonly title: string
  readonly value: (r: TargetResult) => number
}

const WIDTH = 260
const HEIGHT = 190
const PAD = { left: 46, right: 12, top: 28, bottom: 34 }
const COLORS = ['#1f4e9c', '#d1495b', '#edae49', '#00798c', '#66a182', '#8d6a9f', '#2e4057']

const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3).replace(/0+$/, '').replace(/\.$/, ''))

/** The report's plot for one ensemble: accuracy (or MAE), p50 and p99 latency, deadline misses, members started. */
export function ensembleSvg(report: EnsembleReport): string {
  const panels: Panel[] = [
    { title: report.metric === 'accuracy' ? 'accuracy' : 'MAE (lower is better)', value: (r) => r.score },
    { title: 'p50 latency (ms)', value: (r) => r.p50_ms },
    { title: 'p99 latency (ms)', value: (r) => r.p99_ms },
    { title: 'deadline misses', value: (r) => r.misses },
    { title: 'members started / request', value: (r) => r.members_started },
  ]
  // A target is its kind and name: a member may have its ensemble's name.
  const targets = [...new Map(report.results.map((r) => [`${r.kind}:${r.target}`, { kind: r.kind, target: r.target }])).values()]
  const budgets = [...new Set(report.results.map((r) => r.budget_ms))].sort((a, b) => a - b)
  const legendHeight = 18 * Math.ceil(targets.length / 3) + 8
  const width = WIDTH * panels.length
  const height = HEIGHT + legendHeight + 24
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">${esc(`${report.ensemble} (${report.strategy}) vs each member alone, by budget (ms)`)}</text>`,
  ]
  panels.forEach((panel, p) => parts.push(panelSvg(panel, report.results, targets, budgets, p * WIDTH, 24)))
  targets.forEach(({ kind, target }, t) => {
    const x = 10 + (t % 3) * 260
    const y = HEIGHT + 40 + Math.floor(t / 3) * 18
    parts.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 24}" y2="${y - 4}" stroke="${COLORS[t % COLORS.length]}" stroke-width="${kind === 'ensemble' ? 3 : 1.5}"/>`)
    parts.push(`<text x="${x + 30}" y="${y}">${esc(kind === 'ensemble' ? `${target} (ensemble)` : target)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

interface Target {
  readonly kind: TargetResult['kind']
  readonly target: string
}

function panelSvg(panel: Panel, results: readonly TargetResult[], targets: readonly Target[], budgets: readonly number[], x0: number, y0: number): string {
  const values = results.map(panel.value).filter(Number.isFinite)
  // Accuracy zooms in on its range (differences are a point or two); the rest start at 0.
  const lo = panel.title === 'accuracy' && values.length > 0 ? Math.max(0, Math.min(...values) - 0.01) : 0
  let hi = values.length > 0 ? Math.max(...values) : 1
  if (hi - lo < 1e-9) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1)
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = HEIGHT - PAD.top - PAD.bottom
  const sx = (b: number): number => x0 + PAD.left + (budgets.length === 1 ? plotW / 2 : (budgets.indexOf(b) / (budgets.length - 1)) * plotW)
  const sy = (v: number): number => y0 + PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH
  const out: string[] = [
    `<text x="${x0 + PAD.left}" y="${y0 + 16}" font-weight="bold">${esc(panel.title)}</text>`,
    `<rect x="${x0 + PAD.left}" y="${y0 + PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#bbb"/>`,
    `<text x="${x0 + PAD.left - 4}" y="${y0 + PAD.top + 4}" text-anchor="end">${fmt(hi)}</text>`,
    `<text x="${x0 + PAD.left - 4}" y="${y0 + PAD.top + plotH}" text-anchor="end">${fmt(lo)}</text>`,
  ]
  for (const b of budgets) out.push(`<text x="${sx(b)}" y="${y0 + PAD.top + plotH + 14}" text-anchor="middle">${fmt(b)}</text>`)
  targets.forEach(({ kind, target }, t) => {
    const color = COLORS[t % COLORS.length]!
    const thick = kind === 'ensemble'
    const points = budgets.flatMap((b) => {
      const r = results.find((x) => x.kind === kind && x.target === target && x.budget_ms === b)
      const v = r === undefined ? Number.NaN : panel.value(r)
      return Number.isFinite(v) ? [`${sx(b).toFixed(1)},${sy(v).toFixed(1)}`] : []
    })
    if (points.length > 1) out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="${thick ? 3 : 1.5}"/>`)
    for (const pt of points) {
      const [cx, cy] = pt.split(',')
      out.push(`<circle cx="${cx}" cy="${cy}" r="${thick ? 3.5 : 2.5}" fill="${color}"/>`)
    }
  })
  return out.join('\n')
}
