// How each metric key of the raw results is labelled and formatted in the report.
import type { Summary } from '../lib/stats.ts'

type Format = (v: number) => string

const int: Format = (v) => Math.round(v).toLocaleString('en-US')
const ms: Format = (v) => (Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1))
const signedMs: Format = (v) => `${v >= 0 ? '+' : '−'}${ms(Math.abs(v))}`
const pct: Format = (v) => `${(v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1)}%`
const ratio: Format = (v) => `${v.toFixed(2)}×`

export const METRICS: Readonly<Record<string, { label: string; format: Format }>> = {
  offered: { label: 'offered req/s', format: int },
  sent: { label: 'sent req/s', format: int },
  rps: { label: 'req/s (2xx)', format: int },
  p50: { label: 'p50 ms', format: ms },
  p99: { label: 'p99 ms', format: ms },
  p999: { label: 'p99.9 ms', format: ms },
  p99_send: { label: 'p99 ms from send', format: ms },
  p99_503: { label: '503 p99 ms', format: ms },
  p99_503_send: { label: '503 p99 ms from send', format: ms },
  p50_added: { label: 'p50 added ms', format: signedMs },
  p99_added: { label: 'p99 added ms', format: signedMs },
  slice_p99_added: { label: 'p99 added, median slice ms', format: signedMs },
  worst_slice_p99: { label: 'worst slice p99 ms', format: ms },
  empty_slices: { label: 'slices without a 2xx', format: int },
  worst_slice_loop_busy: { label: 'worst slice: event loop busy', format: pct },
  worst_slice_loop_delay: { label: 'worst slice: event loop delay ms', format: ms },
  worst_slice_loop_cpu: { label: 'worst slice: loop on CPU in its delay', format: pct },
  worst_slice_gc: { label: 'worst slice: GC ms', format: ms },
  worst_slice_gc_long: { label: 'worst slice: GC pauses over 10 ms', format: int },
  worst_slice_probe: { label: 'worst slice: idle thread waited ms', format: ms },
  worst_slice_steal: { label: 'worst slice: steal ms', format: ms },
  p50_over_hop: { label: 'p50 added over a bare hop ms', format: signedMs },
  miss: { label: 'deadline misses (client)', format: pct },
  miss_server: { label: 'misses (elapsed_ms)', format: pct },
  fallback: { label: 'answered by fallback', format: pct },
  failed: { label: 'non-2xx or failed', format: pct },
  shed: { label: 'shed (503)', format: pct },
  late_504: { label: '504', format: pct },
  other_failures: { label: 'other failures', format: pct },
  rps_ratio: { label: 'req/s ratio', format: ratio },
  cpu_us: { label: 'CPU µs per request', format: (v) => v.toFixed(1) },
  loop_cpu_us: { label: 'event loop CPU µs per request', format: (v) => v.toFixed(1) },
  other_cpu_us: { label: 'other threads CPU µs per request', format: (v) => v.toFixed(1) },
  gateway_cpu_us: { label: 'gateway CPU µs per request', format: (v) => v.toFixed(1) },
  broker_cpu_us: { label: 'broker CPU µs per request', format: (v) => v.toFixed(1) },
  broker_record_us: { label: 'broker CPU µs per record over idle', format: (v) => v.toFixed(1) },
  of_ceiling: { label: "req/s / the load generator's ceiling", format: ratio },
  box_idle: { label: 'box idle', format: pct },
  rps_vs_seldon: { label: 'req/s vs seldon-core', format: ratio },
  vs_grpc_open: { label: 'req/s vs gRPC plaintext open', format: ratio },
  p99_ratio: { label: 'p99 ratio', format: ratio },
  goodput_ratio: { label: '2xx/s ratio', format: ratio },
  miss_gateway: { label: 'misses (gateway clock)', format: pct },
  mean_batch: { label: 'requests per run', format: (v) => v.toFixed(1) },
  rss_settled_mb: { label: 'RSS once warm MB', format: int },
  rss_end_mb: { label: 'RSS at end MB', format: int },
  rss_max_mb: { label: 'RSS max MB', format: int },
  rss_growth: { label: 'RSS end / warm', format: ratio },
  healthz_p99: { label: '/healthz p99 ms', format: ms },
  failed_requests: { label: 'failed requests', format: int },
  swaps: { label: 'versions swapped in', format: int },
  swaps_failed: { label: 'uploads not swapped in', format: int },
  publish_to_serving_ms: { label: 'publish → serving ms', format: ms },
}

export function formatValue(metric: string, v: number): string {
  return (METRICS[metric]?.format ?? ms)(v)
}

/** A value with its unit, for prose (table headers carry the unit instead). */
export function formatWithUnit(metric: string, v: number): string {
  return `${formatValue(metric, v)}${METRICS[metric]?.label.endsWith(' ms') ? ' ms' : ''}`
}

/** "median (min–max)"; just the median when there was one repetition or no spread. */
export function formatSummary(metric: string, s: Summary | null | undefined): string {
  if (!s) return '–'
  const median = formatValue(metric, s.median)
  if (s.values.length < 2) return median
  return `${median} (${formatValue(metric, s.min)}–${formatValue(metric, s.max)})`
}
