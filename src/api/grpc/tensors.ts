// specserve.v1.Tensor <-> Tensor. Typed repeated fields, one per element kind; on
// requests the datatype defaults to the declared one and a shape with one dynamic
// dimension may be left out (it is inferred from the element count).
import { GatewayError } from '../../errors.ts'
import type { EnsembleRuntime } from '../../starter/ensemble.ts'
import type { Tensor, TensorMap, TensorSpec } from '../../types.ts'
import { inputSpec } from '../oip/model.ts'
import { checkHeader, tensorFromContents, tensorToContents, type OipContents } from '../oip/tensors.ts'
import type { WireTensor } from './messages.ts'

export function readInputs(ens: EnsembleRuntime, inputs: Readonly<Record<string, WireTensor>>): TensorMap {
  const out: Record<string, Tensor> = {}
  for (const name in inputs) {
    const spec = inputSpec(ens, name)
    out[name] = readTensor(inputs[name] as WireTensor, spec)
  }
  return out
}

function readTensor(wire: WireTensor, spec: TensorSpec): Tensor {
  const contents: OipContents = {
    fp32_contents: wire.fp32_data,
    fp64_contents: wire.fp64_data,
    int_contents: wire.int_data,
    uint_contents: wire.int_data,
    int64_contents: wire.int64_data,
    bool_contents: wire.bool_data,
    bytes_contents: wire.string_data.map((s) => Buffer.from(s, 'utf8')),
  }
  const dims = checkHeader(spec, wire.datatype || spec.datatype, wire.shape)
  const shape = dims.length ? dims : inferShape(spec, wire)
  return tensorFromContents(contents, spec, shape)
}

function inferShape(spec: TensorSpec, wire: WireTensor): number[] {
  if (spec.shape.length === 0) return []
  const count = Math.max(wire.fp32_data.length, wire.fp64_data.length, wire.int_data.length, wire.int64_data.length, wire.bool_data.length, wire.string_data.length)
  const dynamic = spec.shape.filter((d) => d < 0).length
  const fixed = spec.shape.reduce((n, d) => (d < 0 ? n : n * d), 1)
  if (dynamic !== 1 || fixed === 0 || count % fixed !== 0) {
    throw new GatewayError('BAD_INPUT', `input "${spec.name}": give a shape (declared [${spec.shape.join(', ')}], ${count} elements given)`)
  }
  return spec.shape.map((d) => (d < 0 ? count / fixed : d))
}

export function writeTensor(tensor: Tensor): Partial<WireTensor> {
  const c = tensorToContents(tensor)
  return {
    datatype: tensor.datatype,
    shape: tensor.shape as unknown as string[],
    fp32_data: c.fp32_contents,
    fp64_data: c.fp64_contents,
    int_data: c.int_contents ?? c.uint_contents,
    int64_data: c.int64_contents as string[] | undefined,
    bool_data: c.bool_contents,
    string_data: tensor.datatype === 'BYTES' ? (tensor.data as string[]) : undefined,
  }
}
