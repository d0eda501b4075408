// The auth section as the config loader reads it: what validate refuses and what it warns about.
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { subjectKey } from '../../src/security/config.ts'
import { isLoopback, openWarning } from '../../src/security/exposure.ts'
import { configFrom, configIssues } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'
import { makePki } from './certs.ts'
import '../starter/scripted.ts'

const base = 'models: { a: { kind: scripted } }\nensembles: { e: { strategy: deadline-fallback, models: [a] } }\n'
const HASH = 'a'.repeat(64)

const problems = (yaml: string): string[] => configIssues(base + yaml).map((i) => `${i.path}: ${i.message}`)

describe('auth config', () => {
  it('refuses a plaintext key, a sha256 that is not a hex digest, and a duplicate id', () => {
    expect(problems(`auth:\n  api_keys:\n    - { id: a, key: hunter2, scopes: [read] }\n    - { id: b, sha256: hunter2, scopes: [read] }\n    - { id: c, sha256: "${HASH}", scopes: [read] }\n    - { id: c, sha256: "${HASH}", scopes: [read] }\n`)).toEqual([
      expect.stringMatching(/^auth\.api_keys\.0\.key: a plaintext key does not belong in the config/),
      expect.stringMatching(/^auth\.api_keys\.1\.sha256: not a hex SHA-256/),
      'auth.api_keys.3.id: id "c" is used twice',
    ])
  })

  it('refuses an unknown scope and a JWT section with neither or both key sources', () => {
    expect(problems(`auth:\n  api_keys: [ { id: a, sha256: "${HASH}", scopes: [root] } ]\n`)).toEqual([expect.stringMatching(/^auth\.api_keys\.0\.scopes\.0: /)])
    expect(problems('auth:\n  jwt: { audience: x }\n')).toEqual([expect.stringMatching(/^auth\.jwt: give exactly one of jwks_url/)])
  })

  it('warns about a JWT config without an audience or an issuer', () => {
    const config = configFrom(`${base}auth:\n  jwt: { jwks_url: "https://idp/jwks" }\n`)
    expect(config.warnings.map((w) => w.path)).toEqual(['auth.jwt.audience', 'auth.jwt.issuer'])
    expect(configFrom(`${base}auth:\n  jwt: { jwks_url: "https://idp/jwks", audience: s, issuer: "https://idp/" }\n`).warnings).toEqual([])
  })

  it('warns about a JWKS fetched over plain http:// from beyond loopback', () => {
    const warnings = (url: string): string[] =>
      configFrom(`${base}auth:\n  jwt: { jwks_url: "${url}", audience: s, issuer: "https://idp/" }\n`).warnings.map((w) => `${w.path}: ${w.message}`)
    expect(warnings('http://idp.example/jwks.json')).toEqual([expect.stringMatching(/^auth\.jwt\.jwks_url: plain http:\/\/ to idp\.example: .* use https:\/\/$/)])
    expect(warnings('http://10.0.0.5:8080/jwks.json')).toHaveLength(1)
    for (const url of ['https://idp.example/jwks.json', 'http://127.0.0.1:9000/jwks.json', 'http://localhost/jwks.json', 'http://[::1]:9000/jwks.json']) expect(warnings(url)).toEqual([])
  })

  it('refuses a JWKS cooldown under a second; the fetch timeout is jwks_timeout_ms, 2 s by default', () => {
    const jwt = (extra: string) => `auth:\n  jwt: { jwks_url: "https://idp/jwks", audience: s, issuer: "https://idp/"${extra} }\n`
    expect(problems(jwt(', jwks_cooldown_s: 0'))).toEqual([expect.stringMatching(/^auth\.jwt\.jwks_cooldown_s: /)])
    expect(configFrom(base + jwt('')).auth!.jwt!.source).toMatchObject({ kind: 'jwks_url', cooldownMs: 30_000, timeoutMs: 2000 })
    expect(configFrom(base + jwt(', jwks_timeout_ms: 500')).auth!.jwt!.source).toMatchObject({ timeoutMs: 500 })
  })

  it('a PEM key_file accepts the one algorithm its key verifies, and refuses a key that verifies none listed', () => {
    const dir = tempDir('specserve-jwt-keys-')
    const pem = (name: string, type: 'rsa' | 'ec', namedCurve?: string): string => {
      const { publicKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: namedCurve! })
      writeFileSync(join(dir, name), publicKey.export({ type: 'spki', format: 'pem' }))
      return join(dir, name)
    }
    const [rsa, p256, p384] = [pem('rsa.pem', 'rsa'), pem('p256.pem', 'ec', 'prime256v1'), pem('p384.pem', 'ec', 'secp384r1')]
    const jwt = (file: string, extra = '') => `auth:\n  jwt: { key_file: "${file}", audience: s, issuer: "https://idp/"${extra} }\n`
    expect(configFrom(base + jwt(rsa)).auth!.jwt!.algorithms).toEqual(['RS256'])
    expect(configFrom(base + jwt(p256)).auth!.jwt!.algorithms).toEqual(['ES256'])
    expect(problems(jwt(rsa, ', algorithms: [ES256]'))).toEqual(['auth.jwt.algorithms: key_file holds an RSA key, which verifies RS256 tokens only, and algorithms lists ES256: no token could verify'])
    expect(problems(jwt(p384))).toEqual([`auth.jwt.key_file: ${p384} is not a PEM public key or a JWKS: an EC key on secp384r1; ES256 needs P-256 (prime256v1)`])
  })

  it('anonymous callers get health by default, and only what the list says', () => {
    expect(configFrom(`${base}auth: {}\n`).auth!.anonymous).toMatchObject({ health: true, read: false, metrics: false, authenticated: false })
    expect(configFrom(`${base}auth: { anonymous: [metrics] }\n`).auth!.anonymous).toMatchObject({ health: false, metrics: true })
  })

  it('server.tls needs readable files, and client_ca when client certificates are required', () => {
    expect(problems('server: { tls: { cert: nope.pem, key: nope-key.pem, require_client_cert: true } }\n')).toEqual([
      expect.stringMatching(/^server\.tls\.cert: cannot read .*nope\.pem$/),
      expect.stringMatching(/^server\.tls\.key: cannot read .*nope-key\.pem$/),
      'server.tls.require_client_cert: needs client_ca: the CA that signs the client certificates',
    ])
  })
})

