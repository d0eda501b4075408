// A model's family (trees, linear, kNN, SVM, neural), read from the operators of its ONNX
// graph. Families are confident in different ways (a forest's vote shares, a kNN's neighbour
// counts, a network's softmax), so best-quality comparing raw maximum probabilities across
// families rewards whichever is least calibrated; within one family the comparison is fair.
// Only the top-level graph's node types are read (onnx.proto: ModelProto.graph = 7,
// GraphProto.node = 1, NodeProto.op_type = 4): the estimator is there, and a subgraph (a
// Loop's body) is a side computation, not the model's kind.
import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'
import { eachFieldOf, MODEL_GRAPH } from './graph.ts'

export const FAMILIES = ['trees', 'linear', 'knn', 'svm', 'neural', 'unknown'] as const
export type ModelFamily = (typeof FAMILIES)[number]

const GRAPH_NODE = 1
const NODE_OP_TYPE = 4

/** The op types of the top-level graph's nodes, in order. */
export function graphOpTypes(bytes: Uint8Array): string[] {
  const ops: string[] = []
  const reader = protobuf.Reader.create(bytes)
  eachFieldOf(reader, reader.len, MODEL_GRAPH, (graphEnd) =>
    eachFieldOf(reader, graphEnd, GRAPH_NODE, (nodeEnd) =>
      eachFieldOf(reader, nodeEnd, NODE_OP_TYPE, (opEnd) => ops.push(protobuf.util.utf8.read(reader.buf, reader.pos, opEnd))),
    ),
  )
  return ops
}

/**
 * The family its operators say: a scikit-learn-style estimator operator first (tree
 * ensembles, SVMs, kNN's TopK over distances, linear models), else the shape of the network:
 * two or more MatMul/Gemm or a convolution is a neural network, one is a linear model.
 */
export function familyOf(ops: readonly string[]): ModelFamily {
  const has = (prefix: string): boolean => ops.some((op) => op.startsWith(prefix))
  if (has('TreeEnsemble')) return 'trees'
  if (has('SVM')) return 'svm'
  if (has('TopK')) return 'knn'
  if (has('LinearClassifier') || has('LinearRegressor')) return 'linear'
  const layers = ops.filter((op) => op === 'MatMul' || op === 'Gemm').length
  if (layers >= 2 || has('Conv')) return 'neural'
  return layers === 1 ? 'linear' : 'unknown'
}

/** The family of the model in an ONNX file ('unknown' when it cannot be read). */
export function modelFamily(path: string): ModelFamily {
  try {
    return familyOf(graphOpTypes(readFileSync(path)))
  } catch {
    return 'unknown'
  }
}
