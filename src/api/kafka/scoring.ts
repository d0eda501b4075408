// One stream-mode message from request to answer: its predict runs through the gateway, and
// its answer, or its dead letter when it can never succeed, goes out through the sender. The
// partition bookkeeping around it (order, commits, in-flight limits) is the StreamScorer's.
import { delay } from '../../at-most.ts'
import { GatewayError } from '../../errors.ts'
import type { Gateway } from '../../gateway.ts'
import { messageBytes } from '../../kafka/client.ts'
import type { Run } from '../../starter/run.ts'
import type { PredictResult } from '../../types.ts'
import { parseJsonBytes, type JsonWords } from '../json-bytes.ts'
import { readPredict } from '../native/request.ts'
import { failureBody, resultBody } from '../native/result.ts'
import type { Msg } from './intake.ts'
import { type AnswerSender, keyTooLarge, MAX_KEY_BYTES } from './sender.ts'

/** A message without a value: read as no bytes (refused as empty). */
const EMPTY = Buffer.alloc(0)

/** How a message's refusals name its value: a native predict body, read as REST reads one. */
const MESSAGE_VALUE: JsonWords = { subject: 'message value', notJson: 'message value is not JSON', empty: 'message value is empty: expected a JSON predict request' }

/** Errors that depend on the gateway's state, not the message: retried, never dead-lettered. */
const TRANSIENT = new Set(['OVERLOADED', 'NOT_READY'])

export class MessageScoring {
  private readonly gateway: Gateway
  private readonly sender: AnswerSender
  private readonly maxRecordBytes: number
  /** True once shutdown began: a transient refusal is not retried then. */
  private readonly closing: () => boolean
  /** Predicts started from messages and not finished: cancelled when the grace period at shutdown runs out. */
  private readonly runs = new Set<Run>()

  constructor(gateway: Gateway, sender: AnswerSender, maxRecordBytes: number, closing: () => boolean) {
    this.gateway = gateway
    this.sender = sender
    this.maxRecordBytes = maxRecordBytes
    this.closing = closing
  }

  /** Cancels every predict still running (at shutdown): their messages end unanswered. */
  cancelAll(): void {
    for (const run of this.runs) run.cancel('stopping')
  }

  /** Never rejects. True once answered or dead-lettered; false when given up at shutdown (left uncommitted). */
  async score(message: Msg): Promise<boolean> {
    // Answered under its key, an oversized key would be refused or dominate every answer: the request is refused instead.
    if (keyTooLarge(message.key)) {
      return this.sender.deadLetter(message, 'PAYLOAD_TOO_LARGE', `the message key is ${message.key!.length} bytes, over the ${MAX_KEY_BYTES} bytes stream mode answers under`)
    }
    for (let attempt = 0; !this.closing(); attempt++) {
      let result: PredictResult
      try {
        const run = this.startPredict(message)
        this.runs.add(run)
        result = await run.result
        this.runs.delete(run)
      } catch (err) {
        // Not a GatewayError: a fault of ours, not the request's.
        const code = err instanceof GatewayError ? err.code : 'INTERNAL'
        if (TRANSIENT.has(code)) {
          await delay(Math.min(1000, 50 * 2 ** attempt))
          continue
        }
        return this.sender.deadLetter(message, code, (err as Error).message)
      }
      // Cancelled at shutdown: not an answer; the message is redelivered.
      if (result.error?.code === 'CANCELLED') return false
      // Ran, but every model queue was full: the gateway's state, not the message's. Tried again, as a refusal is.
      if (result.error && TRANSIENT.has(result.error.code)) {
        await delay(Math.min(1000, 50 * 2 ** attempt))
        continue
      }
      const answer = JSON.stringify(result.error ? failureBody(result) : resultBody(result))
      // The broker would refuse it at every retry, and the partition would stall behind it.
      const bytes = messageBytes(message.key, answer)
      if (bytes > this.maxRecordBytes) {
        return this.sender.deadLetter(message, 'RESPONSE_TOO_LARGE', `the answer is ${bytes} bytes, over output.kafka.max_record_bytes (${this.maxRecordBytes})`)
      }
      return this.sender.answer(message, answer)
    }
    return false
  }

  /** The message's predict, started; request errors throw GatewayError. */
  private startPredict(message: Msg): Run {
    const body = parseJsonBytes(message.value ?? EMPTY, MESSAGE_VALUE)
    const ensemble = (body as { ensemble?: unknown } | null)?.ensemble
    if (body === null || typeof body !== 'object' || Array.isArray(body) || typeof ensemble !== 'string') {
      throw new GatewayError('BAD_REQUEST', 'message value must be a JSON object: {"ensemble": s, "inputs": {...}, "budget_ms"?: n, "id"?: s}')
    }
    return this.gateway.start(readPredict(this.gateway, ensemble, body))
  }
}
