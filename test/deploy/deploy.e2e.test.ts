// deploy/ checked statically: no cluster and no Docker engine run here. The Kubernetes
// manifests are validated (strict) against the published Kubernetes JSON schemas (the
// secure overlay as kustomize renders it, then served from what its Secrets hold), the
// Dockerfile is linted by hadolint, docker-compose.yml is validated against the Compose
// Specification's schema; then the pieces are checked against each other (ports, labels,
// names, grace periods) and every gateway config shipped in deploy/ is validated and loaded.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { Gateway } from '../../src/gateway.ts'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { deploy, imageConfig, render, tool, type Doc } from './tools.ts'

const k8s = join(deploy, 'k8s', 'base')
const manifest = (file: string): Doc => parse(readFileSync(join(k8s, file), 'utf8')) as Doc
const MANIFESTS = ['configmap.yaml', 'deployment.yaml', 'service.yaml', 'hpa.yaml', 'pdb.yaml']

let validate: string
let hadolint: string
let composeSchema: string
let kustomize: string

beforeAll(() => {
  validate = tool('kubernetes-validate')
  hadolint = tool('hadolint')
  composeSchema = tool('compose-schema')
  kustomize = tool('kustomize')
})


describe('Kubernetes manifests', () => {
  it('are valid against the Kubernetes 1.37 schemas, strictly (no unknown fields)', () => {
    const run = spawnSync(validate, ['--kubernetes-version', '1.37.0', '--strict', ...MANIFESTS], { cwd: k8s, encoding: 'utf8' })
    expect(run.stdout + run.stderr).not.toMatch(/ERROR|WARN/)
    expect(run.status).toBe(0)
    for (const file of MANIFESTS) expect(run.stdout).toContain(`${file} passed`)
    const listed = (parse(readFileSync(join(k8s, 'kustomization.yaml'), 'utf8')) as Doc).resources
    expect([...listed].sort()).toEqual([...MANIFESTS].sort())
    // kubectl apply -k deploy/k8s applies exactly the base.
    const applied = render(kustomize, join(deploy, 'k8s')).map((d) => `${d.kind}/${d.metadata.name}`)
    expect(applied.sort()).toEqual(MANIFESTS.map((f) => `${manifest(f).kind}/${manifest(f).metadata.name}`).sort())
  })

  it('the validator is strict: a misspelt field fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'specserve-k8s-'))
    try {
      writeFileSync(join(dir, 'pdb.yaml'), readFileSync(join(k8s, 'pdb.yaml'), 'utf8').replace('maxUnavailable', 'maxUnavailble'))
      const run = spawnSync(validate, ['--kubernetes-version', '1.37.0', '--strict', 'pdb.yaml'], { cwd: dir, encoding: 'utf8' })
      expect(run.status).not.toBe(0)
      expect(run.stdout + run.stderr).toMatch(/maxUnavailble/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('pull the image the base kustomization names, the one place the docs say to set it (nothing publishes it)', () => {
    const images = (parse(readFileSync(join(k8s, 'kustomization.yaml'), 'utf8')) as Doc).images as Doc[]
    expect(images).toHaveLength(1)
    const [entry] = images
    // The entry applies: it names the Deployment's image, and sets its tag to this version.
    const [container] = manifest('deployment.yaml').spec.template.spec.containers as Doc[]
    expect((container!.image as string).split(':')[0]).toBe(entry!.name)
    expect(entry!.newTag).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version)
    const [rendered] = render(kustomize, join(deploy, 'k8s')).find((d) => d.kind === 'Deployment')!.spec.template.spec.containers as Doc[]
    expect(rendered!.image).toBe(`${entry!.newName}:${entry!.newTag}`)
    // How to build, push and name it is written down where the manifests are described.
    const operations = readFileSync(join(root, 'docs', 'operations.md'), 'utf8')
    expect(operations).toContain('docker build -f deploy/Dockerfile -t REGISTRY/specserve:')
    expect(operations).toContain(`kustomize edit set image ${entry!.name}=REGISTRY/specserve:`)
  })

  it('fit together: selectors, ports, probes, the drain and the config', async () => {
    const [configMap, deployment, service, hpa, pdb] = MANIFESTS.map(manifest) as [Doc, Doc, Doc, Doc, Doc]
    const pod = deployment.spec.template
    const labels = pod.metadata.labels as Record<string, string>
    const matches = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v)
    expect(matches(deployment.spec.selector.matchLabels)).toBe(true)
    expect(matches(service.spec.selector)).toBe(true)
    expect(matches(pdb.spec.selector.matchLabels)).toBe(true)
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name })

    const [container] = pod.spec.containers as Doc[]
    const ports = new Map((container!.ports as Doc[]).map((p) => [p.name as string, p.containerPort as number]))
    for (const p of service.spec.ports as Doc[]) expect(ports.has(p.targetPort)).toBe(true)
    expect(container!.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' })
    expect(container!.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' })
    expect(pod.metadata.annotations['prometheus.io/port']).toBe(String(ports.get('http')))

    // The config the pods run: valid, listening on the container's ports, loadable.
    const volume = (pod.spec.volumes as Doc[]).find((v) => v.configMap)!
    expect(volume.configMap.name).toBe(configMap.metadata.name)
    const mount = (container!.volumeMounts as Doc[]).find((m) => m.name === volume.name)!
    expect(container!.args).toEqual(['serve', '-c', `${mount.mountPath}/specserve.yaml`])
    // The ConfigMap as a directory: a subPath mount is never updated when the ConfigMap changes.
    expect(mount.subPath).toBeUndefined()
    const config = imageConfig(configMap.data['specserve.yaml'])
    expect(config.server.rest_port).toBe(ports.get('http'))
    expect(config.server.grpc_port).toBe(ports.get('grpc'))
    expect(config.executors.onnx_workers).toBeLessThan(Number(container!.resources.limits.cpu))
    const gateway = new Gateway({ ...config, executors: { ...config.executors, onnx_workers: 1 } })
    try {
      await gateway.load()
      expect([...gateway.ensembles.keys()].sort()).toEqual(['cancer', 'wine'])
    } finally {
      await gateway.close()
    }

    // Drain budget: preStop sleep, then the gateway's grace period, inside Kubernetes' own.
    const preStop = Number(container!.lifecycle.preStop.exec.command[1])
    expect(preStop).toBeGreaterThan(0)
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStop * 1000 + config.server.shutdown_grace_ms)
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true)
  })
})

