// Tiny classifiers written as ONNX protobuf bytes by hand (no Python, no model file to
// commit), each with a cost or a failure that depends on its input, as a real model's can:
// input `input` [N, 4] FP32; outputs `label` [N] INT64 (argmax of columns 0-2) and
// `probabilities` [N, 3] FP32 (their softmax). Column 3 drives the rest: the length of a
// Range (which refuses a step of 0), the size of a matrix product, or a Loop's turns.
import { writeFileSync } from 'node:fs'
import { attr, graphAttr, graphBytes, initializer, modelBytes, node, ONNX_ELEM, valueInfo } from './onnx-proto.ts'

const { FP32: FLOAT, INT64, BOOL } = ONNX_ELEM

/** A model whose run fails when any row has -1 in column 3 (Range's step is its smallest value plus 1), stacked or not. */
export function writeFailingModel(path: string): void {
  writeClassifier(path, [
    node('Slice', ['input', 'col3_from', 'col3_to', 'axis'], ['poison']),
    node('ReduceMin', ['poison'], ['smallest'], [attr('keepdims', 0)]),
    node('Add', ['smallest', 'one'], ['delta']),
    node('Range', ['zero', 'one', 'delta'], ['steps']),
  ], [])
}

/**
 * A model whose run takes `steps` Range steps times (1 - the largest value of column 3): slow
 * on the zeros of a warm-up, free on a real input with 1 there. Its warm-up says nothing of
 * what it costs to serve.
 */
export function writeSlowOnZerosModel(path: string, steps: number): void {
  writeClassifier(path, [
    node('Slice', ['input', 'col3_from', 'col3_to', 'axis'], ['cost']),
    node('ReduceMax', ['cost'], ['largest'], [attr('keepdims', 0)]),
    node('Sub', ['one', 'largest'], ['share']),
    node('Mul', ['share', 'scale'], ['length']),
    node('Range', ['zero', 'length', 'one'], ['steps']),
  ], [initializer('scale', FLOAT, [steps])])
}

/**
 * A model whose run squares a K × K matrix of ones, K the largest value of column 3: free on
 * the zeros of a warm-up, seconds at a few thousand (K³ multiply-adds, 4K² bytes), a run no
 * deadline or signal can stop.
 */
export function writeCubicModel(path: string): void {
  writeClassifier(path, [
    node('Slice', ['input', 'col3_from', 'col3_to', 'axis'], ['cost']),
    node('ReduceMax', ['cost'], ['largest'], [attr('keepdims', 0)]),
    node('Cast', ['largest'], ['k'], [attr('to', INT64)]),
    node('Reshape', ['k', 'one_dim'], ['k1']),
    node('Concat', ['k1', 'k1'], ['square'], [attr('axis', 0)]),
    node('Expand', ['one', 'square'], ['matrix']),
    node('MatMul', ['matrix', 'matrix'], ['steps']),
  ], [initializer('one_dim', INT64, [1])])
}

/**
 * A model whose run takes `steps` Loop turns times the largest value of column 3 (none for 0
 * or less): free on the zeros of a warm-up and on most inputs, as long as asked on others,
 * with no memory to speak of. A Loop turn took 1.5-2.5 µs on the project's 2-core box.
 */
export function writeCostlyModel(path: string, steps: number): void {
  const body = graphBytes({
    // `one` is the outer graph's: a Loop's body sees it.
    nodes: [node('Identity', ['cond_in'], ['cond_out']), node('Add', ['acc_in', 'one'], ['acc_out'])],
    inputs: [valueInfo('i', INT64, []), valueInfo('cond_in', BOOL, []), valueInfo('acc_in', FLOAT, [])],
    outputs: [valueInfo('cond_out', BOOL, []), valueInfo('acc_out', FLOAT, [])],
  }, 'turns')
  writeClassifier(path, [
    node('Slice', ['input', 'col3_from', 'col3_to', 'axis'], ['cost']),
    node('ReduceMax', ['cost'], ['largest'], [attr('keepdims', 0)]),
    node('Mul', ['largest', 'scale'], ['length']),
    node('Relu', ['length'], ['turns_f']),
    node('Cast', ['turns_f'], ['turns'], [attr('to', INT64)]),
    node('Loop', ['turns', '', 'zero'], ['steps'], [graphAttr('body', body)]),
  ], [initializer('scale', FLOAT, [steps])])
}

/** The classifier around `work`, nodes ending in a `steps` tensor whose sum, times 0, is added to the probabilities. */
function writeClassifier(path: string, work: Buffer[], extra: Buffer[]): void {
  const inits = [
    initializer('zero', FLOAT, [0]),
    initializer('one', FLOAT, [1]),
    initializer('axis', INT64, [1]),
    initializer('logits_from', INT64, [0]),
    initializer('logits_to', INT64, [3]),
    initializer('col3_from', INT64, [3]),
    initializer('col3_to', INT64, [4]),
    ...extra,
  ]
  const nodes = [
    ...work,
    node('ReduceSum', ['steps'], ['sum'], [attr('keepdims', 0)]),
    node('Mul', ['sum', 'zero'], ['nothing']),
    node('Slice', ['input', 'logits_from', 'logits_to', 'axis'], ['logits']),
    node('Softmax', ['logits'], ['soft'], [attr('axis', 1)]),
    node('Add', ['soft', 'nothing'], ['probabilities']),
    node('ArgMax', ['probabilities'], ['label'], [attr('axis', 1), attr('keepdims', 0)]),
  ]
  const inputs = [valueInfo('input', FLOAT, ['N', 4])]
  const outputs = [valueInfo('label', INT64, ['N']), valueInfo('probabilities', FLOAT, ['N', 3])]
  writeFileSync(path, modelBytes({ nodes, initializers: inits, inputs, outputs }))
}
