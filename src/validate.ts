// specserve validate: a config checked as serve would load it, models included (a repository
// model's version gated, and fallen back from as at serve's start), without serving or writing
// anything (which repository version would serve is read, not chosen).
import { streamIssue } from './api/kafka/stream-issue.ts'
import { uncalibratedWarning, type BestQualityOptions } from './collectors/best-quality.ts'
import { loadConfigFile, type GatewayConfig } from './config/load.ts'
import { ConfigError, formatIssue, shownPath } from './config/yaml.ts'
import { Gateway } from './gateway.ts'
import { modelWarnings } from './model-warnings.ts'
import { count } from './plural.ts'
import { RepositoryPreview } from './registry/preview.ts'

/**
 * Prints a failed start's or check's errors and exits 1: a config's each with its line, any
 * other as `specserve: <message>` on one line (the spool another process holds, say), not a
 * stack trace.
 */
export function report(err: unknown): never {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(formatIssue(shownPath(err.file), issue))
  } else {
    console.error(`specserve: ${(err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')}`)
  }
  process.exit(1)
}

/**
 * The config `file`, loaded as serve and validate load it: its errors reported (exit 1), and
 * with `stream` (--stream), a config that cannot serve so (streamIssue) one of them.
 */
export function loadForCommand(file: string, stream: boolean): GatewayConfig {
  let config: GatewayConfig
  try {
    config = loadConfigFile(file)
  } catch (err) {
    report(err)
  }
  const streamless = stream ? streamIssue(config) : undefined
  if (streamless) report(new ConfigError(config.file, [streamless]))
  return config
}

/** `stream`: also that it can serve --stream. */
export async function validate(file: string, stream = false): Promise<void> {
  const config = loadForCommand(file, stream)
  for (const warning of config.warnings) console.error(`warning: ${formatIssue(shownPath(config.file), warning)}`)
  // Read-only: which version of each repository model would serve (opening the registry would write).
  const repository = config.repository ? new RepositoryPreview(config) : undefined
  if (repository?.issues.length) report(new ConfigError(config.file, repository.issues))
  // One worker is enough to read every model's metadata. The preview picks the versions, and
  // falls back from one that fails to load or its gate as serve's start would.
  const gateway = new Gateway({ ...config, executors: { ...config.executors, onnx_workers: 1 } }, repository && { versions: repository })
  let failure: unknown
  try {
    await gateway.load()
  } catch (err) {
    failure = err
  } finally {
    await gateway.close()
  }
  for (const warning of repository?.warnings ?? []) console.error(`warning: ${formatIssue(shownPath(config.file), warning)}`)
  for (const note of repository?.notes() ?? []) console.log(`note: ${formatIssue(shownPath(config.file), note)}`)
  if (failure !== undefined) report(failure)
  /** A warning at the YAML path's line. */
  const warnAt = (path: string, message: string): void => console.error(`warning: ${formatIssue(shownPath(config.file), config.source.issue(path, message))}`)
  for (const { path, message } of modelWarnings(gateway)) warnAt(path, message)
  for (const ens of gateway.ensembles.values()) {
    if (ens.strategyName !== 'best-quality') continue
    const shape = { name: ens.name, models: ens.config.models, outputs: ens.outputs, staticQuality: ens.models.map((m) => m.quality), calibrations: ens.config.models.map((m) => config.calibration.get(m)) }
    const families = ens.config.models.map((m) => gateway.model(m).executor.describe?.().family as string | undefined)
    const message = uncalibratedWarning(ens.config.strategy.options as BestQualityOptions, shape, families)
    if (message) warnAt(`ensembles.${ens.name}.strategy`, message)
  }
  console.log(`${file}: ok (${count(config.models.size, 'model')}, ${count(config.ensembles.size, 'ensemble')})`)
}
