// Tensors and their codecs: one datatype table (./datatypes.ts), one element decoder
// (./elements.ts), one module per wire form. ./ort.ts is left out on purpose: it loads
// onnxruntime, which only the inference threads need.
export * from './datatypes.ts'
export * from './tensor.ts'
export * from './elements.ts'
export * from './json.ts'
export * from './raw.ts'
export * from './oip.ts'
export * from './tf.ts'
export * from './seldon.ts'
export * from './specserve.ts'
export * from './protowire.ts'
export * from './protowriter.ts'
export * from './specserve-wire.ts'
