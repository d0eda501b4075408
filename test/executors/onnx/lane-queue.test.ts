// The order a model's jobs wait in (lane-queue.ts): earliest deadline first without batching,
// arrival order with it, and, with it, the earliest deadline among them kept up to date.
import { describe, expect, it } from 'vitest'
import { LaneQueue } from '../../../src/executors/onnx/lane-queue.ts'
import type { Job } from '../../../src/executors/onnx/lane.ts'

let made = 0
const job = (deadline: number): Job => ({ deadline, enqueuedAt: made++ }) as unknown as Job
const deadlines = (queue: LaneQueue): number[] => Array.from({ length: queue.length }, (_, i) => queue.at(i)!.deadline)

describe("a model's queue", () => {
  it('without batching, puts a short-budget job ahead of the long-budget ones queued before it, ties in arrival order', () => {
    const queue = new LaneQueue(false)
    const first = job(500)
    const second = job(500)
    for (const j of [job(900), first, job(100), second, job(1000)]) queue.push(j)
    expect(deadlines(queue)).toEqual([100, 500, 500, 900, 1000])
    expect(queue.at(1)).toBe(first)
    expect(queue.at(2)).toBe(second)
    expect(queue.earliest()!.deadline).toBe(100)
    expect(queue.shift()!.deadline).toBe(100)
    expect(queue.remove(second)).toBe(true)
    expect(queue.remove(second)).toBe(false)
    expect(deadlines(queue)).toEqual([500, 900, 1000])
  })

  it('with batching, keeps arrival order and always knows the earliest deadline, whatever comes, goes or is cancelled', () => {
    const queue = new LaneQueue(true)
    let seed = 7
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const mirror: Job[] = []
    for (let step = 0; step < 5000; step++) {
      const r = random()
      if (r < 0.5 || mirror.length === 0) {
        const j = job(Math.floor(random() * 100))
        queue.push(j)
        mirror.push(j)
      } else if (r < 0.85) {
        expect(queue.shift()).toBe(mirror.shift())
      } else {
        const j = mirror.splice(Math.floor(random() * mirror.length), 1)[0]!
        expect(queue.remove(j)).toBe(true)
      }
      expect(queue.peek()).toBe(mirror[0])
      expect(queue.earliest()?.deadline).toBe(mirror.length ? Math.min(...mirror.map((j) => j.deadline)) : undefined)
    }
    expect(queue.drain()).toEqual(mirror)
    expect(queue.earliest()).toBeUndefined()
  })
})
