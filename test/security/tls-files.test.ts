// TlsFiles checks a changed set of files as config load does (checkTlsFiles): a client CA
// replaced by one without a readable certificate is refused at reload, and the previous
// one keeps serving. Its server options carry the handshake timeout both listeners use.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { TlsFiles } from '../../src/security/tls.ts'
import { makePki } from './certs.ts'

const pki = makePki()
const server = pki.issue('reload-server')
const clientCa = join(pki.dir, 'reload-client-ca.pem')
writeFileSync(clientCa, readFileSync(pki.ca))
const files = new TlsFiles({ cert: server.cert, key: server.key, clientCa, requireClientCert: true }, 250, 60_000)
afterAll(() => {
  files.close()
  pki.remove()
})

it('refuses a reload whose client CA holds no PEM certificate, or one that cannot be read; the previous CA keeps serving', () => {
  const rejected: Error[] = []
  files.on('rejected', (err) => rejected.push(err))
  writeFileSync(clientCa, 'garbage\n')
  expect(files.reload()).toBe(false)
  writeFileSync(clientCa, `${readFileSync(pki.ca, 'utf8')}-----BEGIN CERTIFICATE-----\nMIIBnotbase64\n-----END CERTIFICATE-----\n`)
  expect(files.reload()).toBe(false)
  expect(rejected.map((e) => e.message)).toEqual([
    expect.stringMatching(/reload-client-ca\.pem holds no PEM certificate/),
    expect.stringMatching(/reload-client-ca\.pem: certificate 2 of 2 cannot be read: /),
  ])
  expect(files.serverOptions.ca).toEqual(readFileSync(pki.ca))
})

it('gives every listener its handshake timeout', () => {
  expect(files.serverOptions).toMatchObject({ handshakeTimeout: 250, requestCert: true, rejectUnauthorized: true })
})
