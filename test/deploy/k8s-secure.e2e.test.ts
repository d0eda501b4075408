// deploy/k8s/secure as `kubectl apply -k` would apply it, without a cluster: make-secrets.sh
// run into a copy of deploy/k8s, the overlay rendered by kustomize and validated strictly
// against the Kubernetes schemas, its pieces checked against each other (the Secret's mount
// is where the config looks for the certificate, probes over HTTPS, the config is the base
// one plus TLS and auth), and then a gateway served from what the ConfigMap and the Secrets
// hold, as a pod would see them: the probe path over HTTPS, a client with the key from the
// specserve-api-keys Secret, one without.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request, type RequestOptions } from 'node:https'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/rest/server.ts'
import { Gateway } from '../../src/gateway.ts'
import { deploy, imageConfig, render, tool, validateRendered, type Doc } from './tools.ts'

let work: string
let docs: Doc[]
let kustomize: string
/** Where the test puts the specserve-tls Secret's files, standing in for the pod's mount. */
let mounted: string
/** Where the pods mount it (deployment-tls.yaml). */
const TLS_MOUNT = '/etc/specserve-tls'

const find = (kind: string, name: string): Doc => {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name)
  expect(doc, `${kind}/${name}`).toBeDefined()
  return doc!
}
const secretFiles = (secret: Doc): Record<string, string> => Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))

beforeAll(() => {
  kustomize = tool('kustomize')
  work = mkdtempSync(join(tmpdir(), 'specserve-k8s-secure-'))
  // deploy/k8s and what its script sources, in the same places relative to each other.
  cpSync(join(deploy, 'k8s'), join(work, 'k8s'), { recursive: true, filter: (src) => !src.includes(join('secure', 'secrets')) })
  cpSync(join(deploy, 'secure-pki.sh'), join(work, 'secure-pki.sh'))
  execFileSync(join(work, 'k8s', 'secure', 'make-secrets.sh'), [join(work, 'k8s', 'secure', 'secrets')], { env: { ...process.env, NAMESPACE: 'serving' }, stdio: ['ignore', 'pipe', 'pipe'] })
  docs = render(kustomize, join(work, 'k8s', 'secure'))
  mounted = join(work, 'mounted-tls')
  mkdirSync(mounted)
  for (const [file, content] of Object.entries(secretFiles(find('Secret', 'specserve-tls')))) writeFileSync(join(mounted, file), content)
})