describe('Dockerfile', () => {
  const text = readFileSync(join(deploy, 'Dockerfile'), 'utf8')
  afterEach(() => void vi.unstubAllEnvs())

  it('passes hadolint', () => {
    const run = spawnSync(hadolint, ['--no-color', 'deploy/Dockerfile'], { cwd: root, encoding: 'utf8' })
    expect(run.stdout + run.stderr).toBe('')
    expect(run.status).toBe(0)
  })

  it('builds on Node 24 slim, installs production dependencies only, runs as a numeric non-root user with a healthcheck', () => {
    const from = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])
    expect(from.length).toBeGreaterThanOrEqual(2) // multi-stage
    for (const image of from) expect(image).toBe('node:24-slim')
    expect(text).toMatch(/npm ci --omit=dev/)
    expect(text).toMatch(/^USER [1-9]\d*:[1-9]\d*$/m)
    expect(text).toMatch(/^HEALTHCHECK /m)
    // Every file copied from the build context exists, and .dockerignore keeps it in the context.
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
    for (const m of text.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)) {
      for (const src of m[1]!.split(' ')) {
        expect(existsSync(resolve(root, src)), src).toBe(true)
        expect(ignored).not.toContain(src)
      }
    }
    expect(readFileSync(join(root, '.npmrc'), 'utf8')).toMatch(/onnxruntime-node-install=skip/)
  })

  it('bakes in nothing git ignores below what it copies (the docs/models.md walkthrough makes examples/model-repo/)', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
    const copied = [...text.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '))
    // The .gitignore entries anchored to a path (a leading /), below a directory the image copies.
    const local = readFileSync(join(root, '.gitignore'), 'utf8').split('\n').filter((l) => l.startsWith('/')).map((l) => l.replace(/^\/|\/$/g, ''))
    const below = local.filter((path) => copied.some((src) => path.startsWith(`${src}/`)))
    expect(below).toContain('examples/model-repo')
    for (const path of below) expect(ignored, path).toContain(path)
  })

  it('the healthcheck probes the listener serve announced, else the config the image serves by default (specserve health), not a fixed URL', () => {
    const served = JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]!) as string[]
    expect(served.slice(0, 2)).toEqual(['serve', '-c'])
    const probe = JSON.parse(/^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(text)![1]!) as string[]
    // Run against a gateway served with another -c in test/health.int.test.ts.
    expect(probe).toEqual(['node', 'src/health.ts', '--announced', served[2]])
    expect(existsSync(join(root, 'src', 'health.ts'))).toBe(true)
  })

  it('sets no SPECSERVE_HOST: its default config listens on 0.0.0.0 itself, and a mounted one is taken as written', () => {
    expect(text).not.toMatch(/^\s*(ENV\s+)?SPECSERVE_HOST=/m)
    // The default config made as the Dockerfile makes it, from a demo that would say otherwise.
    const made = /cp examples\/demo\.yaml (\S+) \\\n\s+&& sed -i ((?:-e '[^']*' )+)\1 /.exec(text)
    expect(made, 'the RUN that writes the default config').not.toBeNull()
    const expressions = [...made![2]!.matchAll(/-e '([^']*)'/g)].flatMap((m) => ['-e', m[1]!])
    const file = join(tempDir('specserve-image-config-'), 'specserve.yaml')
    writeFileSync(file, readFileSync(join(root, 'examples', 'demo.yaml'), 'utf8').replace(/^ {2}host: .*$/m, '  host: 127.0.0.1'))
    execFileSync('sed', ['-i', ...expressions, file])
    vi.stubEnv('SPECSERVE_HOST', '')
    const config = imageConfig(readFileSync(file, 'utf8'))
    expect(config.server.host).toBe('0.0.0.0')
    expect([...config.models.values()].every((m) => (m.entry as unknown as { path: string }).path.startsWith(`${join(root, 'models')}/`))).toBe(true)
  })
})