describe('auth.client_certs', () => {
  const pki = makePki()
  const server = pki.issue('config-server')
  const tls = (clientCa: boolean) => `server: { tls: { cert: "${server.cert}", key: "${server.key}"${clientCa ? `, client_ca: "${pki.ca}"` : ''} } }\n`

  it('needs server.tls.client_ca, and subjects that are attribute=value pairs named once', () => {
    const certs = 'auth:\n  client_certs:\n    - { subject: "CN=a, O=Acme", scopes: [read] }\n'
    expect(problems(tls(false) + certs)).toEqual([expect.stringMatching(/^auth\.client_certs: needs server\.tls\.client_ca/)])
    expect(problems(tls(true) + certs)).toEqual([])
    expect(problems(`${tls(true)}auth:\n  client_certs:\n    - { subject: "checkout", scopes: [read] }\n    - { subject: "O=Acme,CN=a", scopes: [read] }\n    - { subject: "cn=a, O=Acme", scopes: [read] }\n`)).toEqual([
      expect.stringMatching(/^auth\.client_certs\.0\.subject: "checkout" is not attribute=value/),
      'auth.client_certs.2.subject: subject "cn=a, O=Acme" is named twice',
    ])
  })

  it('reads a subject in any order and case of attribute names, as a peer certificate shows it', () => {
    const config = configFrom(`${base}${tls(true)}auth:\n  client_certs:\n    - { subject: "o=Acme,CN=checkout", scopes: ["predict:e"] }\n`)
    expect(config.auth!.clientCerts.map((c) => c.subject)).toEqual([subjectKey(Object.entries({ CN: 'checkout', O: 'Acme' }))])
    expect(subjectKey(Object.entries({ CN: 'a', OU: ['x', 'y'] }))).toBe('CN=a,OU=x,OU=y')
  })

  it('escapes commas, equals signs, pluses and backslashes in values, so one value cannot spell two attributes', () => {
    const named = configFrom(`${base}${tls(true)}auth:\n  client_certs:\n    - { subject: "CN=checkout,O=Acme", scopes: ["predict:e"] }\n`).auth!.clientCerts[0]!.subject
    expect(subjectKey(Object.entries({ CN: 'checkout,O=Acme' }))).toBe('CN=checkout\\,O\\=Acme')
    expect(subjectKey(Object.entries({ CN: 'checkout,O=Acme' }))).not.toBe(named)
    expect(subjectKey(Object.entries({ CN: 'a+b\\c' }))).toBe('CN=a\\+b\\\\c')
  })
})

