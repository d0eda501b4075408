// A real Kafka broker for tests and benchmarks: scripts/kafka.sh provisions Apache Kafka
// from Maven Central (once, into the cache) and runs a KRaft single node in its own
// temporary directory on free ports. stop()/start() keep the data and the ports, so an
// outage can be staged; destroy() removes everything (and a start that fails, what it made).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Admin, Consumer, stringDeserializers, type Message } from '@platformatic/kafka'
import { freePort, root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

const run = promisify(execFile)
const script = join(root, 'scripts', 'kafka.sh')

export interface Broker {
  readonly bootstrap: string
  readonly dir: string
  /** Stops the broker (SIGTERM, or SIGKILL with `kill`); the data stays for start(). */
  stop(options?: { kill?: boolean }): Promise<void>
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>
  /** Stops it and deletes its directory. */
  destroy(): Promise<void>
}

async function kafkaSh(args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [script, ...args], { maxBuffer: 16 * 1024 * 1024 })
    return stdout.trim()
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`scripts/kafka.sh ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err })
  }
}

export async function startBroker(): Promise<Broker> {
  const dir = tempDir('specserve-kafka-')
  // --owner-pid: a test run that dies without destroy() does not leave a broker behind.
  const owner = ['--owner-pid', String(process.pid)]
  let bootstrap: string
  try {
    bootstrap = await kafkaSh(['start', '--dir', dir, '--port', String(await freePort()), ...owner])
  } catch (err) {
    // A broker that started but never listened would outlive the test file otherwise.
    await kafkaSh(['clean', '--dir', dir]).catch(() => {})
    throw err
  }
  return {
    bootstrap,
    dir,
    stop: async (options = {}) => void (await kafkaSh(['stop', '--dir', dir, ...(options.kill ? ['--kill'] : [])])),
    start: async () => void (await kafkaSh(['start', '--dir', dir, ...owner])),
    destroy: async () => void (await kafkaSh(['clean', '--dir', dir])),
  }
}

/** `configs`: topic-level settings, e.g. `{ 'max.message.bytes': '4096' }` (no broker restart needed). */
export async function createTopic(bootstrap: string, topic: string, partitions = 1, configs: Readonly<Record<string, string>> = {}): Promise<void> {
  const admin = new Admin({ clientId: 'specserve-test-admin', bootstrapBrokers: [bootstrap] })
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1, configs: Object.entries(configs).map(([name, value]) => ({ name, value })) })
  } finally {
    await admin.close()
  }
}

export type TextMessage<K = string> = Message<K, string, string, string>

/**
 * Reads a topic from the beginning with a real consumer (its own group) until `until`
 * says the messages are all there, or fails after `timeoutMs` saying how many came and,
 * with `missing`, what is still missing. Keys are read as text, or by `keys` (e.g. as bytes).
 */
export async function consumeUntil<K = string>(
  bootstrap: string,
  topic: string,
  until: (messages: readonly TextMessage<K>[]) => boolean,
  timeoutMs = 60_000,
  missing?: (messages: readonly TextMessage<K>[]) => string,
  keys?: (data?: Buffer) => K,
): Promise<TextMessage<K>[]> {
  const consumer = new Consumer<K, string, string, string>({
    clientId: 'specserve-test-reader',
    groupId: `specserve-test-${topic}-${process.hrtime.bigint()}`,
    bootstrapBrokers: [bootstrap],
    deserializers: { ...stringDeserializers, key: keys ?? (stringDeserializers.key as (data?: Buffer) => K) },
    maxWaitTime: 200,
    // A topic the gateway has not written yet (or a group coordinator not loaded yet) is asked
    // for again after 0.1 s, not 1 s; the five waits (3.1 s in all) give it as long as the
    // client's defaults (3 retries, 1 s apart) did.
    retryDelay: (_client, _operation, attempt) => 100 * 2 ** (attempt - 1),
    retries: 5,
  })
  const got: TextMessage<K>[] = []
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${topic}: ${got.length} messages after ${timeoutMs} ms${missing ? `; missing: ${missing(got)}` : ''}`)), timeoutMs)
      const check = (): void => {
        if (until(got)) {
          clearTimeout(timer)
          resolve()
        }
      }
      stream.on('data', (m: TextMessage<K>) => {
        got.push(m)
        check()
      })
      stream.on('error', reject)
      check()
    })
  } finally {
    await stream.close().catch(() => {})
    await consumer.close(true).catch(() => {})
  }
  return got
}

/** The committed offsets of a consumer group for a topic's partitions (-1 = nothing committed). */
export async function committedOffsets(bootstrap: string, groupId: string, topic: string, partitions: number): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'specserve-test-offsets', groupId, bootstrapBrokers: [bootstrap] })
  try {
    const offsets = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...Array(partitions).keys()] }] })
    return offsets.get(topic) ?? []
  } finally {
    await consumer.close(true)
  }
}

/** kcat from Debian if it is missing; the interop check must not be skipped, so failing to install fails the test. */
export async function ensureKcat(): Promise<string> {
  const found = await run('sh', ['-c', 'command -v kcat || command -v kafkacat']).then((r) => r.stdout.trim(), () => '')
  if (found) return found
  try {
    await run('apt-get', ['install', '-y', '-q', 'kcat'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  } catch {
    await run('sh', ['-c', 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat'])
  }
  const installed = await run('sh', ['-c', 'command -v kcat']).then((r) => r.stdout.trim(), () => '')
  if (!installed) throw new Error('kcat is not installed and apt-get could not install it (Debian package "kcat")')
  return installed
}
