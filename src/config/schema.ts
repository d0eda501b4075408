// The YAML file's shape. Model entries and strategy options are checked a second time
// against their own kind's or strategy's schema, so the errors can name the right path.
import Type, { type Static } from 'typebox'
import { RepositorySchema } from '../registry/config.ts'
import { AuthSchema, TlsSchema } from '../security/config.ts'
import { MAX_KEEP_ALIVE_MS, MAX_TIMER_MS } from './forms.ts'

const Port = Type.Integer({ minimum: 0, maximum: 65535 })
/** A duration that becomes a timer: at most MAX_TIMER_MS (a longer timer would fire at once). */
const TimerMs = (minimum: number): ReturnType<typeof Type.Integer> => Type.Integer({ minimum, maximum: MAX_TIMER_MS })

export const BudgetSchema = Type.Object(
  {
    default: Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMER_MS }),
    max: Type.Number({ exclusiveMinimum: 0, maximum: MAX_TIMER_MS }),
  },
  { additionalProperties: false },
)

const SelectPolicy = Type.Union([Type.Literal('all'), Type.Literal('latency-aware'), Type.Literal('adaptive')])

/** Member selection: which members a request starts (docs/strategies.md, "Member selection"). */
export const SelectSchema = Type.Union([
  SelectPolicy,
  Type.Object(
    {
      policy: SelectPolicy,
      /** adaptive: the share of answers that must equal what every member together would answer. */
      accuracy_target: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      /** adaptive: the share of requests that start every member, to keep the statistics live. */
      explore: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    },
    { additionalProperties: false },
  ),
])

export const EnsembleSchema = Type.Object(
  {
    strategy: Type.Union([Type.String({ minLength: 1 }), Type.Object({ name: Type.String({ minLength: 1 }) })]),
    models: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    budget_ms: Type.Optional(BudgetSchema),
    select: Type.Optional(SelectSchema),
    description: Type.Optional(Type.String()),
    /** Models run beside the ensemble on a sample of predicts, after the answer: never chosen, recorded, agreement measured. */
    shadow: Type.Optional(
      Type.Object(
        { models: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), sample: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export const ServerSchema = Type.Object(
  {
    host: Type.Optional(Type.String()),
    rest_port: Type.Optional(Port),
    grpc_port: Type.Optional(Type.Union([Port, Type.Null()])),
    body_limit_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    grpc_max_receive_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    grpc_max_send_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    max_in_flight: Type.Optional(Type.Integer({ minimum: 1 })),
    shutdown_grace_ms: Type.Optional(TimerMs(0)),
    instance: Type.Optional(Type.String()),
    tls: Type.Optional(TlsSchema),
    // Hostile clients (slow headers and bodies, idle connections): see docs/security.md.
    headers_timeout_ms: Type.Optional(TimerMs(100)),
    request_timeout_ms: Type.Optional(TimerMs(100)),
    keep_alive_timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: MAX_KEEP_ALIVE_MS })),
    max_connections: Type.Optional(Type.Integer({ minimum: 1 })),
    grpc_idle_timeout_ms: Type.Optional(TimerMs(1000)),
    grpc_max_concurrent_streams: Type.Optional(Type.Integer({ minimum: 1 })),
    grpc_max_connections: Type.Optional(Type.Integer({ minimum: 1 })),
    grpc_max_compressed_calls: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
)

export const ExecutorsSchema = Type.Object(
  {
    onnx_workers: Type.Optional(Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })])),
    onnx_queue: Type.Optional(Type.Integer({ minimum: 1 })),
    inline_max_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    onnx_worker_nice: Type.Optional(Type.Integer({ minimum: 0, maximum: 19 })),
  },
  { additionalProperties: false },
)

export const TelemetrySchema = Type.Object(
  {
    otlp_endpoint: Type.Optional(Type.Union([Type.String({ pattern: '^https?://' }), Type.Null()])),
    prometheus: Type.Optional(Type.Boolean()),
    service_name: Type.Optional(Type.String({ minLength: 1 })),
    sample_ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
)

export const AdminSchema = Type.Object(
  {
    reload_endpoint: Type.Optional(Type.Boolean()),
    watch_config: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

export const RootSchema = Type.Object(
  {
    models: Type.Record(Type.String(), Type.Object({ kind: Type.String() })),
    ensembles: Type.Record(Type.String(), EnsembleSchema),
    server: Type.Optional(ServerSchema),
    executors: Type.Optional(ExecutorsSchema),
    // Output sinks validate their own sections (see src/output); unknown keys there are theirs to reject.
    output: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    telemetry: Type.Optional(TelemetrySchema),
    admin: Type.Optional(AdminSchema),
    /** Models as data: where versions of `source: repository` models live (src/registry). */
    repository: Type.Optional(RepositorySchema),
    auth: Type.Optional(AuthSchema),
  },
  { additionalProperties: false },
)

export type RawConfig = Static<typeof RootSchema>
export type RawEnsemble = Static<typeof EnsembleSchema>
