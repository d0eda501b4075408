// A registry swap (a reload pinned to versions) resolved against the config being served
// when its turn comes: a version that config's version_policy excludes is not served (a
// config reload narrowed the policy after the version was judged), and neither is a model
// that config no longer serves from the repository (a reload dropped it meanwhile).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repositorySettings, resolveVersions } from '../../src/registry/resolve.ts'
import { ModelVersions } from '../../src/registry/versions.ts'
import { configFrom, issuesThrownBy } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const configWith = (policy: string) =>
  configFrom(`repository: { path: ${tempDir('specserve-resolve-')}, watch: false }
models:
  m: { kind: onnx, source: repository, version_policy: ${policy} }
ensembles:
  e: { strategy: deadline-fallback, models: [m] }
`)

function resolveWith(policy: string, pin: Map<string, number>): () => unknown {
  const config = configWith(policy)
  const model = config.models.get('m')!
  const versions = new ModelVersions(join(config.repository!.path), 'm', repositorySettings(model)!)
  versions.open(() => undefined)
  return () => resolveVersions(config, pin, () => versions, () => {})
}

const issues = (resolve: () => unknown): string[] => issuesThrownBy(resolve).map((i) => `${i.path}: ${i.message}`)

describe('a pinned swap', () => {
  it('of a version the served config\'s version_policy excludes is refused, saying so', () => {
    expect(issues(resolveWith('{ specific: [1] }', new Map([['m', 2]])))).toEqual(['models.m.version_policy: version 2 is not in version_policy.specific'])
    expect(issues(resolveWith('{ specific: [1, 2] }', new Map([['m', 2]])))).toEqual([])
    expect(issues(resolveWith('latest', new Map([['m', 2]])))).toEqual([])
  })

  it('of a model the served config does not serve from the repository is refused, not a swap of nothing', () => {
    expect(issues(resolveWith('latest', new Map([['gone', 3]])))).toEqual(['models.gone: is no longer a source: repository model of the config being served'])
  })
})
