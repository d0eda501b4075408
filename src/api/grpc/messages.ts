// The wire messages as @grpc/proto-loader hands them over (see src/proto's LOADER_OPTIONS):
// field names as in the .proto, int64 as decimal strings, absent scalars at their defaults.
import type { NativeTensorMsg, OipContents } from '../../tensor/index.ts'

export interface PredictRequestMsg {
  ensemble: string
  inputs: Record<string, NativeTensorMsg>
  budget_ms?: number
  id: string
}

export interface NameRequestMsg {
  name: string
  version?: string
}

export interface InferParameterMsg {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param'
  bool_param?: boolean
  int64_param?: string
  string_param?: string
  double_param?: number
  uint64_param?: string
}

export interface InferInputTensorMsg {
  name: string
  datatype: string
  shape: string[]
  parameters: Record<string, InferParameterMsg>
  contents: OipContents | null
}

export interface ModelInferRequestMsg {
  model_name: string
  model_version: string
  id: string
  parameters: Record<string, InferParameterMsg>
  inputs: InferInputTensorMsg[]
  outputs: { name: string }[]
  raw_input_contents: Buffer[]
}
