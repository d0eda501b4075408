// The SHA-256 of a secret as bytes: what credentials are compared by, in constant time and at
// one length whatever the secret (the guard's API keys, the admin token without a guard).
import { createHash } from 'node:crypto'

export const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest()
