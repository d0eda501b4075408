// A thread that wants no CPU, timing how late its 5-ms timer runs: on the bench's box a
// late timer means no core was free for it (other processes' turns, the hypervisor taking
// the core), whatever the servers under load did themselves. It runs in the load
// generator's process, on a thread of its own (another heap: the generator's pauses do
// not hold it), and is read between slices.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'

const EVERY_MS = 5

const PROBE = `
const { parentPort } = require('node:worker_threads')
let last = performance.now()
let longest = 0
setInterval(() => {
  const now = performance.now()
  longest = Math.max(longest, now - last - ${EVERY_MS})
  last = now
}, ${EVERY_MS})
parentPort.on('message', () => {
  parentPort.postMessage(longest)
  longest = 0
})
`

export class StallProbe {
  private readonly worker = new Worker(PROBE, { eval: true })

  /** The longest its timer ran late (ms) since the previous take (or the start). */
  async take(): Promise<number> {
    this.worker.postMessage(null)
    const [longest] = (await once(this.worker, 'message')) as [number]
    return longest
  }

  async close(): Promise<void> {
    await this.worker.terminate()
  }
}
