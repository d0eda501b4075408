// A real JWT issuer on a loopback port: keys generated with jose, a JWKS endpoint that
// counts its fetches, key rotation, and tokens signed as an identity provider would.
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'

export const ISSUER = 'https://idp.test/'
export const AUDIENCE = 'specserve'

interface SigningKey {
  readonly kid: string
  readonly alg: 'RS256' | 'ES256'
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
  readonly spki: string
}

export interface Issuer {
  readonly url: string
  /** JWKS fetches asked for so far (answered or not). */
  readonly fetches: () => number
  /** How the JWKS endpoint answers: the keys, 503, never (an issuer that accepts and hangs), or the keys padded to 2 MiB. */
  answer: 'keys' | 'error' | 'hang' | 'oversized'
  /** The key tokens are signed with now. */
  current: SigningKey
  /** Publishes a new key and signs with it from now on; `keepOld` leaves the old key in the JWKS. */
  rotate(alg?: 'RS256' | 'ES256', keepOld?: boolean): Promise<SigningKey>
  /** A token with these claims (defaults: iss, aud, sub, exp in 5 minutes; `sub: null` leaves sub out), signed with `key` (the current one). */
  sign(claims?: Record<string, unknown>, options?: { key?: SigningKey; expiresIn?: string | number; notBefore?: string | number }): Promise<string>
  close(): Promise<void>
}

let kids = 0

async function newKey(alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `k${++kids}`
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, spki: await exportSPKI(publicKey) }
}

export async function startIssuer(alg: 'RS256' | 'ES256' = 'RS256'): Promise<Issuer> {
  let published: SigningKey[] = [await newKey(alg)]
  let fetches = 0
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end()
      return
    }
    fetches++
    if (issuer.answer === 'hang') return
    if (issuer.answer === 'error') {
      res.writeHead(503).end()
      return
    }
    const pad = issuer.answer === 'oversized' ? { padding: 'x'.repeat(2 << 20) } : {}
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published.map((k) => k.publicJwk), ...pad }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const issuer: Issuer = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    answer: 'keys',
    current: published[0]!,
    async rotate(nextAlg = alg, keepOld = false) {
      const key = await newKey(nextAlg)
      published = keepOld ? [...published, key] : [key]
      issuer.current = key
      return key
    },
    async sign(claims = {}, options = {}) {
      const key = options.key ?? issuer.current
      const { sub, ...rest } = claims
      const jwt = new SignJWT({ scope: 'predict:*', ...rest })
        .setProtectedHeader({ alg: key.alg, kid: key.kid })
        .setIssuer((claims.iss as string | undefined) ?? ISSUER)
        .setAudience((claims.aud as string | undefined) ?? AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m')
      if (sub !== null) jwt.setSubject((sub as string | undefined) ?? 'alice')
      if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore)
      return jwt.sign(key.privateKey)
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
  return issuer
}
