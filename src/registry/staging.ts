// What a reload, swap or trial sets aside until the gateway swaps it in or drops it: the
// repository models it adds (opened, a seed imported) and the gate reports it writes. A
// refused reload, or a trial, leaves the registry as it was and takes back what it added to
// the repository. Only a version a swap or trial judges (pinned, and not the one serving)
// keeps its gate report whatever the outcome: that report is the registry's verdict on it.
import type { VersionPin } from '../reload/version-source.ts'
import type { GateReport } from './version-meta.ts'
import type { ModelVersions } from './versions.ts'

export class ReloadStaging {
  /** Repository models this reload opened: the registry's own only once it is swapped in. */
  readonly added = new Map<string, ModelVersions>()
  private readonly pin: ReadonlyMap<string, VersionPin> | undefined
  private readonly reports: { readonly versions: ModelVersions; readonly version: number; readonly report: GateReport }[] = []
  /** Resolves once the gateway committed or discarded it: an arrival for a model it adds waits for that. */
  readonly settled: Promise<void>
  private settle!: () => void

  constructor(pin: ReadonlyMap<string, VersionPin> | undefined) {
    this.pin = pin
    this.settled = new Promise((resolve) => (this.settle = resolve))
  }

  /**
   * Records a gate report: at once for a version this swap or trial judges, else once it is
   * swapped in. The version serving is not judged (a canary's end reloads it pinned): a refused
   * reload leaves the report of the gate that let it serve.
   */
  gated(versions: ModelVersions, version: number, report: GateReport): void {
    if (this.pin?.has(versions.name) && version !== versions.serving) versions.update(version, { gate: report })
    else this.reports.push({ versions, version, report })
  }

  /** Swapped in: the reports set aside are written (a write that fails goes to `failed`; the rest are still written). */
  commit(failed: (err: unknown, model: string | undefined) => void): void {
    for (const { versions, version, report } of this.reports) {
      try {
        versions.update(version, { gate: report })
      } catch (err) {
        failed(err, versions.name)
      }
    }
    this.settle()
  }

  /** Not swapped in: what the added models wrote to the repository is taken away again (each tried, failures to `failed`). */
  discard(failed: (err: unknown, model: string | undefined) => void): void {
    for (const versions of this.added.values()) {
      try {
        versions.discard()
      } catch (err) {
        failed(err, versions.name)
      }
    }
    this.settle()
  }
}
