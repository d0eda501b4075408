// A REST model's calls at its pool: at most pool_size at once, the rest waiting in order, and a
// waiting call leaves the queue when its signal aborts (undici's own queue kept it until a
// connection came, then closed that connection for it).
import { describe, expect, it } from 'vitest'
import { Slots } from '../../../src/executors/remote/slots.ts'

describe('Slots', () => {
  it('takes free slots at once, queues the rest in order, and gives a returned slot to the longest waiter', async () => {
    const slots = new Slots(2)
    const live = new AbortController().signal
    expect([slots.take(live), slots.take(live)]).toEqual([null, null])
    const order: string[] = []
    const first = slots.take(live)!.then(() => order.push('first'))
    const second = slots.take(live)!.then(() => order.push('second'))
    slots.give()
    await first
    expect(order).toEqual(['first'])
    slots.give()
    await second
    expect(order).toEqual(['first', 'second'])
    slots.give()
    slots.give()
    expect(slots.take(live)).toBeNull() // both back: free again
  })

  it('a waiter whose signal aborts rejects with its reason and gives up its place', async () => {
    const slots = new Slots(1)
    expect(slots.take(new AbortController().signal)).toBeNull()
    const leaving = new AbortController()
    const left = slots.take(leaving.signal)!
    const staying = slots.take(new AbortController().signal)!
    const reason = new Error('deadline')
    leaving.abort(reason)
    await expect(left).rejects.toBe(reason)
    slots.give()
    await expect(staying).resolves.toBeUndefined() // the slot went to the one still waiting
    const aborted = new AbortController()
    aborted.abort(reason)
    await expect(slots.take(aborted.signal)).rejects.toBe(reason)
  })
})
