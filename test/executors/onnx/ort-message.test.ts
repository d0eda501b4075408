// onnxruntime's messages as specserve passes them on: its words kept, the C++ source location
// and function signature its status messages carry removed, and the trailing newline.
import { describe, expect, it } from 'vitest'
import { ortMessage } from '../../../src/executors/onnx/ort-message.ts'

describe('ortMessage', () => {
  it.each([
    [
      'an opset beyond the build (validate of a model stamped opset 99)',
      'Load model from /m/opset99.onnx failed:/onnxruntime_src/onnxruntime/core/graph/model_load_utils.h:46 void onnxruntime::model_load_utils::ValidateOpsetForDomain(const std::unordered_map<std::__cxx11::basic_string<char>, int>&, const onnxruntime::logging::Logger&, bool, const std::string&, int) ONNX Runtime only *guarantees* support for models stamped with official released onnx opset versions. Opset 99 is under development. Current official support for domain ai.onnx is till opset 26.\n',
      'Load model from /m/opset99.onnx failed: ONNX Runtime only *guarantees* support for models stamped with official released onnx opset versions. Opset 99 is under development. Current official support for domain ai.onnx is till opset 26.',
    ],
    [
      'a constructor (no return type)',
      'Load model from /m/ir99.onnx failed:/onnxruntime_src/onnxruntime/core/graph/model.cc:202 onnxruntime::Model::Model(onnx::ModelProto&&, const onnxruntime::PathString&, const onnxruntime::IOnnxRuntimeOpSchemaRegistryList*, const onnxruntime::logging::Logger&, const onnxruntime::ModelOptions&) Unsupported model IR version: 99, max supported IR version: 13\n',
      'Load model from /m/ir99.onnx failed: Unsupported model IR version: 99, max supported IR version: 13',
    ],
    [
      "a run's status message, inside onnxruntime's own sentence",
      "Non-zero status code returned while running ConstantOfShape node. Name:'' Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) Failed to allocate memory for requested buffer of size 3999999947964416\n",
      "Non-zero status code returned while running ConstantOfShape node. Name:'' Status Message: Failed to allocate memory for requested buffer of size 3999999947964416",
    ],
    [
      'a virtual const method, with a parenthesised type in its parameters, on a Windows build',
      'D:\\a\\_work\\1\\s\\onnxruntime\\core\\framework\\op_kernel.cc:83 virtual OrtValue* onnxruntime::OpKernelContext::OutputMVal(int, std::function<void(int)>) const status.IsOK() was false. Tensor shape cannot contain any negative value',
      'status.IsOK() was false. Tensor shape cannot contain any negative value',
    ],
    ['no location: as it is, "failed:" given its space', 'Load model from /m/c.onnx failed:Protobuf parsing failed.', 'Load model from /m/c.onnx failed: Protobuf parsing failed.'],
    [
      'a function in an anonymous namespace',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/x.cc:12 onnxruntime::common::Status onnxruntime::(anonymous namespace)::Check(const onnxruntime::Tensor&) Input is empty',
      'Input is empty',
    ],
    ['a location without a signature (a function name alone, or words): the location only', '/onnxruntime_src/onnxruntime/core/x.cc:7 Shape mismatch (expected 2) in node n', 'Shape mismatch (expected 2) in node n'],
    ['a function name without parameters', 'D:\\a\\s\\onnxruntime\\core\\k.cc:83 onnxruntime::OpKernelContext::OutputMVal status.IsOK() was false.', 'onnxruntime::OpKernelContext::OutputMVal status.IsOK() was false.'],
    ['a model path that is not a source file', 'Load model from /models/a.h.onnx failed:oops', 'Load model from /models/a.h.onnx failed: oops'],
  ])('%s', (_what, raw, clean) => {
    expect(ortMessage(new Error(raw))).toBe(clean)
  })

  it('takes anything thrown', () => {
    expect(ortMessage('  just text\n')).toBe('just text')
  })
})
