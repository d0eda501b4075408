// The REST load generator's ceiling: node:http answering every request at once with the
// same JSON (no parsing, no routing, no model). Env: PORT; RESPONSE, the body to answer
// (base64; the bench gives the gateway's own answer, so the client reads what it would read).
import { createServer } from 'node:http'

const body = process.env.RESPONSE ? Buffer.from(process.env.RESPONSE, 'base64') : Buffer.from('{"id":"ceiling"}')
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }

createServer((req, res) => {
  req.on('data', () => {})
  req.once('end', () => {
    res.writeHead(200, headers)
    res.end(body)
  })
}).listen(Number(process.env.PORT ?? 0), '127.0.0.1')
