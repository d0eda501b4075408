// A gateway embedded in a process started with --input-type (`node --input-type=module -e …`,
// or a script on stdin): its threads start (Node refuses a thread whose entry is a file
// there), so a model pinned to the inference workers answers and the producer thread loads.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from './helpers.ts'

const script = (inputType: string): string => {
  const src = (module: string): string => JSON.stringify(join(root, 'src', module))
  const yaml = `models:\\n  logreg: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')}, placement: worker }\\nensembles:\\n  e: { strategy: deadline-fallback, models: [logreg] }\\n`
  const body = `
    const { parseConfig } = await import(${src('config/load.ts')})
    const { Gateway } = await import(${src('gateway.ts')})
    const { kafkaSettings } = await import(${src('kafka/config.ts')})
    const { ThreadProducer } = await import(${src('kafka/thread-producer.ts')})
    const g = new Gateway(parseConfig("${yaml}", ${JSON.stringify(join(root, 'embedded.yaml'))}))
    await g.load()
    const result = await g.predict({ id: 'embedded', ensemble: 'e', inputs: { input: { datatype: 'FP32', shape: [1, 30], data: new Float32Array(30).fill(1) } } })
    await g.close()
    const lines = []
    const log = { info: () => {}, warn: (_f, m) => lines.push(m), error: (_f, m) => lines.push(m) }
    const producer = new ThreadProducer({ settings: kafkaSettings({ kafka: { brokers: ['127.0.0.1:9'], producer_thread: true } }, '/tmp'), clientId: 'embedded' }, log)
    await producer.ready()
    const loaded = producer.worker !== null
    await producer.close()
    console.log(JSON.stringify({ status: result.models[0].status, chosen: result.decision.chosen, loaded, lines }))`
  // A script read as CommonJS has no top-level await: the same body in an async function.
  return inputType === 'module' ? body : `(async () => { ${body} })().catch((err) => { console.error(err); process.exit(1) })`
}

function runWith(inputType: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [`--input-type=${inputType}`, '-e', script(inputType)], { cwd: root, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!))
    })
  })
}

describe('a gateway in a process started with --input-type', () => {
  it.each(['module', 'commonjs'])('starts its threads with --input-type=%s: a worker model answers, the producer thread loads', async (inputType) => {
    expect(await runWith(inputType)).toEqual({ status: 'ok', chosen: 'logreg', loaded: true, lines: [] })
  })
})
