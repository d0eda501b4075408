// A gateway on scripted executors and a fake clock, for the starter's lifecycle tests: every
// time is exact, not a wall-clock bound. `useFakeClock()` registers the hooks that set the
// clock up and close the gateway after each test.
import { afterEach, beforeEach, vi } from 'vitest'
import { Gateway } from '../../src/gateway.ts'
import type { PredictResult } from '../../src/types.ts'
import { configFrom } from '../helpers.ts'
import { signals, x } from './scripted.ts'

const gateways: Gateway[] = []

export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] })
  })
  afterEach(async () => {
    vi.useRealTimers()
    await Promise.all(gateways.splice(0).map((g) => g.close()))
    signals.clear()
  })
}

/** A loaded gateway with the given models and one ensemble `e` (YAML fragments). */
export async function serve(models: string, ensemble: string, server = ''): Promise<Gateway> {
  const gateway = new Gateway(configFrom(`${server}models:\n${models}\nensembles:\n  e:\n${ensemble}\n`))
  gateways.push(gateway)
  await gateway.load()
  return gateway
}

/** Starts a predict (with the ensemble's default budget unless given) and lets `ms` of fake time pass; the result must be in by then. */
export async function predictAfter(g: Gateway, ms: number, id = 'r', budgetMs?: number): Promise<PredictResult> {
  let result: PredictResult | undefined
  void g.predict({ id, ensemble: 'e', inputs: x, budgetMs }).then((r) => (result = r))
  await vi.advanceTimersByTimeAsync(ms)
  if (!result) throw new Error(`no result after ${ms} ms`)
  return result
}