/** The ConfigMap's config, loaded as the pod would (the certificate files read from the Secret's mount). */
const podConfig = () => imageConfig((find('ConfigMap', 'specserve-config').data['specserve.yaml'] as string).replaceAll(`${TLS_MOUNT}/`, `${mounted}/`))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('deploy/k8s/secure', () => {
  it('renders to manifests valid against the Kubernetes 1.37 schemas, strictly', () => {
    const run = validateRendered(kustomize, join(work, 'k8s', 'secure'), work, 'secure.yaml')
    expect(run.output).not.toMatch(/ERROR|WARN/)
    expect(run.status).toBe(0)
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
      'ConfigMap/specserve-config',
      'Deployment/specserve',
      'HorizontalPodAutoscaler/specserve',
      'PodDisruptionBudget/specserve',
      'Secret/specserve-api-keys',
      'Secret/specserve-tls',
      'Service/specserve',
    ])
  })

  it('pulls the image the base kustomization names, as the plaintext one does', () => {
    const [entry] = (parse(readFileSync(join(deploy, 'k8s', 'base', 'kustomization.yaml'), 'utf8')) as Doc).images as Doc[]
    const [container] = find('Deployment', 'specserve').spec.template.spec.containers as Doc[]
    expect(container!.image).toBe(`${entry!.newName}:${entry!.newTag}`)
  })

  it('mounts the TLS Secret where the config reads it, probes over HTTPS, and says TLS to the Service and Prometheus', () => {
    const pod = find('Deployment', 'specserve').spec.template
    const [container] = pod.spec.containers as Doc[]
    const raw = parse(find('ConfigMap', 'specserve-config').data['specserve.yaml'] as string) as Doc
    const tls = find('Secret', 'specserve-tls')
    expect(tls.type).toBe('kubernetes.io/tls')
    expect(Object.keys(tls.data)).toEqual(expect.arrayContaining(['tls.crt', 'tls.key']))

    const volume = (pod.spec.volumes as Doc[]).find((v) => v.secret?.secretName === tls.metadata.name)!
    expect(volume.secret.defaultMode).toBe(0o440) // group-readable for fsGroup only: the private key
    const mount = (container!.volumeMounts as Doc[]).find((m) => m.name === volume.name)!
    expect(mount.readOnly).toBe(true)
    expect(mount.mountPath).toBe(TLS_MOUNT)
    expect(raw.server.tls).toEqual({ cert: posix.join(mount.mountPath, 'tls.crt'), key: posix.join(mount.mountPath, 'tls.key') })
    // Not below another volume's mount (a ConfigMap volume is read-only: the mount point could not be made).
    for (const other of container!.volumeMounts as Doc[]) if (other !== mount) expect(mount.mountPath.startsWith(`${other.mountPath}/`)).toBe(false)

    expect(container!.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTPS' })
    expect(container!.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTPS' })
    expect(podConfig().auth!.anonymous.health).toBe(true) // the kubelet sends no credentials
    expect(pod.metadata.annotations['prometheus.io/scheme']).toBe('https')
    expect((find('Service', 'specserve').spec.ports as Doc[]).map((p) => p.appProtocol)).toEqual(['https', 'https'])
  })

  it('the config is the base one plus server.tls and auth, holding key hashes only; the certificate names the Service', () => {
    const base = parse(readFileSync(join(deploy, 'k8s', 'base', 'configmap.yaml'), 'utf8')) as Doc
    const secureText = find('ConfigMap', 'specserve-config').data['specserve.yaml'] as string
    const secure = parse(secureText) as Doc
    const { tls: _tls, ...server } = secure.server as Doc
    const { auth: _auth, ...rest } = secure
    expect({ ...rest, server }).toEqual(parse(base.data['specserve.yaml'] as string))

    const keys = secretFiles(find('Secret', 'specserve-api-keys'))
    const config = podConfig()
    expect(config.auth!.apiKeys.map((k) => k.id)).toEqual(['client', 'prometheus'])
    for (const key of Object.values(keys)) expect(secureText).not.toContain(key.trim())
    expect(config.auth!.apiKeys.find((k) => k.id === 'prometheus')!.grants).toMatchObject({ metrics: true, read: false, predictAll: false })

    const cert = secretFiles(find('Secret', 'specserve-tls'))['tls.crt']!
    const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: cert, encoding: 'utf8' })
    for (const name of ['DNS:specserve', 'DNS:specserve.serving.svc', 'DNS:specserve.serving.svc.cluster.local']) expect(text).toContain(name)
  })

  it('with JWKS_URL, make-secrets.sh adds a jwt section (issuer and audience required)', () => {
    const script = join(work, 'k8s', 'secure', 'make-secrets.sh')
    const out = join(work, 'with-jwt')
    const jwt = { JWKS_URL: 'https://idp.example/.well-known/jwks.json', JWT_ISSUER: 'https://idp.example/', JWT_AUDIENCE: 'specserve' }
    execFileSync(script, [out], { env: { ...process.env, ...jwt }, stdio: ['ignore', 'pipe', 'pipe'] })
    const config = imageConfig(readFileSync(join(out, 'specserve.yaml'), 'utf8').replaceAll(`${TLS_MOUNT}/`, `${out}/`))
    expect(config.auth!.jwt).toMatchObject({ issuer: jwt.JWT_ISSUER, audience: jwt.JWT_AUDIENCE, source: { kind: 'jwks_url', url: new URL(jwt.JWKS_URL) } })
    const refused = spawnSync(script, [join(work, 'jwt-incomplete')], { env: { ...process.env, JWKS_URL: jwt.JWKS_URL }, encoding: 'utf8' })
    expect(refused.status).not.toBe(0)
    expect(refused.stderr).toContain('JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE')
  })

  it('make-secrets.sh stops with what openssl said when it fails (it was silent), and keeps openssl quiet otherwise', () => {
    const bin = join(work, 'failing-openssl')
    mkdirSync(bin)
    writeFileSync(join(bin, 'openssl'), '#!/bin/sh\necho "openssl: stand-in refusing: $*" >&2\nexit 1\n')
    chmodSync(join(bin, 'openssl'), 0o755)
    const out = join(work, 'openssl-fails')
    const failed = spawnSync(join(work, 'k8s', 'secure', 'make-secrets.sh'), [out], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, encoding: 'utf8' })
    expect(failed.status).not.toBe(0)
    expect(failed.stderr).toContain('openssl: stand-in refusing: req -x509')
    expect(existsSync(join(out, 'specserve.yaml'))).toBe(false)

    const ok = spawnSync(join(work, 'k8s', 'secure', 'make-secrets.sh'), [join(work, 'openssl-quiet')], { encoding: 'utf8' })
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.stderr).toMatch(/^client API key: [0-9a-f]{48}\n$/)
  })

  it('serves from what the ConfigMap and Secrets hold: HTTPS health for the probe, predicts with the client key only', async () => {
    const parsed = podConfig()
    const config = { ...parsed, server: { ...parsed.server, host: '127.0.0.1', rest_port: 0 }, executors: { ...parsed.executors, onnx_workers: 1 } }
    const gateway = new Gateway(config)
    const app = buildServer(config, { gateway })
    try {
      await gateway.load()
      await app.listen({ host: '127.0.0.1', port: 0 })
      const port = (app.server.address() as { port: number }).port
      const ca = readFileSync(join(mounted, 'ca.crt'), 'utf8')
      const client = secretFiles(find('Secret', 'specserve-api-keys'))['client.key']!.trim()
      const call = (options: RequestOptions, body?: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', servername: 'specserve', port, agent: false, ca, ...options }, (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode!))
          })
          req.on('error', reject)
          req.end(body)
        })
      expect(await call({ path: '/readyz' })).toBe(200)
      expect(await call({ path: '/healthz' })).toBe(200)
      const predict = (headers: Record<string, string>) =>
        call({ path: '/v1/ensembles/cancer/predict', method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, JSON.stringify({ inputs: { input: [new Array(30).fill(0.5)] } }))
      expect(await predict({ authorization: `Bearer ${client}` })).toBe(200)
      expect(await predict({})).toBe(401)
      // The certificate is the one the CA signed for the Service: an unknown CA is refused.
      await expect(call({ path: '/healthz', ca: undefined })).rejects.toThrow(/self[- ]signed|unable to verify|unable to get local issuer/i)
    } finally {
      await app.close()
      await gateway.close()
    }
  })
})