describe("onnxruntime's usage telemetry", () => {
  it('is off in the image, the compose file and the pods (the gateway sets it too: test/executors/onnx/telemetry.int.test.ts)', () => {
    const env = /^ENV ((?:[^\n]*\\\n)*[^\n]*)$/m.exec(readFileSync(join(deploy, 'Dockerfile'), 'utf8'))![1]!
    expect(env.split(/\s*\\\n\s*|\s+/)).toContain('ORT_DISABLE_TELEMETRY=1')
    const compose = parse(readFileSync(join(deploy, 'docker-compose.yml'), 'utf8')) as Doc
    expect(compose.services.specserve.environment.ORT_DISABLE_TELEMETRY).toBe('1')
    // The secure overlay patches the same container (merged by name): its env is this one.
    const [container] = render(kustomize, join(deploy, 'k8s')).find((d) => d.kind === 'Deployment')!.spec.template.spec.containers as Doc[]
    expect(container!.env).toContainEqual({ name: 'ORT_DISABLE_TELEMETRY', value: '1' })
  })
})

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(deploy, 'docker-compose.yml'), 'utf8')) as Doc
  const services = compose.services as Record<string, Doc>

  it('is valid against the Compose Specification schema', () => {
    // Draft-07, named by an https URL ajv does not know as its meta-schema: drop the name.
    const { $schema: _, ...schema } = JSON.parse(readFileSync(composeSchema, 'utf8')) as Record<string, unknown>
    const ajv = new Ajv({ strict: false, allErrors: true })
    const check = ajv.compile(schema)
    expect(check(compose), JSON.stringify(check.errors, null, 2)).toBe(true)
  })

  it('wires specserve to Kafka (official image, KRaft), MLServer, the OTel collector and Prometheus', () => {
    expect(services.kafka!.image).toMatch(/^apache\/kafka:4\./)
    expect(services.kafka!.environment.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    // The broker the tests run (scripts/kafka.sh), and its data on the volume (the image's default is under /tmp).
    const tested = /^KAFKA_VERSION="\$\{KAFKA_VERSION:-([^}]+)\}"$/m.exec(readFileSync(join(root, 'scripts', 'kafka.sh'), 'utf8'))![1]
    expect(services.kafka!.image).toBe(`apache/kafka:${tested}`)
    const data = (services.kafka!.volumes as string[]).find((v) => v.startsWith('kafka-data:'))!
    expect(services.kafka!.environment.KAFKA_LOG_DIRS).toBe(data.split(':')[1])
    // The one-shot trainer writes into a new volume Docker creates owned by root, which the image's
    // user (uid 1000) cannot write: it runs as root; MLServer only reads the volume.
    const models = (services['mlserver-model']!.volumes as string[]).find((v) => v.startsWith('mlserver-models:'))!
    expect(models).toBe('mlserver-models:/models')
    expect(services['mlserver-model']!.user).toBe('0')
    expect(services.mlserver!.volumes).toContain('mlserver-models:/models:ro')
    expect(services.mlserver!.user).toBeUndefined()
    for (const [name, s] of Object.entries(services)) {
      const deps = (Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) as string[]
      for (const dep of deps) expect(services[dep], `${name} depends on ${dep}`).toBeDefined()
      for (const v of (s.volumes ?? []) as string[]) {
        const host = v.split(':')[0]!
        if (host.startsWith('.')) expect(existsSync(resolve(deploy, host)), `${name} mounts ${host}`).toBe(true)
      }
    }
    // A directory holding the config and nothing else (a bind-mounted file would not follow a save that replaces it).
    const mount = (services.specserve!.volumes as string[]).find((v) => v.endsWith(':/etc/specserve:ro'))!
    expect(readdirSync(resolve(deploy, mount.split(':')[0]!))).toEqual(['specserve.yaml'])
    const config = imageConfig(readFileSync(resolve(deploy, mount.split(':')[0]!, 'specserve.yaml'), 'utf8'))
    // Kafka: the broker address specserve uses is the one the broker advertises.
    const kafka = (config.output as { kafka: { brokers: string[] } }).kafka
    expect(services.kafka!.environment.KAFKA_ADVERTISED_LISTENERS).toBe(`PLAINTEXT://${kafka.brokers[0]}`)
    // MLServer: the remote model is the one the one-shot trainer writes.
    const remote = config.models.get('wine-mlserver')!.entry as unknown as { url: string; model: string }
    expect(remote.url).toBe('http://mlserver:8080')
    expect(readFileSync(join(deploy, 'compose', 'mlserver', 'train_wine.py'), 'utf8')).toContain(`"name": "${remote.model}"`)
    expect(services['mlserver-model']!.command.at(-1)).toBe(`/models/${remote.model}`)
    // OTLP: specserve sends where the collector's HTTP receiver listens.
    const collector = parse(readFileSync(join(deploy, 'compose', 'otel-collector.yaml'), 'utf8')) as Doc
    const otlp = new URL(config.telemetry.otlp_endpoint!)
    expect(services[otlp.hostname]).toBeDefined()
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe(`0.0.0.0:${otlp.port}`)
    for (const pipeline of Object.values(collector.service.pipelines) as Doc[]) {
      for (const r of pipeline.receivers) expect(collector.receivers[r]).toBeDefined()
      for (const e of pipeline.exporters) expect(collector.exporters[e]).toBeDefined()
    }
    // Prometheus scrapes specserve's /metrics and the collector's exporter, by service name.
    const prometheus = parse(readFileSync(join(deploy, 'compose', 'prometheus.yml'), 'utf8')) as Doc
    const targets = (prometheus.scrape_configs as Doc[]).flatMap((s) => s.static_configs.flatMap((c: Doc) => c.targets as string[]))
    expect(targets).toContain(`specserve:${config.server.rest_port}`)
    expect(targets).toContain(`otel-collector:${collector.exporters.prometheus.endpoint.split(':')[1]}`)
  })
})

