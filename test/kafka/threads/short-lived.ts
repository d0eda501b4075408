// A producer thread that dies: before it has loaded the client, as one that runs out of memory
// or trips on a broken install would (its module throws as it is evaluated), or, with
// SPECSERVE_TEST_THREAD=loads in its environment, after saying it has loaded, at its first request.
import { parentPort } from 'node:worker_threads'

if (process.env.SPECSERVE_TEST_THREAD !== 'loads') throw new Error('this thread dies while loading')
parentPort!.postMessage({ type: 'ready' })
parentPort!.on('message', () => {
  throw new Error('this thread dies after loading')
})
