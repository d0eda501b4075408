// What a broker or the client would refuse at run time, said at load with the field's line:
// a topic name Kafka does not allow (the broker answers INVALID_TOPIC_EXCEPTION to every
// produce, which looked like an outage), a broker address the client cannot dial, and a client
// or group id it would not start with.

/** Kafka's own rule for topic names: letters, digits, ".", "_" and "-", at most 249 of them, not "." or "..". */
export function topicNameProblem(name: string): string | null {
  if (name === '.' || name === '..') return `"${name}" is not a topic name Kafka allows`
  if (name.length > 249) return `a Kafka topic name has at most 249 characters (this one has ${name.length})`
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return `${JSON.stringify(name)} is not a Kafka topic name: letters, digits, ".", "_" and "-" only`
  return null
}

/** Why the Kafka client would refuse `id` in a client id or a consumer group id (it fails its start on whitespace), or null (none given: nothing to refuse). */
export function kafkaIdProblem(id: string | undefined, role: 'client' | 'consumer group'): string | null {
  return id !== undefined && /\s/.test(id) ? `holds whitespace: the Kafka client refuses whitespace in a ${role} id` : null
}

/** `host:port`, or `[IPv6]:port`, with a port from 1 to 65535. */
function brokerProblem(broker: string): string | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):([0-9]{1,5})$/.exec(broker)
  if (!m) return `${JSON.stringify(broker)} is not a broker address: host:port, or [IPv6 address]:port`
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `${JSON.stringify(broker)}: port ${port} is not one from 1 to 65535`
  return null
}

/** Each problem of `brokers` and the topics named, reported at its path. */
export function addressIssues(at: (path: (string | number)[], message: string) => void, base: (string | number)[], brokers: readonly string[], topics: readonly [field: string, name: string | undefined][]): void {
  brokers.forEach((broker, i) => {
    const problem = brokerProblem(broker)
    if (problem) at([...base, 'brokers', i], problem)
  })
  for (const [field, name] of topics) {
    const problem = name === undefined ? null : topicNameProblem(name)
    if (problem) at([...base, ...field.split('.')], problem)
  }
}
