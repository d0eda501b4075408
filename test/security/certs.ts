// A throwaway PKI made with openssl at test time: a CA, server certificates for 127.0.0.1
// and localhost, client certificates, and certificates from a CA nobody trusts. Its directory
// holds the CA's private key: it goes after the test file (tempDir), or on remove().
import { execFileSync } from 'node:child_process'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { removeTempDir, tempDir } from '../temp-dirs.ts'

export interface Pair {
  readonly cert: string
  readonly key: string
}

export interface Pki {
  readonly dir: string
  readonly ca: string
  /**
   * A new key and certificate signed by `ca` (or a stranger CA), written to dir/<name>.pem and
   * dir/<name>-key.pem. Its subject is `/CN=<name>` unless `subject` gives another (openssl's
   * `-subj` form: `/CN=checkout/O=Acme`, `\,` for a comma inside a value).
   */
  issue(name: string, options?: { client?: boolean; untrusted?: boolean; subject?: string }): Pair
  /** The certificate's serial number as Node shows it (hex, upper case). */
  serial(pair: Pair | string): string
  /** Replaces `to`'s files with `from`'s the way a deploy does: write aside, then rename over. */
  install(from: Pair, to: Pair): void
  /** Deletes the directory, keys included (tests need not: it goes after the test file). */
  remove(): void
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function authority(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`], dir)
}

export function makePki(): Pki {
  const dir = tempDir('specserve-pki-')
  try {
    authority(dir, 'ca')
    authority(dir, 'stranger-ca')
  } catch (err) {
    removeTempDir(dir)
    throw err
  }
  const pki: Pki = {
    dir,
    ca: join(dir, 'ca.pem'),
    issue(name, options = {}) {
      const signer = options.untrusted ? 'stranger-ca' : 'ca'
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', options.subject ?? `/CN=${name}`], dir)
      const ext = options.client ? 'extendedKeyUsage=clientAuth\n' : 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
      writeFileSync(join(dir, `${name}.ext`), ext)
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir)
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) }
    },
    serial(pair) {
      const file = typeof pair === 'string' ? pair : pair.cert
      const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial'], { encoding: 'utf8' })
      return out.trim().replace(/^serial=/, '').toUpperCase()
    },
    install(from, to) {
      for (const [src, dst] of [[from.key, to.key], [from.cert, to.cert]] as const) {
        writeFileSync(`${dst}.new`, readFileSync(src))
        renameSync(`${dst}.new`, dst)
      }
    },
    remove: () => removeTempDir(dir),
  }
  return pki
}
