// A remote model that never answers: accepts connections, reads requests, sends nothing.
// The straggler scenario points an `oip` member at it. Env: PORT.
import { createServer } from 'node:net'

const server = createServer((socket) => {
  socket.on('data', () => {}) // keep reading so the client's writes complete
  socket.on('error', () => {})
})
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
