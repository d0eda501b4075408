// The least a Node gateway can do on a remote call: read the request, forward it over a
// keep-alive undici pool, relay the answer. No parsing, validation, deadline or collector.
// The remote scenario puts it in front of MLServer next to specserve, so the cost of any
// extra Node hop on this box is measured in the same run as the cost of ours.
// Env: PORT, UPSTREAM (origin, e.g. http://127.0.0.1:8080).
import { createServer } from 'node:http'
import { Pool } from 'undici'

const upstream = new Pool(process.env.UPSTREAM ?? 'http://127.0.0.1:8080', { connections: 8, keepAliveTimeout: 30_000 })

createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    upstream
      .request({
        method: req.method === 'GET' ? 'GET' : 'POST',
        path: req.url ?? '/',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: Buffer.concat(chunks),
      })
      .then(async (up) => {
        const body = Buffer.from(await up.body.arrayBuffer())
        res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') })
        res.end(body)
      })
      .catch((err: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' })
        res.end(String(err))
      })
  })
}).listen(Number(process.env.PORT ?? 0), '127.0.0.1')
