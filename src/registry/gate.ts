// The validation gate a version passes before it serves: golden examples (every output
// must match) and/or a labeled data set scored for accuracy. Runs on the loaded executor,
// off the hot path, with the same inputs a client would send.
import { readFileSync } from 'node:fs'
import { argmaxRows, resolveVoteSource } from '../collectors/outputs.ts'
import { inferOffPath, type Executor } from '../executors/types.ts'
import { elementCount, flattenNested, isFloat, numberAt, tensorFromJson, type Failure, type Tensor, type TensorMap } from '../tensor/index.ts'
import type { ValidationSettings } from './config.ts'
import type { GateReport } from './version-meta.ts'

/** Floats match within rtol 1e-4 (plus 1e-6 absolute, for values at zero); labels exactly. */
const RTOL = 1e-4
const ATOL = 1e-6
/** One gate run's time limit per inference: a model that hangs is rejected, not waited for. */
const RUN_LIMIT_MS = 10_000
/** Data set rows in one run when the model takes a batch. */
const ROWS_PER_RUN = 256

const gateFailure: Failure = Object.freeze({ role: 'input', error: (message: string) => new Error(message) })

class GateFailed extends Error {}

async function run(executor: Executor, inputs: TensorMap, where: string): Promise<TensorMap> {
  try {
    // Needed, unlike a shadow (not spareable): a gate's runs age to the front rather than starve.
    return await inferOffPath(executor, inputs, RUN_LIMIT_MS, `no answer within ${RUN_LIMIT_MS / 1000} s`, false)
  } catch (err) {
    throw new GateFailed(`${where}: the model failed: ${(err as Error).message}`)
  }
}

function sameElements(actual: Tensor, expected: unknown, where: string): void {
  const flat = flattenNested(expected, gateFailure, 'expected').flat
  const count = elementCount(actual.shape)
  if (flat.length !== count) throw new GateFailed(`${where}: ${count} elements, expected ${flat.length}`)
  const float = isFloat(actual.datatype)
  for (let i = 0; i < count; i++) {
    const want = Number(flat[i])
    const got = numberAt(actual, i)
    const ok = float ? Math.abs(got - want) <= ATOL + RTOL * Math.abs(want) : got === want
    if (!ok) throw new GateFailed(`${where}: element ${i} is ${got}, expected ${want}`)
  }
}

/**
 * Every example must name at least one expected output, and the file must hold at least one
 * example: a gate that compares nothing would pass any model (a key misspelt `output`, an
 * empty file). A line that is not such an example is named by its file and line.
 */
async function checkExamples(executor: Executor, file: string): Promise<{ passed: number; total: number }> {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((text, i) => ({ text, line: i + 1 }))
    .filter(({ text }) => text.trim() !== '')
  if (lines.length === 0) throw new GateFailed(`examples ${file}: no examples, so nothing would be checked (one JSON object per line, with "inputs" and expected "outputs")`)
  const specs = executor.metadata().inputs
  let passed = 0
  for (const [i, { text, line }] of lines.entries()) {
    const where = `example ${i + 1}`
    const at = `${where} (${file} line ${line})`
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new GateFailed(`${at}: not JSON`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new GateFailed(`${at}: not a JSON object`)
    const example = parsed as { inputs?: Record<string, unknown>; outputs?: unknown }
    const expected = expectedOutputs(example.outputs)
    if (expected.length === 0) throw new GateFailed(`${at}: no expected "outputs" to compare, so it would check nothing (its keys: ${Object.keys(example).join(', ') || 'none'})`)
    const inputs: Record<string, Tensor> = {}
    try {
      for (const spec of specs) inputs[spec.name] = tensorFromJson(example.inputs?.[spec.name], spec, gateFailure)
    } catch (err) {
      throw new GateFailed(`${where}: ${(err as Error).message}`)
    }
    const outputs = await run(executor, inputs, where)
    for (const [name, value] of expected) {
      const actual = outputs[name]
      if (!actual) throw new GateFailed(`${where}: the model has no output "${name}"`)
      sameElements(actual, value, `${where}, output "${name}"`)
    }
    passed++
  }
  return { passed, total: lines.length }
}

/** An example's expected outputs, [name, value]: none when `outputs` is missing, empty or not an object. */
function expectedOutputs(outputs: unknown): [string, unknown][] {
  if (outputs === null || typeof outputs !== 'object' || Array.isArray(outputs)) return []
  return Object.entries(outputs)
}

/** A CSV of numbers with a header row: the label column and the features, in order. */
function readDataset(file: string, label: string): { features: number[][]; labels: string[] } {
  const [header, ...rows] = readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '')
  const columns = (header ?? '').split(',').map((c) => c.trim())
  const at = columns.indexOf(label)
  if (at < 0) throw new GateFailed(`data set ${file} has no column "${label}"`)
  const features: number[][] = []
  const labels: string[] = []
  for (const row of rows) {
    const cells = row.split(',')
    labels.push(String(Number(cells[at])))
    features.push(cells.filter((_, i) => i !== at).map(Number))
  }
  return { features, labels }
}

