// A predict stream's messages that wait for the guard (a JWT not in the cache, verified while
// its key set is fetched) are bounded per call: at MAX_CHECKING of them the call is read no
// more, so a client cannot have every message it sends held and then started at once; it is
// read again once one is through, and stays paused while its replies wait for the client.
import type { ServerDuplexStream } from '@grpc/grpc-js'
import { EventEmitter } from 'node:events'
import { describe, expect, it, vi } from 'vitest'
import { MAX_CHECKING, serveStream, type StreamProtocol } from '../../../src/api/grpc/stream.ts'
import type { Gateway } from '../../../src/gateway.ts'
import { recheck } from '../../../src/security/grpc.ts'
import type { Principal } from '../../../src/security/guard.ts'

vi.mock('../../../src/security/grpc.ts', async (importOriginal) => ({ ...(await importOriginal<object>()), recheck: vi.fn() }))

/** The parts of grpc-js's duplex call a stream uses: whether it is read (pause, resume) is recorded. */
class FakeCall extends EventEmitter {
  readonly flow: string[] = []
  /** What write() returns: false once the client has stopped reading. */
  writable = true
  pause(): void {
    this.flow.push('pause')
  }
  resume(): void {
    this.flow.push('resume')
  }
  write(): boolean {
    return this.writable
  }
  getDeadline(): number {
    return Infinity
  }
  end(): void {}
  destroy(): void {}
}

const gateway = { startedWith: { server: { grpc_max_send_bytes: 1 << 20 } }, start: () => ({ result: new Promise(() => {}), cancel: () => {} }) } as unknown as Gateway
const protocol: StreamProtocol<object, object> = {
  ensembleOf: () => 'e',
  build: () => ({ request: { id: 'm', ensemble: 'e', inputs: {} }, respond: (result) => result }),
  failed: () => ({}),
  encode: () => Buffer.alloc(1),
}

/** A stream whose every message waits for the guard; `checks` settles them (true: let through, false: refused). */
function guardedStream(): { call: FakeCall; checks: ((admit: boolean) => void)[] } {
  const checks: ((admit: boolean) => void)[] = []
  vi.mocked(recheck).mockImplementation(
    () =>
      new Promise<Principal>((resolve, reject) => {
        checks.push((admit) => (admit ? resolve({ id: 'c', grants: [], bucket: null } as unknown as Principal) : reject(new Error('refused'))))
      }),
  )
  const call = new FakeCall()
  serveStream(gateway, protocol)(call as unknown as ServerDuplexStream<object, Buffer>)
  return { call, checks }
}

/** Lets the settled checks' callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('a predict stream whose messages wait for the guard', () => {
  it(`is read no more while ${MAX_CHECKING} of them wait, and again once one is through`, async () => {
    const { call, checks } = guardedStream()
    for (let i = 0; i < MAX_CHECKING - 1; i++) call.emit('data', {})
    expect(call.flow).toEqual([])
    call.emit('data', {})
    expect(call.flow).toEqual(['pause'])
    // Messages grpc-js had read already still come: they wait too, and the call stays paused.
    call.emit('data', {})
    checks[0]!(true)
    await settle()
    expect(call.flow).toEqual(['pause'])
    checks[1]!(false)
    await settle()
    expect(call.flow).toEqual(['pause', 'resume'])
  })

  it('stays paused while its replies wait for the client, whatever the guard does', async () => {
    const { call, checks } = guardedStream()
    for (let i = 0; i < MAX_CHECKING; i++) call.emit('data', {})
    // A refusal's reply is written while the client does not read: the call waits for 'drain' too.
    call.writable = false
    checks[0]!(false)
    await settle()
    expect(call.flow).toEqual(['pause'])
    call.writable = true
    call.emit('drain')
    expect(call.flow).toEqual(['pause', 'resume'])
  })
})
