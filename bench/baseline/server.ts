// The hand-written service specserve is measured against: fastify + onnxruntime-node,
// one model, inference on the event loop's own thread. Same request and response
// shape as specserve's native predict. Env: PORT, MODEL (an .onnx file).
import Fastify from 'fastify'
// Telemetry off, as specserve has it (an operator's own setting kept).
import '../../src/executors/onnx/ort-env.ts'
import ort from 'onnxruntime-node'

const session = await ort.InferenceSession.create(process.env.MODEL ?? 'models/cancer_logreg.onnx', { intraOpNumThreads: 1 })
const [inputName] = session.inputNames as [string]
const app = Fastify({ logger: false })

app.post<{ Body: { inputs: Record<string, number[][]> } }>('/predict', async (request) => {
  const rows = request.body.inputs[inputName] as number[][]
  const tensor = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, (rows[0] as number[]).length])
  const results = await session.run({ [inputName]: tensor })
  const outputs: Record<string, unknown> = {}
  for (const name of session.outputNames) {
    const t = results[name] as ort.Tensor
    const data = Array.from(t.data as ArrayLike<number | bigint>, Number)
    const width = t.dims.length > 1 ? Number(t.dims[1]) : 0
    outputs[name] = width ? rows.map((_, i) => data.slice(i * width, (i + 1) * width)) : data
  }
  return { outputs }
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8090) })
