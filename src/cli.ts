#!/usr/bin/env node
// specserve serve | validate | health | bench | publish-model | eval
import { existsSync } from 'node:fs'
import { enableCompileCache, flushCompileCache } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { StreamScorer } from './api/kafka/index.ts'
import { logLevel, readCommandLine, usage } from './cli-line.ts'
import { commandOf } from './cli-options.ts'
import { holdSignals } from './held-signals.ts'
import type { Output } from './output/index.ts'
import { keepAllocationsYoung } from './v8-flags.ts'

// Before any request (src/v8-flags.ts): a request's objects are born young and die there.
keepAllocationsYoung()

// The program's compiled code is kept on disk: a start after the first loads it about a third
// faster. In NODE_COMPILE_CACHE, else the user's own cache directory, not the shared temporary
// one (another user could put code there first); NODE_DISABLE_COMPILE_CACHE=1 turns it off. A
// place it cannot write is no error: the start compiles as without it.
enableCompileCache(process.env.NODE_COMPILE_CACHE ? undefined : join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'specserve', 'node-compile-cache'))
// serve's signals are held before the rest of the program loads (src/held-signals.ts).
const held = commandOf(process.argv.slice(2)) === 'serve' ? holdSignals() : undefined
// The bench has flags of its own (see bench/run.ts); it is loaded only when asked for. An
// install without bench/ (the Docker image leaves it out) says so in one line, not a stack.
if (process.argv[2] === 'bench') {
  if (!existsSync(new URL('../bench/run.ts', import.meta.url))) {
    console.error('specserve: bench is not part of this install (no bench/ beside src/; the Docker image leaves it out): run it from a source checkout')
    process.exit(1)
  }
  const { benchMain } = await import('../bench/run.ts')
  process.exit(await benchMain(process.argv.slice(3)))
}

// eval has flags of its own (src/eval/cli.ts).
if (process.argv[2] === 'eval') {
  const { evalMain } = await import('./eval/cli.ts')
  process.exit(await evalMain(process.argv.slice(3)))
}

const line = readCommandLine(process.argv.slice(2))
if (line.kind === 'help') {
  held?.restore()
  // Asked for (--help): stdout; a bare `specserve` is a usage error: stderr, as every other.
  if (line.exitCode === 0) console.log(usage)
  else console.error(`specserve: no command given\n${usage}`)
  process.exit(line.exitCode)
}
if (line.kind === 'version') {
  held?.restore()
  console.log((await import('./version.ts')).packageVersion)
  process.exit(0)
}
if (line.command !== 'serve') held?.restore() // held only for serve: what came meanwhile applies as it would have
const { command, file, values, brokers } = line
const level = command === 'serve' ? logLevel() : 'info'
const modules = await import('./cli-modules.ts')
// Node writes the cache at exit otherwise, which a killed process (SIGKILL, the end of a stop's grace) never reaches.
flushCompileCache()
const {
  pino, atMost, routeGrpcLog, buildGrpcServer, buildServer, listenError, loadForCommand, formatIssue, shownPath, Gateway,
  healthMain, targetOf, announceListener, forgetListener, Registry, startReloadTriggers, openWarning, startTelemetry,
  modelWarnings, validate, kafkaSettings, CloseTimeoutError,
} = modules
/** Annotated: a call ends the flow (TypeScript reads `never` only from a declared type). */
const report: (err: unknown) => never = modules.report

/**
 * How long the exit waits for the last telemetry export (spans and metrics to the OTLP
 * endpoint): an endpoint that is down holds it 7-10 s otherwise, past every budget of the
 * stop (docs/operations.md, Graceful shutdown). What is not sent by then is lost.
 */
const TELEMETRY_FLUSH_MS = 2000

/** What closing the inference workers is given at a stop when the grace is spent: ample for idle ones. */
const WORKERS_CLOSE_MS = 1000

/**
 * Ends the process as `signal`'s default action does: at once, though a worker is inside an
 * inference. process.exit() would wait for that run to end (for ever, for a run with no end),
 * then onnxruntime aborts the process (134).
 */
function exitBy(signal: string, log: { once(event: 'drain', listener: () => void): unknown }): void {
  process.removeAllListeners(signal)
  const end = (): void => void process.kill(process.pid, signal)
  // pino writes asynchronously: the lines just logged go out first (the destination's 'drain'),
  // within half a second, stdout stuck or not. The destination stays open: a line logged
  // meanwhile is no error.
  log.once('drain', end)
  setTimeout(end, 500)
}

