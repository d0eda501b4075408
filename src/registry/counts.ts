// What the registry counts per repository model, for /metrics.
import type { MetricsSink } from '../types.ts'

export const EVENTS = ['served', 'rejected', 'rolled_back', 'canary_started', 'canary_promoted', 'canary_rolled_back'] as const
export type RegistryEvent = (typeof EVENTS)[number]

export class RegistryCounts {
  private readonly counts = new Map<string, Record<RegistryEvent, number>>()

  count(model: string, event: RegistryEvent): void {
    let counts = this.counts.get(model)
    if (!counts) this.counts.set(model, (counts = Object.fromEntries(EVENTS.map((e) => [e, 0])) as Record<RegistryEvent, number>))
    counts[event]++
  }

  /** The serving version of each model, and every event count. */
  collect(out: MetricsSink, serving: readonly (readonly [model: string, version: number | undefined])[]): void {
    out.gauge('specserve_model_serving_version', 'Version of a repository model that serves.', serving.map(([model, version]) => [{ model }, version ?? 0]))
    out.counter(
      'specserve_model_version_events',
      'Repository model versions served (swapped in), rejected (load, siblings, outputs the ensembles declare, gate or canary failed), rolled back to, and canary rollouts started, promoted and rolled back.',
      serving.flatMap(([model]) => EVENTS.map((event) => [{ model, event }, this.counts.get(model)?.[event] ?? 0] as const)),
    )
  }
}
