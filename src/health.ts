// `specserve health -c config.yaml`: the container's health check. It finds where the REST
// listener is (where serve announced it, else from the config the way serve reads it, with
// the same SPECSERVE_* environment overrides), asks that listener's GET /healthz (over
// loopback when it listens on every interface), over HTTPS when server.tls is set, and exits
// 0 on a 200, 1 otherwise with one line saying why.
import { readFileSync, realpathSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listenerAddress, type RawListener } from './config/listener.ts'
import { formatIssue, readYaml } from './config/yaml-document.ts'
import { announcedTarget } from './listener-file.ts'

/** Within Docker's own --timeout (6 s in deploy/Dockerfile), which also covers node's start. */
export const PROBE_TIMEOUT_MS = 3000

export interface ProbeTarget {
  /** The address the probe connects to: a loopback one when the gateway listens on every interface. */
  readonly host: string
  readonly port: number
  readonly tls: boolean
  /** server.tls.require_client_cert: a client without a certificate fails the handshake. */
  readonly mutualTls: boolean
}

/** `asked`: /healthz itself answered 200 (not only the TLS handshake). */
export type ProbeResult = { readonly ok: true; readonly note: string; readonly asked: boolean } | { readonly ok: false; readonly reason: string }

/** A client certificate for the probe (PEM files, from SPECSERVE_HEALTH_CERT and SPECSERVE_HEALTH_KEY). */
export interface ProbeCertificate {
  readonly cert: Buffer
  readonly key: Buffer
}

export const HEALTH_CERT_ENV = 'SPECSERVE_HEALTH_CERT'
export const HEALTH_KEY_ENV = 'SPECSERVE_HEALTH_KEY'

/**
 * The probe's client certificate, when both variables name one: with require_client_cert the
 * probe then gets through the handshake and asks /healthz itself. Throws what is wrong.
 */
