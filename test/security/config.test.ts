// The auth section as the config loader reads it: what validate refuses and what it warns about.
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import { subjectKey } from '../../src/security/config.ts'
import { isLoopback, openWarning } from '../../src/security/exposure.ts'
import { configFrom } from '../helpers.ts'
import { makePki } from './certs.ts'
import '../starter/scripted.ts'

const base = 'models: { a: { kind: scripted } }\nensembles: { e: { strategy: deadline-fallback, models: [a] } }\n'
const HASH = 'a'.repeat(64)

function problems(yaml: string): string[] {
  try {
    configFrom(base + yaml)
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`)
    throw err
  }
  return []
}

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
})


describe('open by default, loudly', () => {
  it('says nothing on loopback, warns when open or plaintext beyond it', () => {
    expect(['127.0.0.1', '::1', 'localhost', '0.0.0.0', '10.1.2.3'].map(isLoopback)).toEqual([true, true, true, false, false])
    const open = (host: string): string | null => openWarning(configFrom(`server: { host: "${host}" }\n${base}`))
    expect(open('127.0.0.1')).toBeNull()
    expect(open('0.0.0.0')).toMatch(/^listening on 0\.0\.0\.0 without an auth section: every endpoint .* is open to anyone who can reach it, in plaintext/)
    expect(openWarning(configFrom(`server: { host: "0.0.0.0" }\n${base}auth: {}\n`))).toMatch(/in plaintext: bearer credentials cross the network unencrypted/)
  })
})
