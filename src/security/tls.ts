// TLS for both listeners: the certificate, key and client CA files of `server.tls`, read at
// start and read again when they change (a renewed certificate, a Kubernetes secret swapped
// under its symlinks, a file written where a configured symlink points). A set is checked
// (checkTlsFiles: at config load, at start, at each change) before any listener sees it: a
// half-written or mismatched pair, or a client CA that is not PEM, is refused (and reported)
// and the previous one keeps serving. Listeners apply it to new handshakes only (Node's
// server.setSecureContext; grpc-js's credential watchers do the same on its http2 server), so
// connections already open are not dropped.
import { createHash, X509Certificate } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { ServerCredentials } from '@grpc/grpc-js'
import { watchFile, type FileWatch } from '../reload/watch.ts'
import type { TlsConfig } from './config.ts'

export type TlsListener = (context: SecureContextOptions) => void

/** The `server.tls` key a problem with its files is reported at. */
export type TlsField = 'cert' | 'key' | 'client_ca'

/** What checkTlsFiles found wrong with a set of files: every problem, each at its key. */
export class TlsFilesError extends Error {
  readonly problems: readonly { field: TlsField; message: string }[]

  constructor(problems: { field: TlsField; message: string }[]) {
    super(problems.map((p) => p.message).join('; '))
    this.name = 'TlsFilesError'
    this.problems = problems
  }
}

/**
 * Reads the files of `config` and checks them as a listener uses them (a certificate not PEM or
 * a key not its own crashed serve with a stack; a client CA file without a certificate failed
 * every client certificate, silently). Throws a TlsFilesError listing every problem.
 */
export function checkTlsFiles(config: TlsConfig): { cert: Buffer; key: Buffer; ca: Buffer | undefined } {
  const problems: { field: TlsField; message: string }[] = []
  const read = (field: TlsField, file: string): Buffer | undefined => {
    try {
      return readFileSync(file)
    } catch {
      return void problems.push({ field, message: `cannot read ${file}` })
    }
  }
  const cert = read('cert', config.cert)
  const key = read('key', config.key)
  const ca = config.clientCa === undefined ? undefined : read('client_ca', config.clientCa)
  const certOk = cert !== undefined && pemCertificates('cert', config.cert, cert, problems)
  if (certOk && key !== undefined) {
    try {
      createSecureContext({ cert, key })
    } catch (err) {
      problems.push({ field: 'key', message: `${config.key} is not a PEM private key of the certificate in ${config.cert}: ${(err as Error).message}` })
    }
  }
  if (ca !== undefined && pemCertificates('client_ca', config.clientCa!, ca, problems) && problems.length === 0) {
    try {
      createSecureContext({ cert, key, ca })
    } catch (err) {
      problems.push({ field: 'client_ca', message: `${config.clientCa} cannot be used as a CA: ${(err as Error).message}` })
    }
  }
  if (problems.length > 0) throw new TlsFilesError(problems)
  return { cert: cert!, key: key!, ca }
}

/** Whether `bytes` hold PEM certificates, every one of them readable; a problem at `field` if not. */
function pemCertificates(field: TlsField, file: string, bytes: Buffer, problems: { field: TlsField; message: string }[]): boolean {
  const blocks = bytes.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)
  if (!blocks) {
    problems.push({ field, message: `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` })
    return false
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block)
    } catch (err) {
      problems.push({ field, message: `${file}: certificate ${i + 1} of ${blocks.length} cannot be read: ${(err as Error).message}` })
      return false
    }
  }
  return true
}

interface TlsFilesEvents {
  /** A changed set of files was applied. */
  reloaded: []
  /** A changed set of files was refused; the previous one keeps serving. */
  rejected: [Error]
}

