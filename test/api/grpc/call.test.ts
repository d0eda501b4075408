// The part of a gRPC call's deadline kept back for the reply: an answer decided exactly at
// the client's deadline would arrive after it.
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { deadlineBudget, replyMargin } from '../../../src/api/grpc/call.ts'

describe('the reply margin of a gRPC deadline', () => {
  it('keeps 10% of the time left, at least 5 ms and at most 50 ms, never more than half', () => {
    expect(replyMargin(300)).toBe(30)
    expect(replyMargin(20)).toBe(5)
    expect(replyMargin(8)).toBe(4)
    expect(replyMargin(2000)).toBe(50)
  })

  it('turns the call deadline into a budget, and no deadline into none', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => void vi.useRealTimers())
    expect(deadlineBudget({ getDeadline: () => Date.now() + 900 })).toBe(850)
    expect(deadlineBudget({ getDeadline: () => new Date(Date.now() + 300) })).toBe(270)
    expect(deadlineBudget({ getDeadline: () => Infinity })).toBeUndefined()
  })
})
