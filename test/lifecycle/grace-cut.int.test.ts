// SIGTERM with a client that has sent only part of its request: the server's request timeout
// stops with the drain, so that connection holds the stop until the grace period is over;
// then it is closed, the log says so, and the process exits 0.
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, outputContains, root, startProcess } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

describe('the grace period at a stop', () => {
  it('closes a connection still sending its request once the grace is over, and says so in the log', async () => {
    const dir = tempDir('specserve-grace-')
    const file = join(dir, 'gateway.yaml')
    writeFileSync(
      file,
      `server: { shutdown_grace_ms: 500 }
models: { m: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} } }
ensembles: { e: { strategy: deadline-fallback, models: [m] } }
`,
    )
    const port = await freePort()
    const proc = startProcess(process.execPath, [join(root, 'src', 'cli.ts'), 'serve', '-c', file], { env: { SPECSERVE_REST_PORT: String(port), SPECSERVE_GRPC_PORT: 'off', LOG_LEVEL: 'info' } })
    try {
      // Ready: the models loaded (the port listens before that, and a signal during the load is a stop of another kind).
      await outputContains(proc, '"msg":"ready"')
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      // Closed by the server: a FIN or a reset (ECONNRESET), either way.
      socket.on('error', () => {})
      const closed = new Promise((resolve) => socket.once('close', resolve))
      // The request begun, as the server's 100 Continue says (a connection that has sent nothing
      // the server has read yet is closed at once at a stop: another case), then half its body.
      socket.write('POST /v1/ensembles/e/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n')
      let answered = ''
      while (!answered.includes('100 Continue')) answered += String((await once(socket, 'data'))[0])
      socket.write('{"inputs": ') // the body never ends
      const code = proc.stop('SIGTERM')
      await closed
      expect(await code).toBe(0)
      expect(proc.output()).toMatch(/"grace_ms":500.*"msg":"grace period over: closing the REST connections still open/)
    } finally {
      await proc.stop('SIGKILL')
    }
  })
})
