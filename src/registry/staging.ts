// What a reload prepared on a ready gateway sets aside until the gateway swaps it in or drops
// it: the repository models it adds (opened, a seed imported) and the gate reports it writes
// for models the registry already tracks. A refused reload, or a trial, leaves the registry
// and the repository as they were; only the versions a swap or trial judges (its pin) keep
// their gate report whatever the outcome, since that report is the registry's verdict on them.
import type { VersionPin } from '../reload/version-source.ts'
import type { GateReport } from './store.ts'
import type { ModelVersions } from './versions.ts'

export class ReloadStaging {
  /** Repository models this reload opened: the registry's own only once it is swapped in. */
  readonly added = new Map<string, ModelVersions>()
  private readonly pin: ReadonlyMap<string, VersionPin> | undefined
  private readonly reports: { readonly versions: ModelVersions; readonly version: number; readonly report: GateReport }[] = []

  constructor(pin: ReadonlyMap<string, VersionPin> | undefined) {
    this.pin = pin
  }

  /** Records a gate report: at once for a version this reload judges (pinned, or added by it), else once it is swapped in. */
  gated(versions: ModelVersions, version: number, report: GateReport): void {
    if (this.pin?.has(versions.name) || this.added.get(versions.name) === versions) versions.update(version, { gate: report })
    else this.reports.push({ versions, version, report })
  }

  /** Swapped in: the reports set aside are written (a write that fails goes to `failed`; the rest are still written). */
  commit(failed: (err: unknown, model: string, version: number) => void): void {
    for (const { versions, version, report } of this.reports) {
      try {
        versions.update(version, { gate: report })
      } catch (err) {
        failed(err, versions.name, version)
      }
    }
  }

  /** Not swapped in: what the added models wrote to the repository is taken away again. */
  discard(): void {
    for (const versions of this.added.values()) versions.discard()
  }
}