describe('docker-compose.secure.yml (TLS and API keys over the base file)', () => {
  const secure = parse(readFileSync(join(deploy, 'docker-compose.secure.yml'), 'utf8')) as Doc
  const services = secure.services as Record<string, Doc>

  it('is valid against the Compose Specification schema', () => {
    const { $schema: _, ...schema } = JSON.parse(readFileSync(composeSchema, 'utf8')) as Record<string, unknown>
    const check = new Ajv({ strict: false, allErrors: true }).compile(schema)
    expect(check(secure), JSON.stringify(check.errors, null, 2)).toBe(true)
  })

  it('make-secrets.sh makes every secret it mounts, and a config with TLS and only key hashes', () => {
    const out = mkdtempSync(join(tmpdir(), 'specserve-secrets-'))
    try {
      execFileSync(join(deploy, 'compose', 'secure', 'make-secrets.sh'), [out], { stdio: ['ignore', 'pipe', 'pipe'] })
      const made = (file: string): string => join(out, file.replace(/^\.\/compose\/secure\/secrets\//, ''))
      for (const [name, secret] of Object.entries(secure.secrets as Record<string, Doc>)) expect(existsSync(made(secret.file)), name).toBe(true)
      // The override's config replaces the base file's (same target), and is the one the script
      // writes, in a directory of its own: the CA's key and the API keys are not mounted with it.
      const mount = (services.specserve!.volumes as string[]).find((v) => v.endsWith(':/etc/specserve:ro'))!
      expect(readdirSync(made(mount.split(':')[0]!))).toEqual(['specserve.yaml'])
      const text = readFileSync(join(made(mount.split(':')[0]!), 'specserve.yaml'), 'utf8').replaceAll('/run/secrets/', `${out}/`)
      const config = imageConfig(text)
      expect(config.server.tls).toMatchObject({ cert: `${out}/tls.crt`, key: `${out}/tls.key` })
      expect(config.auth!.apiKeys.map((k) => k.id)).toEqual(['client', 'prometheus'])
      for (const key of ['client.key', 'prometheus.key']) expect(text).not.toContain(readFileSync(join(out, key), 'utf8').trim())
      // Prometheus scrapes over HTTPS with the key that has the metrics scope.
      const prometheus = parse(readFileSync(join(deploy, 'compose', 'secure', 'prometheus.yml'), 'utf8')) as Doc
      const job = (prometheus.scrape_configs as Doc[]).find((s) => s.job_name === 'specserve')!
      expect(job.scheme).toBe('https')
      expect(job.authorization.credentials_file).toBe('/run/secrets/prometheus.key')
      expect(config.auth!.apiKeys.find((k) => k.id === 'prometheus')!.grants.metrics).toBe(true)
      // The image's healthcheck reads server.tls from the config: no override, no CA to trust.
      expect(services.specserve!.healthcheck).toBeUndefined()
      expect(services.specserve!.environment?.NODE_EXTRA_CA_CERTS).toBeUndefined()
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })

  it('make-secrets.sh leaves the server key readable by the gateway (1000:1000) and by no one else unless it says so', () => {
    const out = join(tempDir('specserve-secrets-modes-'), 'secrets') // made by the script, as its default one is
    const run = spawnSync(join(deploy, 'compose', 'secure', 'make-secrets.sh'), [out], { encoding: 'utf8' })
    expect(run.status, run.stderr).toBe(0)
    const mode = (file: string) => statSync(join(out, file)).mode & 0o777
    // The directory shuts this host's other users out; the containers get the files only.
    expect(mode('.')).toBe(0o700)
    // Compose mounts a file secret with this host's owner and mode: uid 1000 (gid 1000) must read tls.key.
    const key = statSync(join(out, 'tls.key'))
    const readable = (key.uid === 1000 && key.mode & 0o400) || (key.gid === 1000 && key.mode & 0o040) || key.mode & 0o004
    expect(readable, `tls.key ${key.uid}:${key.gid} ${(key.mode & 0o777).toString(8)}`).toBeTruthy()
    if (key.mode & 0o004) expect(run.stderr).toContain('tls.key is world-readable')
    else expect(key.mode & 0o007).toBe(0)
    // What no container reads stays its owner's.
    expect(mode('ca.key')).toBe(0o600)
    expect(mode('client.key')).toBe(0o600)
  })
})