/** Each row's predicted label, as the data set writes labels: a label output, or the argmax of probabilities. */
function predictedLabels(outputs: TensorMap, source: { kind: 'label' | 'argmax'; name: string }, rows: number, where: string): string[] {
  const tensor = outputs[source.name]
  if (!tensor) throw new GateFailed(`${where}: the model gave no output "${source.name}"`)
  if (source.kind === 'argmax') return [...argmaxRows(tensor)].map(String)
  if (elementCount(tensor.shape) !== rows) throw new GateFailed(`${where}: ${elementCount(tensor.shape)} labels for ${rows} rows`)
  return Array.from({ length: rows }, (_, r) => String(numberAt(tensor, r)))
}

async function score(executor: Executor, dataset: NonNullable<ValidationSettings['dataset']>): Promise<{ accuracy: number; rows: number }> {
  const meta = executor.metadata()
  const input = meta.inputs[0]!
  const source = resolveVoteSource(meta.outputs)
  if (source.kind === 'invalid' || source.kind === 'regression') throw new GateFailed(`accuracy needs a label or probabilities output (${source.kind === 'invalid' ? source.message : `"${source.name}" is a value`})`)
  const { features, labels } = readDataset(dataset.path, dataset.label)
  // A dynamic batch dimension takes the rows many at a time: the gate of a slow model stays short.
  const perRun = input.shape[0] === -1 ? ROWS_PER_RUN : 1
  let correct = 0
  for (let start = 0; start < features.length; start += perRun) {
    const rows = features.slice(start, start + perRun)
    const where = `data set rows ${start + 1}-${start + rows.length}`
    const outputs = await run(executor, { [input.name]: tensorFromJson(rows, input, gateFailure) }, where)
    predictedLabels(outputs, source, rows.length, where).forEach((label, i) => {
      if (label === labels[start + i]) correct++
    })
  }
  return { accuracy: features.length ? correct / features.length : 0, rows: features.length }
}

/** Runs the gate; never throws: a failure is a report with its reason. */
export async function runGate(executor: Executor, settings: ValidationSettings): Promise<GateReport> {
  let examples: GateReport['examples'] = null
  let dataset: GateReport['dataset'] = null
  try {
    if (settings.examples) examples = await checkExamples(executor, settings.examples)
    if (settings.dataset) {
      const { accuracy, rows } = await score(executor, settings.dataset)
      dataset = { accuracy, min_accuracy: settings.dataset.minAccuracy, rows }
      if (accuracy < settings.dataset.minAccuracy) {
        return { passed: false, reason: `accuracy ${accuracy.toFixed(4)} on ${rows} rows is below min_accuracy ${settings.dataset.minAccuracy}`, examples, dataset }
      }
    }
    return { passed: true, reason: null, examples, dataset }
  } catch (err) {
    return { passed: false, reason: err instanceof GateFailed ? err.message : `gate failed: ${(err as Error).message}`, examples, dataset }
  }
}
