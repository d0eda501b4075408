// Where the gateway listens and what it calls itself, from the file and the SPECSERVE_*
// environment: an empty or garbled value (a template that rendered nothing, a port pasted
// into host) is refused, not read as "every interface" or as no name. An environment
// variable set to the empty string is unset, as documented.
import { hostname } from 'node:os'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { configFrom, issuesOf } from '../helpers.ts'

const ensemble = 'models:\n  a: { kind: onnx, path: ../models/cancer_logreg.onnx }\nensembles:\n  e: { strategy: deadline-fallback, models: [a] }\n'
const withServer = (server: string): string => `${ensemble}server:\n  ${server}\n`

afterEach(() => vi.unstubAllEnvs())

describe('server.host and SPECSERVE_HOST', () => {
  it('refuses an empty or blank host, a host with a port, and one in brackets, at its line', () => {
    const refused = (host: string): string[] => issuesOf(withServer(`host: ${host}`)).map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`)
    const empty = 'is empty: give an address (0.0.0.0 for every interface, 127.0.0.1 for this machine only)'
    expect(refused('""')).toEqual([`6:9 server.host: host "" ${empty}`])
    expect(refused('"  "')).toEqual([`6:9 server.host: host "  " ${empty}`])
    expect(refused('0.0.0.0:8080')).toEqual(['6:9 server.host: host "0.0.0.0:8080" holds a port (or is not an IPv6 address): give the address alone; the ports are rest_port and grpc_port'])
    expect(refused('"[::1]"')).toEqual(['6:9 server.host: host "[::1]" is in brackets: write an IPv6 address without them (::1)'])
    expect(refused('"127.0.0.1 "')).toEqual(['6:9 server.host: host "127.0.0.1 " holds whitespace: give the address alone'])
    for (const host of ['"::1"', 'localhost', '"fe80::1%eth0"', '"fe80::1%br_lan"', '10.0.0.7']) expect(configFrom(withServer(`host: ${host}`)).server.host).toBe(JSON.parse(host.startsWith('"') ? host : `"${host}"`))
  })

  it('reads an empty SPECSERVE_HOST as unset, and refuses a blank one or one with a port rather than listen on every interface', () => {
    vi.stubEnv('SPECSERVE_HOST', '')
    expect(configFrom(withServer('host: 127.0.0.1')).server.host).toBe('127.0.0.1')
    vi.stubEnv('SPECSERVE_HOST', ' ')
    expect(issuesOf(withServer('host: 127.0.0.1'))).toEqual([
      { path: '', message: 'SPECSERVE_HOST=" " is empty: give an address (0.0.0.0 for every interface, 127.0.0.1 for this machine only)' },
    ])
    vi.stubEnv('SPECSERVE_HOST', 'localhost:9000')
    expect(issuesOf(ensemble)[0]?.message).toBe('SPECSERVE_HOST="localhost:9000" holds a port (or is not an IPv6 address): give the address alone; the ports are rest_port and grpc_port')
    vi.stubEnv('SPECSERVE_HOST', '::')
    expect(configFrom(withServer('host: 127.0.0.1')).server.host).toBe('::')
  })
})

describe('server.instance and SPECSERVE_INSTANCE', () => {
  it('refuses a blank instance name from the file or the environment; an empty variable is unset', () => {
    expect(issuesOf(withServer('instance: ""'))).toEqual([
      expect.objectContaining({ path: 'server.instance', line: 6, message: 'instance cannot be empty or blank: give a name, or leave it out for specserve-<host>-<pid>' }),
    ])
    vi.stubEnv('SPECSERVE_INSTANCE', '')
    expect(configFrom(withServer('instance: gw-1')).server.instance).toBe('gw-1')
    vi.stubEnv('SPECSERVE_INSTANCE', '  ')
    expect(issuesOf(withServer('instance: gw-1'))).toEqual([{ path: '', message: 'SPECSERVE_INSTANCE="  " is blank: give a name, or leave it unset' }])
    vi.stubEnv('SPECSERVE_INSTANCE', 'pod-7')
    expect(configFrom(withServer('instance: gw-1')).server.instance).toBe('pod-7')
  })

  it('names a gateway given no name by its host and its pid: containers, whose pids are all 1, get names of their own', () => {
    vi.stubEnv('SPECSERVE_INSTANCE', '')
    expect(configFrom(ensemble).server.instance).toBe(`specserve-${hostname()}-${process.pid}`)
  })

  it('refuses a name with whitespace when it names a model stream\'s consumer group (Kafka would refuse it at start)', () => {
    const streamed = `repository: { path: ./repo, kafka: { brokers: ["127.0.0.1:9092"] } }\n`
    vi.stubEnv('SPECSERVE_INSTANCE', '')
    expect(issuesOf(withServer('instance: gw 1') + streamed)).toEqual([
      expect.objectContaining({ path: 'server.instance', message: 'instance "gw 1" holds whitespace: the Kafka client refuses whitespace in a consumer group id (with repository.kafka, the model stream\'s is <group>-<instance>)' }),
    ])
    vi.stubEnv('SPECSERVE_INSTANCE', 'pod 7')
    expect(issuesOf(withServer('instance: gw-1') + streamed)).toEqual([
      { path: '', message: 'SPECSERVE_INSTANCE="pod 7" holds whitespace: the Kafka client refuses whitespace in a consumer group id (with repository.kafka, the model stream\'s is <group>-<instance>)' },
    ])
    vi.stubEnv('SPECSERVE_INSTANCE', '')
    expect(issuesOf(withServer('instance: gw-1') + streamed.replace('brokers', 'group: "my models", brokers'))).toEqual([
      expect.objectContaining({ path: 'repository.kafka.group', message: 'group "my models" holds whitespace: the Kafka client refuses whitespace in a consumer group id' }),
    ])
    vi.stubEnv('SPECSERVE_INSTANCE', 'pod 7')
    // Without a model stream the name is only a record's field: kept as written.
    expect(configFrom(withServer('instance: gw-1')).server.instance).toBe('pod 7')
  })
})
