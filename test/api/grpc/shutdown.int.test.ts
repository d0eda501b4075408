// Shutting the gRPC frontend down while streams are open (SIGTERM with a PredictStream
// client connected, a load balancer watching health): close(grace) lets calls finish for
// the grace, then cuts the rest, and resolves, so the CLI goes on to flush its outputs.
import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { openCalls } from '../../../src/api/grpc/open-calls.ts'
import { signals } from '../../starter/scripted.ts'
import { startHarness, xInput, type Harness } from './harness.ts'

let h: Harness | undefined

afterEach(async () => {
  h?.gatewayClient.close()
  h?.inferenceClient.close()
  await h?.gateway.close()
  h = undefined
})

const raw = (b: Buffer): Buffer => b

/** Resolves with the status a call ended with (its 'error' event, or OK on 'end'). */
function endOf(call: grpc.ClientDuplexStream<unknown, unknown> | grpc.ClientReadableStream<unknown>): Promise<number> {
  return new Promise((resolve) => {
    call.on('error', (err: grpc.ServiceError) => resolve(err.code))
    call.on('end', () => resolve(grpc.status.OK))
  })
}

describe('GrpcFrontend.close(grace)', () => {
  it('cuts an open PredictStream and a health Watch after the grace, and resolves', async () => {
    h = await startHarness()
    signals.clear()
    const stream = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>)(new grpc.Metadata())
    stream.on('data', () => {})
    const streamEnded = endOf(stream)
    stream.write({ id: 'held', ensemble: 'hanging', inputs: xInput }) // its model never answers; budget 5 s
    await vi.waitFor(() => expect(signals.get('hang')).toHaveLength(1))

    const health = new grpc.Client(h.address, grpc.credentials.createInsecure())
    const watch = health.makeServerStreamRequest('/grpc.health.v1.Health/Watch', raw, raw, Buffer.alloc(0)) // service "": the server as a whole
    const watchEnded = endOf(watch)
    await new Promise((resolve) => watch.once('data', resolve)) // SERVING: the watch is open

    await h.frontend.close(100)

    const cut = [grpc.status.CANCELLED, grpc.status.UNAVAILABLE]
    expect(cut).toContain(await streamEnded)
    expect(cut).toContain(await watchEnded)
    // The server side saw the call go too: the predict still running was cancelled.
    await vi.waitFor(() => expect(signals.get('hang')![0]!.aborted).toBe(true))
    health.close()
  }, 10_000)

  it('ends an idle PredictStream and a health Watch at once, UNAVAILABLE with specserve-code NOT_READY: they do not hold the grace', async () => {
    h = await startHarness()
    const stream = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>)(new grpc.Metadata())
    const streamStatus = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve))
    stream.on('error', () => {})
    const answered = new Promise((resolve) => stream.once('data', resolve))
    stream.write({ id: 'first', ensemble: 'fallback', inputs: xInput })
    await answered // answered: the stream is open and idle
    const health = new grpc.Client(h.address, grpc.credentials.createInsecure())
    const watch = health.makeServerStreamRequest('/grpc.health.v1.Health/Watch', raw, raw, Buffer.alloc(0))
    const watchStatus = new Promise<grpc.StatusObject>((resolve) => watch.on('status', resolve))
    watch.on('error', () => {})
    const statuses: Buffer[] = []
    await new Promise((resolve) => watch.once('data', resolve))
    watch.on('data', (b: Buffer) => statuses.push(b))

    h.frontend.setServing(false) // as the CLI's drain does, before close
    await h.frontend.close(60_000) // well past the test's timeout, were it waited for

    for (const status of [await streamStatus, await watchStatus]) {
      expect(status.code).toBe(grpc.status.UNAVAILABLE)
      expect(status.metadata.get('specserve-code')).toEqual(['NOT_READY'])
    }
    expect(statuses).toEqual([Buffer.from([0x08, 0x02])]) // NOT_SERVING came first
    health.close()
  }, 10_000)

  it('a stream with a message running at the stop answers it, then ends UNAVAILABLE', async () => {
    h = await startHarness()
    signals.clear()
    const stream = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, { id: string }>)(new grpc.Metadata())
    const seen: string[] = []
    stream.on('data', (reply: { id: string }) => seen.push(reply.id))
    stream.on('error', () => {})
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve))
    stream.write({ id: 'running', ensemble: 'late', inputs: xInput }) // its model never answers: decided at its 30 ms budget
    await vi.waitFor(() => expect(signals.get('hang')).toHaveLength(1))
    await h.frontend.close(60_000)
    expect((await ended).code).toBe(grpc.status.UNAVAILABLE)
    expect(seen).toEqual(['running'])
  }, 10_000)

  it('a stream that opens once the drain has begun (its guard check was still running) ends at once', async () => {
    h = await startHarness()
    openCalls(h.gateway).drain() // as close() does first, the listener still open
    const stream = (h.gatewayClient.PredictStream as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>)(new grpc.Metadata())
    stream.on('error', () => {})
    const status = await new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve))
    expect(status.code).toBe(grpc.status.UNAVAILABLE)
    expect(status.metadata.get('specserve-code')).toEqual(['NOT_READY'])
  }, 10_000)

  it('resolves at once when no call is open', async () => {
    h = await startHarness()
    await h.frontend.close(60_000)
  })
})
