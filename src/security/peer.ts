// The verified client certificate of a caller's connection, as the subject `auth.client_certs`
// names (src/security/config.ts subjectKey). Only a certificate the handshake verified against
// server.tls.client_ca counts (`authorized`); an unverified one names nobody. Read only when
// the guard names callers by certificate and the request brings no bearer credentials.
import type { Socket } from 'node:net'
import { TLSSocket, type PeerCertificate } from 'node:tls'
import { subjectKey } from './config.ts'

/** REST: a connection's subject, read once per connection (its certificate does not change). */
const bySocket = new WeakMap<Socket, string | null>()

export function socketSubject(socket: Socket): string | undefined {
  let subject = bySocket.get(socket)
  if (subject === undefined) {
    subject = socket instanceof TLSSocket && socket.authorized ? certificateSubject(socket.getPeerCertificate()) : null
    bySocket.set(socket, subject)
  }
  return subject ?? undefined
}

/** A peer certificate's subject in subjectKey form; null without one. */
export function certificateSubject(cert: PeerCertificate | undefined): string | null {
  const subject = cert?.subject as Record<string, string | string[] | undefined> | undefined
  return subject ? subjectKey(Object.entries(subject)) : null
}