async function serve(file: string, stream: boolean, level: string): Promise<void> {
  const config = loadForCommand(file, stream)
  // Only a config that talks to Kafka loads Kafka's parts (src/cli-kafka.ts), and stream mode's only when it is on; --stream without output.kafka was refused above.
  const settings = kafkaSettings(config.output, config.baseDir)
  const kafka = settings ? await import('./cli-kafka.ts') : undefined
  const streamMode = settings && (stream || settings.stream.enabled) ? await import('./api/kafka/index.ts') : undefined
  // Models as data: which version of each repository model serves (none without repository:).
  let registry: ReturnType<typeof Registry.open> | undefined
  try {
    registry = Registry.open(config)
  } catch (err) {
    report(err)
  }
  const gateway = new Gateway(config, { versions: registry })
  // Its destination kept: an exit by a signal writes out what is buffered first (exitBy).
  const logOut = pino.destination({ dest: 1, sync: false })
  const logger = pino({ level }, logOut)
  const telemetry = startTelemetry(gateway, config.telemetry, { log: logger })
  const app = buildServer(config, { gateway, telemetry, registry, logger })
  registry?.attach(gateway, app.log)
  routeGrpcLog(app.log)
  // grpc_port: null turns the gRPC frontend off.
  const grpc = config.server.grpc_port === null ? undefined : buildGrpcServer(gateway, config, app.log)
  for (const warning of config.warnings) app.log.warn({ path: warning.path, line: warning.line }, formatIssue(shownPath(config.file), warning))
  const exposed = openWarning(config)
  if (exposed) app.log.warn({ host: config.server.host }, exposed)
  let output: Output | undefined
  let streaming: StreamScorer | null = null
  // SIGHUP and file changes reload (answered NOT_READY until the first load is done).
  const triggers = startReloadTriggers(gateway, app.log)
  const grace = config.server.shutdown_grace_ms
  let stopping = false
  /** Set once the exit by a signal began: a signal then changes nothing (the exit is under way). */
  let exiting = false
  const shutdown = async (signal: string): Promise<void> => {
    if (exiting) return
    if (stopping) {
      exiting = true
      app.log.warn({ signal }, 'second signal: exiting without waiting for the drain')
      return exitBy(signal, logOut)
    }
    stopping = true
    app.log.info({ signal, grace_ms: grace }, 'draining')
    triggers.stop()
    gateway.drain() // /readyz 503, new predicts NOT_READY: load balancers move away
    grpc?.setServing(false)
    streaming?.drain() // no more stream messages taken: the gateway would refuse them
    const drainedBy = performance.now() + grace
    // The repository watch and the model stream stop. A version being judged ends NOT_READY
    // (stored as `loading`, judged at the next start): nothing is judged, or served, for the stop.
    const registryClosed = registry?.close().catch((err: unknown) => app.log.warn({ err }, 'model registry: close failed'))
    // In-flight requests get the grace period to finish; then their connections are cut. So
    // are those of clients still sending a request: the server's header and request timeouts
    // stop with close(), so a client that sends half a request holds the stop until here.
    const cut = setTimeout(() => {
      app.log.warn({ grace_ms: grace }, 'grace period over: closing the REST connections still open (requests not answered, or not yet sent whole)')
      app.server.closeAllConnections()
    }, grace)
    await Promise.all([app.close().finally(() => clearTimeout(cut)), grpc?.close(grace)])
    // In-flight predicts are done: stop stream intake (cancelling what still runs when the
    // grace is over), then flush serving records (spool what the grace period cannot send).
    const until = performance.now() + (output?.graceMs ?? 0)
    await streaming?.close(output?.graceMs)
    // Shadow members run after the answer; their predicts' records go once they are done.
    await gateway.idle(Math.max(0, until - performance.now()))
    await output?.close(Math.max(0, until - performance.now()))
    // A version swap under way (loading a model) ends before its executors close, within the
    // grace: past it the exit cuts it, and the version, still `loading`, is judged at the next start.
    await atMost(Promise.all([registryClosed, registry?.idle()]), Math.max(0, drainedBy - performance.now()))
    // An inference a worker is inside cannot be stopped, and the workers close once their runs
    // end: the grace bounds that wait too (a run with no end would hold the stop for ever).
    let closed = false
    try {
      await gateway.close(Math.max(WORKERS_CLOSE_MS, drainedBy - performance.now()))
      closed = true
    } catch (err) {
      // A worker may still be inside a run: exit as for one.
      if (err instanceof CloseTimeoutError) app.log.warn({ grace_ms: grace, closing: err.pending }, 'grace period over: an inference still runs in a worker; exiting without it')
      else app.log.warn({ err }, 'closing the models failed: exiting without waiting for the workers')
    }
    await flushTelemetry()
    if (!closed) {
      exiting = true
      return exitBy(signal, logOut)
    }
    app.log.info({ signal }, 'stopped')
    process.exit(0)
  }
  const flushTelemetry = async (): Promise<void> => {
    // Settled, whether it succeeded or failed (and said so): only one still going is cut off.
    let settled = false
    const flush = telemetry
      .shutdown()
      .catch((err: unknown) => app.log.warn({ err }, 'telemetry flush failed'))
      .finally(() => (settled = true))
    await atMost(flush, TELEMETRY_FLUSH_MS)
    if (!settled) app.log.warn({ waited_ms: TELEMETRY_FLUSH_MS }, 'telemetry flush not done (OTLP endpoint slow or down): the rest is dropped')
  }
  /** A start that cannot go on: what was opened is closed, then the error is reported (exit 1). */
  const abandon = async (err: unknown, message?: string): Promise<never> => {
    triggers.stop()
    await Promise.all([app.close(), grpc?.close(0), output?.close(0), registry?.close().catch(() => undefined)])
    // No bound: no predict has run, and the exit below would abort inside a warm-up a worker is still in.
    await gateway.close(Infinity)
    await flushTelemetry()
    if (message === undefined) report(err)
    console.error(message)
    process.exit(1)
  }
  process.on('SIGTERM', (s) => void shutdown(s))
  process.on('SIGINT', (s) => void shutdown(s))
  // What came while the program loaded, held (or pending: the loop had not turned since) is
  // handled now: a stop binds nothing; a reload is queued until the first load is done.
  held?.release()
  if (held?.stop) return shutdown(held.stop)
  if (held?.hangup) process.emit('SIGHUP', 'SIGHUP')
  await new Promise(setImmediate)
  if (stopping) return
  const { host, rest_port: restPort, grpc_port: grpcPort } = config.server
  const stale = forgetListener()
  if (stale) app.log.warn(stale)
  try {
    await app.listen({ host, port: restPort })
  } catch (err) {
    await abandon(err, listenError('REST', host, restPort, err))
  }
  const unannounced = announceListener(targetOf(host, (app.server.address() as AddressInfo).port, config.server.tls), config.file)
  if (unannounced) app.log.warn(unannounced)
  if (grpc) {
    try {
      app.log.info({ port: await grpc.listen(host, grpcPort as number) }, 'gRPC listening')
    } catch (err) {
      await abandon(err, listenError('gRPC', host, grpcPort as number, err))
    }
  }
  // Outputs attach before the gateway turns ready, so the first predict already has its record.
  try {
    output = kafka?.startOutput(gateway, app.log)
    // Known before it starts consuming: a signal meanwhile drains and closes it like a started one.
    streaming = streamMode?.streamScorer(gateway, app.log, stream) ?? null
    await streaming?.start()
    await gateway.load()
  } catch (err) {
    // A signal during the load closed what was loading: shutdown carries on, not a failed start (what failed is still said).
    if (stopping) return app.log.warn({ err }, 'the load ended in an error during shutdown')
    await abandon(err)
  }
  if (stopping) return // a signal during the load: shutdown carries on
  // Ready as /readyz says: once loaded and nothing holds readiness (the model stream catching up,
  // which lets go by its own limit), not only once the registry has judged what arrived meanwhile.
  const readyForTraffic = gateway.holds.released().then(() => {
    if (gateway.readyForTraffic) grpc?.setServing(true) // not once a drain began
  })
  const waiting = gateway.holds.waiting()
  if (Object.keys(waiting).length) app.log.info({ waiting_for: waiting }, 'loaded; readiness waits')
  for (const { model, message } of modelWarnings(gateway)) app.log.warn({ model }, message)
  // New versions that arrived while it was down are judged now; the repository is watched from here on.
  await registry?.start()
  await readyForTraffic
  if (stopping) return // a signal while the registry started: shutdown carries on
  app.log.info({ ensembles: [...gateway.ensembles.keys()], tracing: telemetry.tracing }, 'ready')
}

async function publish(file: string | undefined): Promise<void> {
  // Present and well-formed: checked with the command line (cli-line.ts).
  const { topic, name = '', version = '0', description = '', location, sha256 } = values
  const version_ = Number(version)
  const { publishModel } = await import('./registry/publish.ts')
  try {
    const sent = await publishModel({ brokers: brokers ?? [], topic: topic ?? 'specserve.models', name, version: version_, description, file, location, sha256: sha256?.toLowerCase() })
    console.log(`published ${name} version ${version_ || '(next)'} to ${topic ?? 'specserve.models'} (${sent.bytes} bytes, sha256 ${sent.sha256})`)
  } catch (err) {
    console.error(`publish-model failed: ${(err as Error).message}`)
    process.exit(1)
  }
}

switch (command) {
  case 'serve':
    await serve(file ?? 'examples/demo.yaml', values.stream === true, level)
    break
  case 'validate':
    await validate(file ?? 'examples/demo.yaml', values.stream === true)
    break
  case 'health':
    // The image's HEALTHCHECK runs src/health.ts itself (see there), with the same --announced.
    process.exitCode = await healthMain(file ?? 'examples/demo.yaml', values.announced === true)
    break
  case 'publish-model':
    await publish(file)
    break
}
