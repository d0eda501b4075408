// An Open Inference Protocol V2 model that answers with fixed tensors, at once or after
// DELAY_MS (a timer, no CPU): the remote scenario's control, showing what the gateway
// itself adds to a remote call when the peer costs nothing, and how that depends on how
// long the gateway sits idle waiting. GET (metadata) and POST (infer) on any path.
// Env: PORT, DELAY_MS (default 0).
import { createServer } from 'node:http'

const io = (shape: number[]) => [
  { name: 'predict', datatype: 'INT64', shape: [shape[0]] },
  { name: 'predict_proba', datatype: 'FP64', shape },
]
const metadata = JSON.stringify({ name: 'cancer', versions: ['1'], platform: 'stub', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 30] }], outputs: io([-1, 2]) })
const [label, proba] = io([1, 2])
const answer = JSON.stringify({ model_name: 'cancer', outputs: [{ ...label, data: [1] }, { ...proba, data: [0.03, 0.97] }] })

const delayMs = Number(process.env.DELAY_MS ?? 0)

createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const reply = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(req.method === 'GET' ? metadata : answer)
    }
    if (delayMs > 0 && req.method !== 'GET') setTimeout(reply, delayMs)
    else reply()
  })
}).listen(Number(process.env.PORT ?? 0), '127.0.0.1')
