// What `last_error` says of the client's nested errors: the last attempt's cause, with the
// broker's error id, not the first attempt's nor only the outermost "failed" line.
import { describe, expect, it } from 'vitest'
import { errorMessage } from '../../src/kafka/client.ts'

const attempt = (message: string, inner: object): object => Object.assign(new AggregateError([inner], message))

describe('errorMessage', () => {
  it("follows the client's retries to the last attempt's cause", () => {
    const fenced = Object.assign(new Error('Received response with error while executing API Fetch(v17)'), { apiId: 'FENCED_LEADER_EPOCH' })
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' })
    const err = new AggregateError([attempt('Fetch failed.', fenced), attempt('Fetch failed.', refused)], 'fetch failed 2 times.')
    expect(errorMessage(err)).toBe('fetch failed 2 times: Fetch failed: connect ECONNREFUSED 127.0.0.1:9092')
  })

  it("names the broker's error id, and a plain error by its message", () => {
    const tooLarge = Object.assign(new Error('Received response with error while executing API Produce(v9)'), { apiId: 'MESSAGE_TOO_LARGE' })
    expect(errorMessage(new AggregateError([tooLarge], 'Producing messages failed.'))).toBe('Producing messages failed: Received response with error while executing API Produce(v9) (MESSAGE_TOO_LARGE)')
    expect(errorMessage(new Error('boom'))).toBe('boom')
    expect(errorMessage('text')).toBe('text')
  })
})