export function probeCertificate(env: NodeJS.ProcessEnv = process.env): ProbeCertificate | undefined {
  const certFile = env[HEALTH_CERT_ENV]
  const keyFile = env[HEALTH_KEY_ENV]
  if (!certFile && !keyFile) return undefined
  if (!certFile || !keyFile) throw new Error(`${certFile ? HEALTH_CERT_ENV : HEALTH_KEY_ENV} is set without ${certFile ? HEALTH_KEY_ENV : HEALTH_CERT_ENV}: a client certificate needs both`)
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new Error(`cannot read ${name}=${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  return { cert: read(HEALTH_CERT_ENV, certFile), key: read(HEALTH_KEY_ENV, keyFile) }
}

/**
 * Where the REST listener is, read the way serve reads it (src/config/listener.ts: the same
 * SPECSERVE_* overrides) from the YAML alone: the probe runs at every interval inside the
 * container the gateway serves from, so it loads no gateway module (the full config parser
 * pulls in every executor and strategy: about 0.7 s of CPU per probe, against 0.15 s here), and the
 * file was checked when the gateway loaded it. Only `server` is read: a models section the
 * running gateway refused to reload (a typo in a watched file) must not make a gateway that is
 * serving look unhealthy.
 */
export function readTarget(file: string): ProbeTarget {
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`cannot read config: ${(err as Error).message}`, { cause: err })
  }
  // As the loader reads it; of its faults, only those in `server` (and a file that does not parse) stop the probe.
  const { value, issues } = readYaml(text)
  const [issue] = value === undefined ? issues : issues.filter((i) => i.path === 'server' || i.path.startsWith('server.'))
  if (issue) throw new Error(formatIssue(path, issue))
  const server = (value !== null && typeof value === 'object' ? (value as { server?: unknown }).server : undefined) ?? {}
  if (typeof server !== 'object' || server === null) throw new Error(`${path}: server: must be a mapping`)
  const raw = server as RawListener & { tls?: { require_client_cert?: unknown } | null }
  // The few fields read are checked here (the gateway checked the rest when it loaded the file).
  const port = raw.rest_port
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new Error(`${path}: server.rest_port: ${JSON.stringify(port)} is not a port (0 to 65535)`)
  if (raw.host !== undefined && typeof raw.host !== 'string') throw new Error(`${path}: server.host: ${JSON.stringify(raw.host)} is not a host name or address`)
  const problems: string[] = []
  const { host, restPort } = listenerAddress(raw, (message) => problems.push(message))
  if (problems.length) throw new Error(problems.join('; '))
  const tls = raw.tls !== undefined && raw.tls !== null
  return targetOf(host, restPort, tls ? { requireClientCert: raw.tls?.require_client_cert === true } : null)
}

/** The probe's target for a REST listener on `host`:`port`, with server.tls or without (null). */
export function targetOf(host: string, port: number, tls: { readonly requireClientCert: boolean } | null): ProbeTarget {
  // Listening on every interface includes loopback; a specific address (or name) is asked as is.
  const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return { host: probeHost, port, tls: tls !== null, mutualTls: tls?.requireClientCert ?? false }
}

/** The least time left worth asking again without the certificate: a loopback handshake takes a few ms, a busy box more. */
const MIN_SECOND_PROBE_MS = 500

const urlOf = (target: ProbeTarget): string => `${target.tls ? 'https' : 'http'}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}/healthz`

/** GET /healthz on the target (over TLS presenting `certificate`, if given); never rejects. */
export function probe(target: ProbeTarget, timeoutMs = PROBE_TIMEOUT_MS, certificate?: ProbeCertificate): Promise<ProbeResult> {
  const url = urlOf(target)
  const started = Date.now()
  return new Promise((resolve) => {
    // Settled once: an error after an answer (a reset once the 200 is in) changes nothing.
    let settled = false
    const settle = (result: ProbeResult): void => {
      if (settled) return
      settled = true
      resolve(result)
    }
    const options: RequestOptions = { host: target.host, port: target.port, path: '/healthz', agent: false, signal: AbortSignal.timeout(timeoutMs) }
    const answered = (res: IncomingMessage): void => {
      res.resume()
      const status = res.statusCode ?? 0
      if (status === 200) settle({ ok: true, note: `${url} answered 200`, asked: true })
      else settle({ ok: false, reason: `${url} answered ${status}${status === 401 || status === 403 ? `: the probe sends no API key or token${certificate ? ' (auth.client_certs does not name its certificate)' : ''}, and auth.anonymous leaves out health` : ''}` })
    }
    let req: ReturnType<typeof httpRequest>
    try {
      req = target.tls
        ? httpsRequest(
            {
              ...options,
              // The probe asks its own process over loopback: the certificate is for the names
              // clients use (loopback need not be one), often from a CA this node does not trust,
              // and the probe sends no token or data, so who answers is not checked; that it
              // answers (the listener accepts, the event loop runs) is what is checked.
              rejectUnauthorized: false,
              // TLS 1.3: a refusal for want of a client certificate comes as its own alert, after
              // the server has done its side of the handshake (see failed()).
              ...(target.mutualTls ? { minVersion: 'TLSv1.3' as const } : {}),
              ...(certificate ? { cert: certificate.cert, key: certificate.key } : {}),
            },
            answered,
          )
        : httpRequest(options, answered)
    } catch (err) {
      // Its own certificate is not one (not PEM, the key of another certificate): refused before connecting.
      return settle({ ok: false, reason: `cannot use ${HEALTH_CERT_ENV} and ${HEALTH_KEY_ENV}: ${oneLine(err as NodeJS.ErrnoException)}` })
    }
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      // TLS 1.3 sends a refusal of the client certificate after the client's side of the
      // handshake is done, so it often shows only as the connection reset under the request;
      // a listener going away does the same. Asked again without the certificate, a listener
      // that answers the handshake (and asks for one) refused this certificate.
      if (!(target.mutualTls && certificate && err.code === 'ECONNRESET')) return settle(failed(err, target, url, timeoutMs, certificate !== undefined))
      // Within the same time limit: the image's HEALTHCHECK gives the whole check one timeout.
      const left = timeoutMs - (Date.now() - started)
      if (left < MIN_SECOND_PROBE_MS) return settle({ ok: false, reason: `${url}: connection reset with the client certificate (${HEALTH_CERT_ENV}), too late to ask again without it` })
      void probe(target, left).then((bare) =>
        settle(
          bare.ok && bare.asked ? { ok: true, asked: true, note: `${bare.note} without the client certificate; it reset the connection that presented ${HEALTH_CERT_ENV}` }
          : bare.ok ? { ok: false, reason: `${url}: ${refusedCertificate('it answers a handshake without one, and reset the connection that presented it')}` }
          : { ok: false, reason: `${url}: connection reset, with the client certificate and without (${bare.reason.replace(`${url}: `, '')})` },
        ),
      )
    })
    req.end()
  })
}

function failed(err: NodeJS.ErrnoException, target: ProbeTarget, url: string, timeoutMs: number, withCertificate: boolean): ProbeResult {
  if (target.mutualTls && !withCertificate && err.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    // The probe has no client certificate: the listener completing its side of the handshake
    // and then asking for one is as far as it can get, and shows the process is answering.
    return { ok: true, asked: false, note: `${url}: the TLS handshake was answered; server.tls.require_client_cert refuses the probe (it has no client certificate: ${HEALTH_CERT_ENV} and ${HEALTH_KEY_ENV} give it one), so /healthz itself was not asked` }
  }
  // A certificate the listener refused (not from its client_ca): an operator who gave one wants /healthz asked.
  if (target.mutualTls && withCertificate && /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR)/.test(err.code ?? '')) {
    return { ok: false, reason: `${url}: ${refusedCertificate(oneLine(err))}` }
  }
  const why =
    err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within ${timeoutMs} ms`
    : err.code === 'ECONNREFUSED' ? 'connection refused (nothing listens there)'
    : err.code === 'ECONNRESET' && !target.tls ? 'connection reset (a listener with TLS? server.tls is not set in this config)'
    : oneLine(err) === 'wrong version number' ? 'the answer is not TLS (server.tls is set in this config: a listener without TLS?)'
    : oneLine(err)
  return { ok: false, reason: `${url}: ${why}` }
}