describe('server.tls files, checked at load as serve would use them', () => {
  const pki = makePki()
  const server = pki.issue('tls-files-server')
  const other = pki.issue('tls-files-other')
  const file = (name: string, text: string): string => {
    writeFileSync(join(pki.dir, name), text)
    return join(pki.dir, name)
  }
  const junk = file('junk.pem', 'garbage\n')
  const tls = (fields: string): string[] => problems(`server: { tls: { ${fields} } }\n`)

  it('a good pair, with a client CA, is accepted', () => {
    expect(tls(`cert: "${server.cert}", key: "${server.key}", client_ca: "${pki.ca}"`)).toEqual([])
  })

  it('refuses a key that is not the certificate\'s, or not a key, at key; a certificate that is not PEM at cert', () => {
    expect(tls(`cert: "${server.cert}", key: "${other.key}"`)).toEqual([expect.stringMatching(/^server\.tls\.key: .*tls-files-other-key\.pem is not a PEM private key of the certificate in .*tls-files-server\.pem: .*key values mismatch/)])
    expect(tls(`cert: "${server.cert}", key: "${junk}"`)).toEqual([expect.stringMatching(/^server\.tls\.key: .*junk\.pem is not a PEM private key of the certificate/)])
    expect(tls(`cert: "${junk}", key: "${server.key}"`)).toEqual([expect.stringMatching(/^server\.tls\.cert: .*junk\.pem holds no PEM certificate/)])
  })

  it('refuses a client_ca without a certificate, or with one that cannot be read', () => {
    const pair = `cert: "${server.cert}", key: "${server.key}"`
    expect(tls(`${pair}, client_ca: "${junk}"`)).toEqual([expect.stringMatching(/^server\.tls\.client_ca: .*junk\.pem holds no PEM certificate/)])
    const torn = file('torn-ca.pem', `${readFileSync(pki.ca, 'utf8')}-----BEGIN CERTIFICATE-----\nMIIBnotbase64\n-----END CERTIFICATE-----\n`)
    expect(tls(`${pair}, client_ca: "${torn}"`)).toEqual([expect.stringMatching(/^server\.tls\.client_ca: .*torn-ca\.pem: certificate 2 of 2 cannot be read: /)])
  })
})

describe('open by default, loudly', () => {
  it('says nothing on loopback, warns when open or plaintext beyond it', () => {
    expect(['127.0.0.1', '::1', 'localhost', '0.0.0.0', '10.1.2.3'].map(isLoopback)).toEqual([true, true, true, false, false])
    const open = (host: string): string | null => openWarning(configFrom(`server: { host: "${host}" }\n${base}`))
    expect(open('127.0.0.1')).toBeNull()
    expect(open('0.0.0.0')).toMatch(/^listening on 0\.0\.0\.0 without an auth section: every endpoint .* is open to anyone who can reach it, in plaintext/)
    expect(openWarning(configFrom(`server: { host: "0.0.0.0" }\n${base}auth: {}\n`))).toMatch(/in plaintext: bearer credentials cross the network unencrypted/)
  })

  it('lists the admin routes the gateway serves open: /admin/reload and a repository\'s upload and rollback, unless SPECSERVE_ADMIN_TOKEN guards them', () => {
    const repository = `repository: { path: "${tempDir('specserve-exposure-repo-')}", watch: false }\n`
    const warning = (yaml: string, token?: string): string | null => openWarning(configFrom(`server: { host: "0.0.0.0" }\n${base}${yaml}`), token)
    const says = (open: string, guarded = false): string =>
      `listening on 0.0.0.0 without an auth section: every endpoint${guarded ? ' but those SPECSERVE_ADMIN_TOKEN guards' : ''} (${open}) is open to anyone who can reach it, in plaintext; see docs/security.md`
    expect(warning('')).toBe(says('predict, model details, /metrics'))
    expect(warning('admin: { reload_endpoint: true }\n')).toBe(says('predict, model details, /metrics, /admin/reload'))
    expect(warning(repository)).toBe(says('predict, model details, /metrics, model upload and rollback'))
    expect(warning(`admin: { reload_endpoint: true }\n${repository}`)).toBe(says('predict, model details, /metrics, /admin/reload, model upload and rollback'))
    // With the token, the routes it guards answer 401 without it: not open.
    expect(warning(`admin: { reload_endpoint: true }\n${repository}`, 'secret')).toBe(says('predict, model details, /metrics', true))
    expect(warning('', 'secret')).toBe(says('predict, model details, /metrics'))
    // Read from the environment as the routes read it (trimmed; empty is unset).
    vi.stubEnv('SPECSERVE_ADMIN_TOKEN', ' secret\n')
    try {
      expect(openWarning(configFrom(`server: { host: "0.0.0.0" }\n${base}${repository}`))).toBe(says('predict, model details, /metrics', true))
      vi.stubEnv('SPECSERVE_ADMIN_TOKEN', '')
      expect(openWarning(configFrom(`server: { host: "0.0.0.0" }\n${base}${repository}`))).toBe(says('predict, model details, /metrics, model upload and rollback'))
    } finally {
      vi.unstubAllEnvs()
    }
  })
})
