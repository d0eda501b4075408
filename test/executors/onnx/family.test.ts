// Model families read from the demo models' ONNX graphs (models/train.py exports them with
// skl2onnx), and the rule that names a family from a graph's operators.
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { familyOf, graphOpTypes, modelFamily } from '../../../src/executors/onnx/family.ts'
import { root } from '../../helpers.ts'
import { tempDir } from '../../temp-dirs.ts'

const demo = (name: string): string => join(root, 'models', `${name}.onnx`)

describe('model families', () => {
  it('tells the demo models apart by the operators of their graphs', () => {
    const families = Object.fromEntries(
      ['cancer_gbdt', 'cancer_logreg', 'cancer_mlp', 'cancer_slow', 'diabetes_knn', 'diabetes_linear', 'diabetes_tree', 'digits_logreg', 'digits_mlp', 'digits_rf', 'wine_knn', 'wine_rf', 'wine_tree'].map((m) => [m, modelFamily(demo(m))]),
    )
    expect(families).toEqual({
      cancer_gbdt: 'trees',
      cancer_logreg: 'linear',
      cancer_mlp: 'neural',
      // Logistic regression with a slow side computation (a Loop of MatMul + Tanh) grafted in: still linear.
      cancer_slow: 'linear',
      diabetes_knn: 'knn',
      diabetes_linear: 'linear',
      diabetes_tree: 'trees',
      digits_logreg: 'linear',
      digits_mlp: 'neural',
      digits_rf: 'trees',
      wine_knn: 'knn',
      wine_rf: 'trees',
      wine_tree: 'trees',
    })
  })

  it('reads the top-level nodes in order, not a subgraph\'s', () => {
    const ops = graphOpTypes(readFileSync(demo('cancer_slow')))
    expect(ops).toContain('Loop')
    expect(ops).toContain('LinearClassifier')
    expect(ops).not.toContain('MatMul') // inside the Loop's body
    expect(graphOpTypes(readFileSync(demo('diabetes_linear')))).toEqual(['LinearRegressor'])
  })

  it('names networks by their layers, and an estimator operator before anything else', () => {
    expect(familyOf(['Gemm', 'Relu', 'Gemm', 'Softmax'])).toBe('neural')
    expect(familyOf(['Conv', 'Relu', 'GlobalAveragePool', 'Flatten'])).toBe('neural')
    expect(familyOf(['Gemm', 'Sigmoid'])).toBe('linear')
    expect(familyOf(['Scaler', 'SVMClassifier'])).toBe('svm')
    expect(familyOf(['Sub', 'ReduceSumSquare', 'TopK', 'ArrayFeatureExtractor'])).toBe('knn')
    expect(familyOf(['Add', 'Identity'])).toBe('unknown')
  })

  it('says unknown for a file that is not an ONNX model', () => {
    const file = join(tempDir('specserve-family-'), 'x.onnx')
    writeFileSync(file, Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]))
    expect(modelFamily(file)).toBe('unknown')
    expect(modelFamily(join(tmpdir(), 'no-such-file.onnx'))).toBe('unknown')
  })
})
