// Connections a full listener dropped: counted per listener for /metrics and /readyz, and
// said in the log at most once every 10 s however fast they come.
import { EventEmitter } from 'node:events'
import type { Server } from 'node:net'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ListenerDrops } from '../src/listener-drops.ts'
import type { MetricsSink } from '../src/types.ts'

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('ListenerDrops', () => {
  it('counts each listener apart and warns at most every 10 s for each', () => {
    const drops = new ListenerDrops()
    const warned: unknown[] = []
    drops.logTo({ info() {}, warn: (obj) => void warned.push(obj), error() {} })
    expect(drops.status()).toBeUndefined() // /readyz leaves it out
    const rest = new EventEmitter()
    const grpc = new EventEmitter()
    drops.watch(rest as Server, 'rest', 30)
    drops.watch(grpc as Server, 'grpc', 5)
    for (let i = 0; i < 100; i++) rest.emit('drop')
    grpc.emit('drop')
    grpc.emit('drop')
    const first = [
      { listener: 'rest', limit: 30, dropped_total: 1 },
      { listener: 'grpc', limit: 5, dropped_total: 1 },
    ]
    expect(warned).toEqual(first)
    vi.advanceTimersByTime(9_999)
    grpc.emit('drop')
    expect(warned).toEqual(first)
    vi.advanceTimersByTime(1)
    grpc.emit('drop')
    expect(warned).toEqual([...first, { listener: 'grpc', limit: 5, dropped_total: 4 }])
    expect(drops.status()).toEqual({ dropped: { rest: 100, grpc: 4 } })
    const points: unknown[] = []
    drops.collect({ counter: (name: string, _help: string, p: readonly unknown[]) => void points.push(name, p) } as unknown as MetricsSink)
    expect(points).toEqual(['specserve_connections_dropped', [[{ listener: 'rest' }, 100], [{ listener: 'grpc' }, 4]]])
  })
})