export class TlsFiles extends EventEmitter<TlsFilesEvents> {
  readonly config: TlsConfig
  /** Node's handshakeTimeout for every listener: server.headers_timeout_ms, not Node's 120 s. */
  private readonly handshakeTimeoutMs: number
  private current: SecureContextOptions
  private digest: string
  private readonly subscribers = new Set<TlsListener>()
  private readonly watches: FileWatch[] = []
  private timer: NodeJS.Timeout | undefined

  /**
   * Reads the files now (throws a TlsFilesError if they fail checkTlsFiles) and watches them
   * until close(). A handshake not done within `handshakeTimeoutMs` is dropped.
   */
  constructor(config: TlsConfig, handshakeTimeoutMs: number, debounceMs = 100) {
    super()
    this.config = config
    this.handshakeTimeoutMs = handshakeTimeoutMs
    const read = this.read()
    this.current = read.context
    this.digest = read.digest
    const changed = (): void => {
      clearTimeout(this.timer)
      this.timer = setTimeout(() => this.reload(), debounceMs)
    }
    // Each file's directory (Kubernetes' "..data" swap included), and, for a file that is a
    // symlink, the directory of every link of its chain and of its target (reload/watch.ts):
    // a renewal written where the link points is a change too.
    const failed = (err: unknown): void => {
      // Said once the listener has subscribed (a watch that cannot start fails here, in the constructor).
      process.nextTick(() => this.emit('rejected', err instanceof Error ? err : new Error(String(err))))
    }
    for (const file of new Set([config.cert, config.key, config.clientCa].filter((f): f is string => f !== undefined))) {
      this.watches.push(watchFile(file, changed, failed))
    }
  }

  /** What a server is created with: the current files, whether to ask for (and insist on) client certificates, and its handshake timeout. */
  get serverOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean; handshakeTimeout: number } {
    return { ...this.current, requestCert: this.config.clientCa !== undefined, rejectUnauthorized: this.config.requireClientCert, handshakeTimeout: this.handshakeTimeoutMs }
  }

  /** Calls `listener` with every set of files applied from now on; returns the unsubscribe. */
  subscribe(listener: TlsListener): () => void {
    this.subscribers.add(listener)
    return () => this.subscribers.delete(listener)
  }

  /** Reads the files again; applies them if they changed and pass checkTlsFiles. Returns whether they were applied. */
  reload(): boolean {
    let read
    try {
      read = this.read()
      if (read.digest === this.digest) return false
    } catch (err) {
      this.emit('rejected', err as Error)
      return false
    }
    this.current = read.context
    this.digest = read.digest
    for (const listener of this.subscribers) listener(read.context)
    this.emit('reloaded')
    return true
  }

  close(): void {
    clearTimeout(this.timer)
    for (const watch of this.watches) watch.close()
    this.subscribers.clear()
  }

  private read(): { context: SecureContextOptions; digest: string } {
    const { cert, key, ca } = checkTlsFiles(this.config)
    const hash = createHash('sha256').update(cert).update(key)
    if (ca) hash.update(ca)
    return { context: ca ? { cert, key, ca } : { cert, key }, digest: hash.digest('hex') }
  }
}

/**
 * grpc-js server credentials that follow the files: grpc-js gives each listener's http2
 * server a watcher on its credentials, which it calls with new context options (it calls
 * setSecureContext). Public extension point: ServerCredentials is grpc-js's exported base class.
 */
export class WatchedServerCredentials extends ServerCredentials {
  private readonly unsubscribe: () => void

  constructor(files: TlsFiles) {
    // grpc-js spreads the constructor options into http2.createSecureServer: the handshake timeout goes there.
    const { requestCert, rejectUnauthorized, handshakeTimeout, ...context } = files.serverOptions
    super({ requestCert, rejectUnauthorized, handshakeTimeout }, context)
    this.unsubscribe = files.subscribe((next) => this.updateSecureContextOptions(next))
  }

  _equals(other: ServerCredentials): boolean {
    return other === this
  }

  close(): void {
    this.unsubscribe()
  }
}
