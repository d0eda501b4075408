// output.kafka is validated at config load, every problem with its YAML path and line.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { kafkaSettings } from '../../src/kafka/config.ts'
import { configFrom, configIssues } from '../helpers.ts'

const base = `models:
  m: { kind: onnx, path: ../models/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [m] }
`

const issues = (yaml: string): { path: string; line?: number; message: string }[] =>
  configIssues(base + yaml).map((i) => ({ path: i.path, line: i.line, message: i.message }))

describe('output.kafka config', () => {
  it('reports unknown keys, bad values and unknown ensembles with path and line', () => {
    const found = issues(`output:
  kafka:
    brokers: ["localhost:9092"]
    acks: most
    compresion: gzip
    sample_rates: { cancer: 0.5, fraud: 0.1 }
`)
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'output.kafka.acks', line: 8, message: expect.any(String) },
        { path: 'output.kafka.compresion', line: 9, message: 'unknown key' },
      ]),
    )
    const semantic = issues(`output:
  kafka:
    brokers: ["localhost:9092"]
    sample_rates: { cancer: 0.5, fraud: 0.1 }
    idempotent: true
    acks: leader
  files: {}
`)
    expect(semantic).toEqual(
      expect.arrayContaining([
        { path: 'output.kafka.sample_rates.fraud', line: 8, message: 'unknown ensemble "fraud"' },
        { path: 'output.kafka.acks', line: 10, message: 'an idempotent producer needs acks: all' },
        { path: 'output.files', line: 11, message: 'unknown output "files" (known: kafka)' },
      ]),
    )
  })

  it('refuses a client id or a stream group id with whitespace (the Kafka client would refuse it at start)', () => {
    expect(issues('output:\n  kafka: { brokers: ["127.0.0.1:9092"], client_id: "my gateway", stream: { input_topic: in, group_id: "my group" } }\n')).toEqual([
      { path: 'output.kafka.client_id', line: 6, message: 'client_id "my gateway" holds whitespace: the Kafka client refuses whitespace in a client id' },
      { path: 'output.kafka.stream.group_id', line: 6, message: 'group_id "my group" holds whitespace: the Kafka client refuses whitespace in a consumer group id' },
    ])
  })

  it('requires brokers as host:port or [IPv6]:port, with a port from 1 to 65535', () => {
    expect(issues('output:\n  kafka: { brokers: [] }\n')).toEqual([{ path: 'output.kafka.brokers', line: 6, message: expect.any(String) }])
    expect(issues('output:\n  kafka: { brokers: ["nohost"] }\n')).toEqual([
      { path: 'output.kafka.brokers.0', line: 6, message: '"nohost" is not a broker address: host:port, or [IPv6 address]:port' },
    ])
    expect(issues('output:\n  kafka: { brokers: ["127.0.0.1:99999"] }\n')).toEqual([
      { path: 'output.kafka.brokers.0', line: 6, message: '"127.0.0.1:99999": port 99999 is not one from 1 to 65535' },
    ])
    expect(issues('output:\n  kafka: { brokers: ["[::1]:9092", "kafka-0.kafka:9092"] }\n')).toEqual([])
  })

  it('refuses a topic name Kafka does not allow (the broker would refuse every produce), a derived one too', () => {
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], topic: "bad topic/name" }\n')).toEqual([
      { path: 'output.kafka.topic', line: 6, message: '"bad topic/name" is not a Kafka topic name: letters, digits, ".", "_" and "-" only' },
    ])
    expect(issues(`output:\n  kafka: { brokers: ["k:9092"], stream: { input_topic: "${'t'.repeat(245)}" } }\n`)).toEqual([
      { path: 'output.kafka.stream.input_topic', line: 6, message: expect.stringMatching(/^its default output_topic "t+\.results": a Kafka topic name has at most 249 characters \(this one has 253\); set output_topic$/) },
    ]) // its .dlq, 249 characters, is allowed
    expect(issues(`repository: { path: ./repo, kafka: { brokers: ["k:9092"], topic: ".." } }\n`)).toEqual([{ path: 'repository.kafka.topic', line: 5, message: '".." is not a topic name Kafka allows' }])
  })

  it('refuses a batch_bytes the broker would refuse (over max_record_bytes, or over 64 MiB) instead of stalling on it', () => {
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], batch_bytes: 4000000 }\n')).toEqual([
      { path: 'output.kafka.batch_bytes', line: 6, message: expect.stringMatching(/batch_bytes \(4000000\) is over max_record_bytes \(1000000\)/) },
    ])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], batch_bytes: 4000000, max_record_bytes: 4000000 }\n')).toEqual([])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], batch_bytes: 100000000, max_record_bytes: 100000000 }\n')).toEqual(
      expect.arrayContaining([{ path: 'output.kafka.batch_bytes', line: 6, message: expect.any(String) }, { path: 'output.kafka.max_record_bytes', line: 6, message: expect.any(String) }]),
    )
    // A lowered max_record_bytes lowers the default batch_bytes with it.
    const config = configFrom(base + 'output:\n  kafka: { brokers: ["k:9092"], max_record_bytes: 3000 }\n')
    expect(kafkaSettings(config.output, config.baseDir)).toMatchObject({ batchBytes: 3000, maxRecordBytes: 3000 })
  })

  it('refuses SASL without the credentials its mechanism needs: username and password, or an OAUTHBEARER token', () => {
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], sasl: { mechanism: PLAIN } }\n')).toEqual([{ path: 'output.kafka.sasl', line: 6, message: 'PLAIN needs username and password' }])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], sasl: { mechanism: OAUTHBEARER } }\n')).toEqual([{ path: 'output.kafka.sasl', line: 6, message: 'OAUTHBEARER needs a token' }])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], sasl: { mechanism: OAUTHBEARER, token: "" } }\n')).toEqual([{ path: 'output.kafka.sasl', line: 6, message: 'OAUTHBEARER needs a token' }])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], sasl: { mechanism: OAUTHBEARER, token: eyJhbGciOi } }\n')).toEqual([])
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], sasl: { mechanism: SCRAM-SHA-512, username: svc, password: secret } }\n')).toEqual([])
  })

  it('refuses a SASL credential its mechanism never sends (most likely the wrong mechanism), naming the field', () => {
    const sasl = (lines: string): string => `output:\n  kafka:\n    brokers: ["k:9092"]\n    sasl:\n${lines}`
    expect(issues(sasl('      mechanism: PLAIN\n      username: svc\n      password: secret\n      token: eyJhbGciOi\n'))).toEqual([
      { path: 'output.kafka.sasl.token', line: 12, message: 'token is not used by PLAIN, which sends only username and password: remove it, or set mechanism: OAUTHBEARER' },
    ])
    // A token alone with SCRAM: its credentials are missing too.
    expect(issues(sasl('      mechanism: SCRAM-SHA-256\n      token: eyJhbGciOi\n'))).toEqual([
      { path: 'output.kafka.sasl', line: 8, message: 'SCRAM-SHA-256 needs username and password' }, // at sasl: itself, not its first key
      { path: 'output.kafka.sasl.token', line: 10, message: 'token is not used by SCRAM-SHA-256, which sends only username and password: remove it, or set mechanism: OAUTHBEARER' },
    ])
    const unused = (field: string): string => `${field} is not used by OAUTHBEARER, which sends only the token: remove it, or set the mechanism it is for (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`
    expect(issues(sasl('      mechanism: OAUTHBEARER\n      token: eyJhbGciOi\n      username: svc\n      password: secret\n'))).toEqual([
      { path: 'output.kafka.sasl.username', line: 11, message: unused('username') },
      { path: 'output.kafka.sasl.password', line: 12, message: unused('password') },
    ])
  })

  it('refuses durations a Node.js timer cannot hold (it would fire at once)', () => {
    expect(issues('output:\n  kafka: { brokers: ["k:9092"], retry_backoff_ms: 3000000000, request_timeout_ms: 1e12, shutdown_grace_ms: 1e13 }\n')).toEqual([
      { path: 'output.kafka.request_timeout_ms', line: 6, message: expect.stringMatching(/must be at most 2147483647 ms/) },
      { path: 'output.kafka.retry_backoff_ms', line: 6, message: expect.stringMatching(/must be at most 2147483647 ms/) },
      { path: 'output.kafka.shutdown_grace_ms', line: 6, message: expect.stringMatching(/must be at most 2147483647 ms/) },
    ])
  })

  it('fills documented defaults; spool_dir resolves against the config file', () => {
    const config = configFrom(base + 'output:\n  kafka: { brokers: ["k:9092"], spool_dir: spool }\n')
    const settings = kafkaSettings(config.output, config.baseDir)!
    expect(settings).toMatchObject({
      topic: 'specserve.results',
      key: 'ensemble',
      acks: -1,
      compression: 'none',
      includeInputs: false,
      publishLate: false,
      spoolDir: `${config.baseDir}/spool`,
      stream: { enabled: false, inputTopic: 'specserve.requests', outputTopic: 'specserve.requests.results', deadLetterTopic: 'specserve.requests.dlq' },
    })
    expect(kafkaSettings(configFrom(base).output, config.baseDir)).toBeNull()
  })

  it('reads spool_dir: ~/… as under the home directory, as a shell would, not as a directory named ~', () => {
    const config = configFrom(base + 'output:\n  kafka: { brokers: ["k:9092"], spool_dir: ~/specserve-spool }\n')
    expect(kafkaSettings(config.output, config.baseDir)?.spoolDir).toBe(join(homedir(), 'specserve-spool'))
    const bare = configFrom(base + 'output:\n  kafka: { brokers: ["k:9092"], spool_dir: "~" }\n')
    expect(kafkaSettings(bare.output, bare.baseDir)?.spoolDir).toBe(homedir())
  })
})
