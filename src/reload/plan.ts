// What a reload changes. A model whose entry (and file) is unchanged keeps its executor,
// its loaded sessions and its stats: re-creating an onnxruntime session leaks memory, and
// a reload should not reset counters nobody asked to reset. Everything else is new.
import type { Calibration } from '../config/calibration.ts'
import type { GatewayConfig, ModelConfig } from '../config/load.ts'
import { getExecutorKind } from '../executors/registry.ts'
import { stampOfSync } from '../file-stamp.ts'

/**
 * Identity of a model entry: its kind and settings, where relative paths resolve, and the
 * stamp (src/file-stamp.ts) of each file its kind says it reads (the model file; a remote model's TLS
 * files, so a rotated certificate gets a fresh connection).
 */
export function modelFingerprint(model: ModelConfig, baseDir: string): string {
  const files = getExecutorKind(model.kind)?.files?.(model.spec as never) ?? []
  const canary = model.canary ? (getExecutorKind(model.kind)?.files?.(model.canary.spec as never) ?? []).map(stampOfFile) : null
  return JSON.stringify([modelEntry(model, baseDir), files.map(stampOfFile), canary])
}

/** The fingerprint's part that is the config's alone: the entry, its version (and the canary's), where paths resolve. */
const modelEntry = (model: ModelConfig, baseDir: string): string => JSON.stringify([model.kind, model.version, baseDir, model.entry, model.canary?.version ?? null])

const stampOfFile = (file: string): string => stampOfSync(file) ?? 'unreadable'

export interface Reusable {
  readonly model: ModelConfig
  readonly fingerprint: string
}

export interface ModelPlan<R extends Reusable> {
  /** The new config's models: reused runtimes and fresh ones. */
  readonly models: Map<string, R>
  /** Created for this config (to load; to close if the config is rejected). */
  readonly fresh: R[]
  /** Old runtimes the new config does not keep (closed once the old config's predicts are done). */
  readonly retired: R[]
}

/**
 * The new config's models, reusing what is unchanged. `only`: the models this plan is for (a
 * registry's swap or trial of those versions); any other keeps its runtime while its entry is
 * unchanged, even if its files changed on disk: a file replaced beside the config is taken
 * at the next config reload, and its failure there is never blamed on the version swapped.
 * If `create` throws part way, the runtimes it already made are handed to `discard` (they hold
 * workers or connections) and the error goes on.
 */
export function planModels<R extends Reusable>(
  previous: ReadonlyMap<string, R>,
  config: GatewayConfig,
  create: (model: ModelConfig, fingerprint: string) => R,
  discard: (created: R[]) => void,
  only?: ReadonlySet<string>,
): ModelPlan<R> {
  const models = new Map<string, R>()
  const fresh: R[] = []
  try {
    for (const model of config.models.values()) {
      const fingerprint = modelFingerprint(model, config.baseDir)
      const old = previous.get(model.name)
      if (old && (old.fingerprint === fingerprint || (only !== undefined && !only.has(model.name) && modelEntry(old.model, config.baseDir) === modelEntry(model, config.baseDir)))) {
        models.set(model.name, old)
        continue
      }
      const runtime = create(model, fingerprint)
      models.set(model.name, runtime)
      fresh.push(runtime)
    }
  } catch (err) {
    discard(fresh)
    throw err
  }
  const retired = [...previous.values()].filter((old) => models.get(old.model.name) !== old)
  return { models, fresh, retired }
}

export interface ReloadReport {
  readonly models: { readonly added: string[]; readonly changed: string[]; readonly removed: string[]; readonly kept: string[] }
  readonly ensembles: { readonly added: string[]; readonly changed: string[]; readonly removed: string[] }
  /**
   * Sections of the new config that differ from what the gateway started with and take
   * effect only on restart (ports, worker pool, telemetry, output): still listed by every
   * later reload until a restart, and no longer once the file is back to the running values.
   */
  readonly restartNeeded: string[]
  /** Models whose calibration (`<config>.calibration.json`, read with the config) this reload added, changed or removed. */
  readonly calibration: string[]
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * What a reload from `old` to `next` changed. Models and ensembles are compared with the
 * config serving until now; restart-bound sections with `started`, the config the listeners,
 * pools, telemetry and output were built from (a reload never changes those).
 */
export function describeReload<R extends Reusable>(started: GatewayConfig, old: GatewayConfig, next: GatewayConfig, before: ReadonlyMap<string, R>, plan: ModelPlan<R>): ReloadReport {
  const models = { added: [] as string[], changed: [] as string[], removed: [] as string[], kept: [] as string[] }
  for (const [name, runtime] of plan.models) {
    const was = before.get(name)
    if (!was) models.added.push(name)
    else if (was === runtime) models.kept.push(name)
    else models.changed.push(name)
  }
  for (const name of before.keys()) if (!plan.models.has(name)) models.removed.push(name)
  const ensembles = { added: [] as string[], changed: [] as string[], removed: [] as string[] }
  const replaced = new Set([...models.changed, ...models.removed])
  for (const [name, e] of next.ensembles) {
    const was = old.ensembles.get(name)
    if (!was) ensembles.added.push(name)
    else if (!same(was, e) || e.models.some((m) => replaced.has(m))) ensembles.changed.push(name)
  }
  for (const name of old.ensembles.keys()) if (!next.ensembles.has(name)) ensembles.removed.push(name)
  return { models, ensembles, restartNeeded: restartNeeded(started, next), calibration: calibrationChanges(old, next) }
}

/** The models whose calibration differs between two configs, sorted. */
function calibrationChanges(old: GatewayConfig, next: GatewayConfig): string[] {
  const key = (c: Calibration | undefined): string => (c === undefined ? '' : typeof c === 'number' ? String(c) : JSON.stringify([Array.from(c.confidence), Array.from(c.accuracy)]))
  const models = new Set([...old.calibration.keys(), ...next.calibration.keys()])
  return [...models].filter((m) => key(old.calibration.get(m)) !== key(next.calibration.get(m))).sort()
}

/** The sections of `next` bound at start that differ from what the gateway started with. */
export function restartNeeded(started: GatewayConfig, next: GatewayConfig): string[] {
  // max_in_flight applies at once (read per predict); the rest of these are bound at start.
  const { max_in_flight: _a, ...startedServer } = started.server
  const { max_in_flight: _b, ...newServer } = next.server
  const sections: string[] = []
  if (!same({ ...startedServer, instance: '' }, { ...newServer, instance: '' })) sections.push('server')
  for (const key of ['executors', 'telemetry', 'output', 'admin', 'repository'] as const) if (!same(started[key], next[key])) sections.push(key)
  // Keys, scopes and limits apply at once; turning auth on or off (a listener's hooks) needs a restart.
  if ((started.auth === null) !== (next.auth === null)) sections.push('auth')
  return sections
}
