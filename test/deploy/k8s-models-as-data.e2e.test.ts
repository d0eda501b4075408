// deploy/k8s/models-as-data as `kubectl apply -k` would apply it, without a cluster or a broker:
// rendered by kustomize and validated strictly against the Kubernetes schemas, the StatefulSet's
// pods checked against the base Deployment's (the same but for the repository volume), its
// volume against the config's repository, and the config served from a fresh volume as a new
// pod would (its model stream left out: test/registry's stream tests run one on a real broker).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputFailure } from '../../src/errors.ts'
import { tensorFromJson } from '../../src/tensor/index.ts'
import { silentLogger } from '../../src/types.ts'
import { samples } from '../helpers.ts'
import { serveWithRegistry } from '../registry/serve.ts'
import { deploy, imageConfig, imageText, render, tool, validateRendered, type Doc } from './tools.ts'

const overlay = join(deploy, 'k8s', 'models-as-data')
let work: string
let docs: Doc[]
let kustomize: string

const find = (kind: string, name: string): Doc => {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name)
  expect(doc, `${kind}/${name}`).toBeDefined()
  return doc!
}
const configText = (): string => find('ConfigMap', 'specserve-config').data['specserve.yaml'] as string

beforeAll(() => {
  kustomize = tool('kustomize')
  work = mkdtempSync(join(tmpdir(), 'specserve-k8s-mad-'))
  docs = render(kustomize, overlay)
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('deploy/k8s/models-as-data', () => {
  it('renders to manifests valid against the Kubernetes 1.37 schemas, strictly: a StatefulSet in the Deployment\'s place', () => {
    const run = validateRendered(kustomize, overlay, work, 'models-as-data.yaml')
    expect(run.output).not.toMatch(/ERROR|WARN/)
    expect(run.status).toBe(0)
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
      'ConfigMap/specserve-config',
      'HorizontalPodAutoscaler/specserve',
      'PodDisruptionBudget/specserve',
      'Service/specserve',
      'StatefulSet/specserve',
    ])
    expect(find('HorizontalPodAutoscaler', 'specserve').spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'specserve' })
  })

  it('runs the base Deployment\'s pods, but for the repository volume each pod has, and its workload\'s name', () => {
    const base = render(kustomize, join(deploy, 'k8s')).find((d) => d.kind === 'Deployment')!
    const set = find('StatefulSet', 'specserve')
    const pod = structuredClone(set.spec.template) as Doc
    const [container] = pod.spec.containers as Doc[]
    const mounts = container!.volumeMounts as Doc[]
    const repository = mounts.find((m) => m.name === 'repository')!
    container!.volumeMounts = mounts.filter((m) => m !== repository)
    const otel = (container!.env as Doc[]).find((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES')!
    expect(otel.value).toBe('k8s.statefulset.name=specserve')
    otel.value = 'k8s.deployment.name=specserve'
    expect(pod).toEqual(base.spec.template)
    expect(set.spec.selector).toEqual(base.spec.selector)
    expect(set.spec.serviceName).toBe(find('Service', 'specserve').metadata.name)

    // Each pod's own volume, where the config keeps its repository; each pod's name its instance.
    const [claim] = set.spec.volumeClaimTemplates as Doc[]
    expect(claim!.metadata.name).toBe(repository.name)
    expect(claim!.spec.accessModes).toEqual(['ReadWriteOnce'])
    expect((pod.spec.volumes as Doc[]).some((v) => v.name === repository.name)).toBe(false)
    const config = imageConfig(configText())
    expect(repository.mountPath).toBe(config.repository!.path)
    expect((container!.env as Doc[]).find((e) => e.name === 'SPECSERVE_INSTANCE')!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } })
    expect(config.repository!.kafka).toMatchObject({ topic: 'specserve.models', group: 'specserve-models' })
  })

  it('pulls the image the base kustomization names, whatever it is set to (the StatefulSet is the overlay\'s own resource)', () => {
    const copy = join(work, 'k8s')
    cpSync(join(deploy, 'k8s'), copy, { recursive: true, filter: (src) => !src.includes(join('secure', 'secrets')) })
    execFileSync(kustomize, ['edit', 'set', 'image', 'specserve=registry.example/team/specserve:9.9.9'], { cwd: join(copy, 'base') })
    const [container] = render(kustomize, join(copy, 'models-as-data')).find((d) => d.kind === 'StatefulSet')!.spec.template.spec.containers as Doc[]
    expect(container!.image).toBe('registry.example/team/specserve:9.9.9')
  })

  it('the config is the base one with the cancer ensemble\'s preferred model from the repository', () => {
    const base = parse((parse(readFileSync(join(deploy, 'k8s', 'base', 'configmap.yaml'), 'utf8')) as Doc).data['specserve.yaml'] as string) as Doc
    const ours = parse(configText()) as Doc
    const { repository: _repository, models: ourModels, ensembles: ourEnsembles, telemetry, ...rest } = ours
    const { models: baseModels, ensembles: baseEnsembles, telemetry: baseTelemetry, ...baseRest } = base
    expect(rest).toEqual(baseRest)
    expect(telemetry).toEqual(baseTelemetry)
    const { 'cancer-main': main, ...fixed } = ourModels as Doc
    const { 'cancer-mlp': _mlp, ...baseFixed } = baseModels as Doc
    expect(fixed).toEqual(baseFixed)
    expect(main).toMatchObject({ kind: 'onnx', source: 'repository' })
    expect(ourEnsembles.wine).toEqual(baseEnsembles.wine)
    expect(ourEnsembles.cancer).toEqual({ ...baseEnsembles.cancer, models: ['cancer-main', 'cancer-logreg'] })
  })

  it('serves a new pod\'s empty volume: version 1 imported from the image, gated, answering', async () => {
    const raw = parse(imageText(configText())) as Doc
    delete raw.repository.kafka // no broker here
    raw.repository.path = join(work, 'repository')
    raw.executors.onnx_workers = 1
    const file = join(work, 'specserve.yaml')
    writeFileSync(file, stringify(raw))
    const served = await serveWithRegistry(file, silentLogger)
    try {
      expect(served.registry.list('cancer-main').map((v) => [v.version, v.state])).toEqual([[1, 'serving']])
      const cancer = samples('cancer')
      const spec = served.gateway.ensemble('cancer').inputs[0]!
      const result = await served.gateway.predict({ id: 'pod', ensemble: 'cancer', inputs: { input: tensorFromJson([cancer.rows[0]!], spec, inputFailure) } })
      expect(result.error).toBeNull()
      expect(result.models.find((m) => m.name === 'cancer-main')!.version).toBe('1')
    } finally {
      await served.stop()
    }
  })
})
