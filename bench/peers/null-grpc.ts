// The gRPC load generator's ceiling: node:http2 answering every unary call at once with
// the same message (no decoding, no model, no grpc-js). ghz against this on the same cores
// is the most the gRPC rows could reach. Env: PORT; RESPONSE, the message to answer (base64;
// the bench gives the gateway's own PredictResponse, so the client decodes what it would decode).
import { createServer } from 'node:http2'

// Without RESPONSE: a PredictResponse with only `id` set ("ceiling").
const message = process.env.RESPONSE ? Buffer.from(process.env.RESPONSE, 'base64') : Buffer.from([0x0a, 0x07, ...Buffer.from('ceiling')])
// Framed: uncompressed flag, length (big-endian), bytes.
const prefix = Buffer.alloc(5)
prefix.writeUInt32BE(message.length, 1)
const frame = Buffer.concat([prefix, message])
const headers = { ':status': 200, 'content-type': 'application/grpc+proto' }
const trailers = { 'grpc-status': '0' }

const server = createServer()
server.on('stream', (stream) => {
  stream.on('error', () => {}) // a client that goes away mid-call is not this server's problem
  stream.on('data', () => {})
  stream.once('end', () => {
    if (stream.destroyed || stream.closed) return
    stream.respond(headers, { waitForTrailers: true })
    stream.once('wantTrailers', () => stream.sendTrailers(trailers))
    stream.end(frame)
  })
})
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