const refusedCertificate = (why: string): string => `the listener refused the probe's client certificate (${HEALTH_CERT_ENV}; is it issued by server.tls.client_ca?): ${why}`

/** OpenSSL's messages run over lines and name its source files: its reason alone, then. */
const oneLine = (err: NodeJS.ErrnoException & { reason?: string }): string =>
  err.reason ?? /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message.split('\n')[0]!

/**
 * The subcommand: 0 when the gateway's REST listener answers /healthz with 200, 1 otherwise.
 * `anyConfig`: the listener serve announced is asked whatever config it serves, `file` read
 * only when none is (the image's HEALTHCHECK: the container's gateway, whatever its -c).
 */
export async function healthMain(file: string, anyConfig = false): Promise<number> {
  let target: ProbeTarget
  try {
    target = announcedTarget(anyConfig ? undefined : file) ?? readTarget(file)
  } catch (err) {
    const issues = (err as Error).message
    console.error(`specserve health: cannot tell where the gateway listens: ${issues}`)
    return 1
  }
  if (target.port === 0) {
    console.error('specserve health: server.rest_port is 0 (a port the system picks): there is no known port to ask')
    return 1
  }
  let certificate: ProbeCertificate | undefined
  try {
    certificate = target.tls ? probeCertificate() : undefined
  } catch (err) {
    console.error(`specserve health: ${(err as Error).message}`)
    return 1
  }
  const result = await probe(target, PROBE_TIMEOUT_MS, certificate)
  if (result.ok) {
    console.log(`specserve health: ok: ${result.note}`)
    return 0
  }
  console.error(`specserve health: ${result.reason}`)
  return 1
}

// The image's HEALTHCHECK runs this file directly (`node src/health.ts --announced <config>`):
// through src/cli.ts every probe would first load every server module (several times the
// CPU), at every interval, inside the container the gateway serves from. `--announced`: the
// listener serve announced whatever config it serves (`docker run IMAGE serve -c
// /conf/x.yaml` is healthy too), `<config>` read only without one, as `specserve health
// --announced -c <config>` does; `node src/health.ts <config>` asks about that config only, as
// `specserve health -c <config>` does.
// (Not import.meta.main: on a node without it the check would do nothing and pass. The real
// path: node names the main module by it, while argv[1] may go through a symlink.)
if (isMain()) {
  const anyConfig = process.argv[2] === '--announced'
  process.exit(await healthMain(process.argv[anyConfig ? 3 : 2] ?? 'examples/demo.yaml', anyConfig))
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
  } catch {
    return false
  }
}
