// Which ensembles a labeled data set fits: eval feeds the feature columns as one [1, F] float
// tensor, so an ensemble fits when its one input is that wide. Without --ensembles, eval
// scores every ensemble the data set fits; that is decided here, before the run's budgets are
// checked and its models loaded, from one member of each ensemble (its siblings must agree
// on inputs, which the run's load checks).
import type { GatewayConfig } from '../config/load.ts'
import { ModelRuntimes } from '../model-runtimes.ts'
import { DATATYPES, formatShape, type TensorSpec } from '../tensor/index.ts'
import { EvalInputError, type LabeledData } from './data.ts'
import { count } from '../plural.ts'

/** The ensemble's one input, as wide as the data set's feature columns; an error at the header line otherwise. */
export function featureInput(name: string, inputs: readonly TensorSpec[], data: LabeledData): TensorSpec {
  if (inputs.length !== 1) {
    throw new EvalInputError(`${data.file}:1: ensemble "${name}" takes ${inputs.length} inputs (${inputs.map((s) => s.name).join(', ')}); eval feeds one [1, F] tensor of the feature columns`)
  }
  const spec = inputs[0]!
  const width = spec.shape[spec.shape.length - 1]
  // A tensor of any rank takes the [1, F] rows as it takes any shape.
  if (!spec.anyRank && (spec.shape.length !== 2 || (width !== undefined && width >= 0 && width !== data.features.length))) {
    const which = data.selected ? `--columns ${data.features.join(',')}` : `all but "${data.label}"`
    throw new EvalInputError(`${data.file}:1: ${count(data.features.length, 'feature column')} (${which}), but ensemble "${name}" takes input "${spec.name}" ${spec.datatype} ${formatShape(spec.shape)}`)
  }
  if (DATATYPES[spec.datatype].kind !== 'float') throw new EvalInputError(`ensemble "${name}": input "${spec.name}" is ${spec.datatype}; eval feeds float features`)
  return spec
}

const anyWidth = (inputs: readonly TensorSpec[]): boolean => inputs.length === 1 && (inputs[0]!.shape.at(-1) ?? 0) < 0

function fits(name: string, inputs: readonly TensorSpec[], data: LabeledData): boolean {
  try {
    featureInput(name, inputs, data)
    return true
  } catch {
    return false
  }
}

/**
 * The ensembles of the config the data set fits, in config order. Each ensemble's inputs are
 * read from its first member that loads and has a fixed width (or the last that loads), embedded (ONNX) members first, each model loaded at
 * most once and closed again: an ensemble that does not fit has no other member loaded (an
 * unreachable remote one among them is never asked). An ensemble none of whose members loads
 * is kept: whether it fits is unknown, and the run's load then reports why.
 */
export async function fittingEnsembles(config: GatewayConfig, data: LabeledData): Promise<string[]> {
  const runtimes = new ModelRuntimes(config)
  const inputs = new Map<string, readonly TensorSpec[] | null>()
  const inputsOf = async (model: string): Promise<readonly TensorSpec[] | null> => {
    if (!inputs.has(model)) {
      const { executor } = runtimes.create(config.models.get(model)!, '')
      try {
        await executor.load()
        inputs.set(model, executor.metadata().inputs)
      } catch {
        inputs.set(model, null)
      } finally {
        await executor.close().catch(() => undefined)
      }
    }
    return inputs.get(model)!
  }
  const embeddedFirst = (a: string, b: string): number => Number(config.models.get(a)!.kind !== 'onnx') - Number(config.models.get(b)!.kind !== 'onnx')
  const chosen: string[] = []
  try {
    for (const [name, ens] of config.ensembles) {
      let known: readonly TensorSpec[] | null = null
      for (const model of [...ens.models].sort(embeddedFirst)) {
        const read = await inputsOf(model)
        if (read === null) continue
        known = read
        // Any width fits a dynamic one: a sibling with a fixed width (the one the run may feed first) decides.
        if (!anyWidth(read)) break
      }
      if (known === null || fits(name, known, data)) chosen.push(name)
    }
  } finally {
    await runtimes.close()
  }
  return chosen
}
