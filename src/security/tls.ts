// TLS for both listeners: the certificate, key and client CA files of `server.tls`, read at
// start and read again when they change (a renewed certificate, a Kubernetes secret swapped
// under its symlinks). A new set is checked by building a secure context from it before any
// listener sees it: a half-written or mismatched pair is refused (and reported) and the
// previous one keeps serving. Listeners apply it to new handshakes only (Node's
// server.setSecureContext; grpc-js's credential watchers do the same on its http2 server), so
// connections already open are not dropped.
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import { ServerCredentials } from '@grpc/grpc-js'
import type { TlsConfig } from './config.ts'

export type TlsListener = (context: SecureContextOptions) => void

interface TlsFilesEvents {
  /** A changed set of files was applied. */
  reloaded: []
  /** A changed set of files was refused; the previous one keeps serving. */
  rejected: [Error]
}

export class TlsFiles extends EventEmitter<TlsFilesEvents> {
  readonly config: TlsConfig
  private current: SecureContextOptions
  private digest: string
  private readonly subscribers = new Set<TlsListener>()
  private readonly watchers: FSWatcher[] = []
  private timer: NodeJS.Timeout | undefined

  /** Reads the files now (throws if they do not make a secure context) and watches them until close(). */
  constructor(config: TlsConfig, debounceMs = 100) {
    super()
    this.config = config
    const read = this.read()
    createSecureContext(read.context)
    this.current = read.context
    this.digest = read.digest
    const names = new Set([config.cert, config.key, config.clientCa].filter((f): f is string => f !== undefined).map((f) => basename(f)))
    for (const dir of new Set([config.cert, config.key, config.clientCa].filter((f): f is string => f !== undefined).map((f) => dirname(f)))) {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        // Kubernetes swaps a "..data" symlink; other files in the directory are not ours.
        if (name !== null && !names.has(name) && !name.startsWith('..')) return
        clearTimeout(this.timer)
        this.timer = setTimeout(() => this.reload(), debounceMs)
      })
      watcher.on('error', (err) => this.emit('rejected', err))
      this.watchers.push(watcher)
    }
  }

  /** What a server is created with: the current files, and whether to ask for (and insist on) client certificates. */
  get serverOptions(): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
    return { ...this.current, requestCert: this.config.clientCa !== undefined, rejectUnauthorized: this.config.requireClientCert }
  }

  /** Calls `listener` with every set of files applied from now on; returns the unsubscribe. */
  subscribe(listener: TlsListener): () => void {
    this.subscribers.add(listener)
    return () => this.subscribers.delete(listener)
  }

  /** Reads the files again; applies them if they changed and make a secure context. Returns whether they were applied. */
  reload(): boolean {
    let read
    try {
      read = this.read()
      if (read.digest === this.digest) return false
      createSecureContext(read.context)
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
    for (const watcher of this.watchers) watcher.close()
    this.subscribers.clear()
  }

  private read(): { context: SecureContextOptions; digest: string } {
    const cert = readFileSync(this.config.cert)
    const key = readFileSync(this.config.key)
    const ca = this.config.clientCa === undefined ? undefined : readFileSync(this.config.clientCa)
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
    const { requestCert, rejectUnauthorized, ...context } = files.serverOptions
    super({ requestCert, rejectUnauthorized }, context)
    this.unsubscribe = files.subscribe((next) => this.updateSecureContextOptions(next))
  }

  _equals(other: ServerCredentials): boolean {
    return other === this
  }

  close(): void {
    this.unsubscribe()
  }
}
