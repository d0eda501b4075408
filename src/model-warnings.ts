// What loading a model deserves a word about: a remote model whose upstream did not answer,
// a slow model pinned inline. Said by serve at start, by validate at the YAML line, and by a
// reload for the models it loaded (its answer's `warnings` and the log).
import type { Gateway } from './gateway.ts'

export interface ModelWarning {
  readonly model: string
  /** The config path it is about (models.<name>.url, models.<name>.placement). */
  readonly path: string
  readonly message: string
}

/** The warnings of the models `names` (default: every model of the config serving). */
export function modelWarnings(gateway: Gateway, names: Iterable<string> = gateway.config.models.keys()): ModelWarning[] {
  const warnings: ModelWarning[] = []
  for (const model of names) {
    const described = gateway.model(model).executor.describe?.()
    // It loaded on the tensors the YAML declares, and its calls fail until its upstream answers
    // (a wrong URL, a server down): worth a word now rather than a first 502.
    const error = described?.metadata_error
    if (typeof error === 'string') warnings.push({ model, path: `models.${model}.url`, message: `its upstream's metadata could not be read at load (${error}): serving it on the inputs and outputs the YAML declares (its calls fail while the upstream is unreachable)` })
    const pinned = described?.placement as { warning?: string } | null | undefined
    if (pinned?.warning) warnings.push({ model, path: `models.${model}.placement`, message: pinned.warning })
  }
  return warnings
}
