// V2 ModelInfer: grpc_predict_v2.proto says that when raw_input_contents is used, no input
// may carry `contents`. Such a request is refused (BAD_INPUT, as Triton refuses it), never
// answered from one of the two: before, the contents were dropped without a word.
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { samples } from '../../helpers.ts'
import { failure, startHarness, trailerCode, unary, type Harness } from './harness.ts'

let h: Harness
const row = samples('cancer').rows[0]!
const raw = Buffer.from(new Float32Array(row).buffer)
const input = (extra: object) => ({ name: 'input', datatype: 'FP32', shape: [1, 30], ...extra })
const both = { model_name: 'cancer', inputs: [input({ contents: { fp32_contents: row.map((v) => v * 100) } })], raw_input_contents: [raw] }
const MESSAGE = /input "input" has contents and the request has raw_input_contents/

beforeAll(async () => {
  h = await startHarness()
})
afterAll(async () => h?.close())

describe('ModelInfer with both contents and raw_input_contents', () => {
  it('is INVALID_ARGUMENT (BAD_INPUT) on a unary call', async () => {
    const err = await failure(unary(h.inferenceClient, 'ModelInfer', both))
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(err.details).toMatch(MESSAGE)
    expect(trailerCode(err)).toBe('BAD_INPUT')
  })

  it('is a BAD_INPUT error reply on ModelStreamInfer', async () => {
    type Reply = { error_message: string; infer_response: { id: string } | null }
    const stream = (h.inferenceClient.ModelStreamInfer as () => grpc.ClientDuplexStream<object, Reply>)()
    const replies: Reply[] = []
    stream.on('data', (r: Reply) => replies.push(r))
    const ended = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject))
    stream.end({ ...both, id: 'both' })
    await ended
    expect(replies).toHaveLength(1)
    expect(replies[0]!.error_message).toMatch(/^BAD_INPUT: /)
    expect(replies[0]!.error_message).toMatch(MESSAGE)
    expect(replies[0]!.infer_response?.id).toBe('both')
  })

  it('still takes raw contents alone, or beside an empty contents message', async () => {
    const alone = await unary<{ raw_output_contents: Buffer[] }>(h.inferenceClient, 'ModelInfer', { ...both, inputs: [input({})] })
    const empty = await unary<{ raw_output_contents: Buffer[] }>(h.inferenceClient, 'ModelInfer', { ...both, inputs: [input({ contents: {} })] })
    expect(alone.raw_output_contents.length).toBeGreaterThan(0)
    expect(empty.raw_output_contents).toEqual(alone.raw_output_contents)
  })
})
