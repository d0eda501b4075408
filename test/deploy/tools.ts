// What the deploy tests share: the provisioned checkers (scripts/deploy-tools.sh), kustomize
// rendering, and loading a gateway config written for the image (paths under /app).
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { parseConfig, type GatewayConfig } from '../../src/config/load.ts'
import { root } from '../helpers.ts'

export const deploy = join(root, 'deploy')

export type Doc = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are free-form YAML

/** The path of a provisioned tool (built or installed into the cache on first use). */
export const tool = (name: string): string =>
  execFileSync(join(root, 'scripts', 'deploy-tools.sh'), [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()

/** What `kubectl apply -k dir` would apply, as parsed documents. */
export const render = (kustomize: string, dir: string): Doc[] => renderText(kustomize, dir).split(/^---$/m).map((text) => parse(text) as Doc).filter(Boolean)

export const renderText = (kustomize: string, dir: string): string => execFileSync(kustomize, ['build', dir], { encoding: 'utf8' })

/** What `kubectl apply -k dir` would apply, written to `work/<file>` and validated there strictly against the Kubernetes 1.37 schemas: the validator's exit status and output. */
export function validateRendered(kustomize: string, dir: string, work: string, file: string): { status: number | null; output: string } {
  writeFileSync(join(work, file), renderText(kustomize, dir))
  const run = spawnSync(tool('kubernetes-validate'), ['--kubernetes-version', '1.37.0', '--strict', file], { cwd: work, encoding: 'utf8' })
  return { status: run.status, output: run.stdout + run.stderr }
}

/** A gateway config from deploy/, its image paths (/app/models/..., /app/examples/...) mapped onto this checkout. */
export function imageConfig(text: string): GatewayConfig {
  return parseConfig(imageText(text), join(deploy, 'specserve.yaml'))
}

/** A config's text with the image's paths mapped onto this checkout. */
export const imageText = (text: string): string => text.replaceAll('/app/models/', `${join(root, 'models')}/`).replaceAll('/app/examples/', `${join(root, 'examples')}/`)
