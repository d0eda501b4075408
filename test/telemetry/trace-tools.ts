// What the tracing tests share: a V2 model server that remembers each infer's traceparent,
// and a span processor that says when a span of a given name has ended.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'

/** A stand-in V2 (Open Inference Protocol) model server with one input, remembering the traceparent of each infer; its answers name version 2. */
export async function fakeV2Server(input: { name: string; shape: number[] }): Promise<{ server: Server; url: string; seen: (string | undefined)[] }> {
  const seen: (string | undefined)[] = []
  const server = createServer((req, res) => {
    const send = (body: object): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    req.resume()
    req.on('end', () => {
      if (req.method === 'GET') {
        return send({ name: 'remote', platform: 'test', inputs: [{ ...input, datatype: 'FP32' }], outputs: [{ name: 'label', datatype: 'INT64', shape: [-1] }] })
      }
      seen.push(req.headers.traceparent as string | undefined)
      // Its metadata lists no versions; its answers name version 2.
      send({ model_name: 'remote', model_version: '2', outputs: [{ name: 'label', datatype: 'INT64', shape: [1], data: [1] }] })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen }
}

/** Exports like SimpleSpanProcessor, and keeps every span as it ends (the exporter may get it later). */
export class SpanWatcher extends SimpleSpanProcessor {
  readonly ended: ReadableSpan[] = []
  private waiters: { name: string; resolve: (span: ReadableSpan) => void }[] = []

  constructor(exporter: SpanExporter) {
    super(exporter)
  }

  /** Resolves with the next span of that name to end. */
  nextEnd(name: string): Promise<ReadableSpan> {
    return new Promise((resolve) => this.waiters.push({ name, resolve }))
  }

  override onEnd(span: ReadableSpan): void {
    super.onEnd(span)
    this.ended.push(span)
    const waiting = this.waiters
    this.waiters = []
    for (const w of waiting) {
      if (w.name === span.name) w.resolve(span)
      else this.waiters.push(w)
    }
  }
}
