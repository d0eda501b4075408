// The command line of serve, validate, health and publish-model, and serve's LOG_LEVEL, checked
// before the program loads (1-2 s): --help and every usage error (exit 2) are answered at once.
// It imports nothing of the program.
import { parseArgs } from 'node:util'
import { COMMAND_FLAGS, OPTIONS } from './cli-options.ts'
import { commaList, type ListFlag } from './comma-list.ts'
import { evalUsage } from './eval/usage.ts'

export const usage = `usage:
  specserve serve [-c config.yaml]     serve the ensembles of a config (default examples/demo.yaml)
    --stream                           also score requests from output.kafka.stream.input_topic
  specserve validate <config.yaml>     check a config, models included; print each error with its line
                                       (writes nothing: says which repository version would serve)
    --stream                           also that it can serve --stream (it has output.kafka)
  specserve health [-c config.yaml]    GET /healthz of the gateway serving that config (where it announced
                                       it listens, or the config says; http or https); exit 0 on 200, 1 with why
    --announced                        the gateway serve announced, whatever config it serves (the config
                                       read only when none is announced), as the image's HEALTHCHECK asks
  specserve --version                  print specserve's version
  specserve bench [--quick]            run the benchmarks (bench/run.ts); write docs/BENCHMARKS.md
  specserve publish-model --brokers B --topic T --name N [--version V] [--description D] model.onnx
                                       publish a model version on the models topic (docs/models.md);
                                       --location L sends a file path or http(s) URL instead of the bytes,
                                       with the model file's sha256 (the file is hashed, not sent), or
    --sha256 HEX                       with this one instead of a model file (64 hex digits)
${evalUsage}`

type Values = ReturnType<typeof parse>['values']

/** A command line that names a command of ours with its own flags and at most one file. */
export type CommandLine =
  | { readonly kind: 'help'; readonly exitCode: 0 | 2 }
  | { readonly kind: 'version' }
  | {
      readonly kind: 'command'
      readonly command: keyof typeof COMMAND_FLAGS
      readonly file: string | undefined
      readonly values: Values
      /** publish-model's --brokers, as a list. */
      readonly brokers: readonly string[] | undefined
    }

const parse = (args: string[]) => parseArgs({ args, allowPositionals: true, tokens: true, options: OPTIONS })

/** Reads `args`; a usage error is printed with the usage and ends the process (exit 2). */
export function readCommandLine(args: string[]): CommandLine {
  // Alone, --version is the program's; after publish-model it is the model's (--version V).
  if (args.length === 1 && args[0] === '--version') return { kind: 'version' }
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(args)
  } catch (err) {
    // Node adds how to pass a positional that starts with '-': no command of ours takes one.
    usageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''))
  }
  const { positionals, values, tokens } = parsed
  const [command, ...files] = positionals
  if (values.help || !command) return { kind: 'help', exitCode: command || values.help ? 0 : 2 }
  const flags: readonly string[] | undefined = COMMAND_FLAGS[command]
  if (!flags) usageError(`unknown command "${command}"`)
  for (const token of tokens) {
    if (token.kind === 'option' && !flags.includes(token.name)) usageError(`${command} has no option '${token.rawName}'`)
  }
  // One file: a second one (or -c and a file both) would be ignored, and validate might check one file while serve serves the other.
  const what = command === 'publish-model' ? 'model file' : 'config file'
  if (files.length > 1) usageError(`${command} takes one ${what}, not ${files.length}: ${files.join(' ')}`)
  if (values.config !== undefined && files.length > 0) usageError(`${command} takes one config file: -c ${values.config} and ${files[0]} are two`)
  const file = values.config ?? files[0]
  const brokers = command === 'publish-model' ? checkPublish(values, file) : undefined
  return { kind: 'command', command, file, values, brokers }
}

const BROKERS: ListFlag = { flag: '--brokers', one: 'broker host:port', many: 'brokers host:port', example: 'kafka1:9092,kafka2:9092' }

/** publish-model's flags: what it needs, and a version that is one; returns its brokers. */
function checkPublish(values: Values, file: string | undefined): string[] {
  const version = Number(values.version ?? '0')
  if (values.brokers === undefined || !values.name || (!file && !values.location) || !Number.isSafeInteger(version) || version < 0) {
    console.error(`publish-model needs --brokers, --name and a model file (or --location with the file or --sha256); --version is an integer from 0 to ${Number.MAX_SAFE_INTEGER}\n${usage}`)
    process.exit(2)
  }
  // A location record with no sha256 cannot be known for a replay before its location is read:
  // one whose server is gone since would hold the stream, tried again for ever.
  if (values.sha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/i.test(values.sha256)) usageError(`--sha256 "${values.sha256.slice(0, 80)}" is not a sha256: 64 hex digits`)
    if (!values.location) usageError('--sha256 goes with --location: a model file sent inline is hashed as it is sent')
    if (file) usageError(`--sha256 and a model file are two sha256s: give one (the file ${file} is hashed)`)
  } else if (values.location && !file) {
    usageError('publish-model --location needs the model file (hashed, not sent) or --sha256 HEX: a record with no sha256 cannot be known for a replay unread, and one whose location is gone would be tried again for ever')
  }
  return commaList(values.brokers, BROKERS, usageError)
}

/** pino's level names, most severe first, and `silent` (test/cli-line.test.ts keeps the list pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** LOG_LEVEL, `info` if unset or empty; another that is not a level is a usage error (exit 2). */
export function logLevel(level = process.env.LOG_LEVEL || 'info'): string {
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level
  console.error(`specserve: LOG_LEVEL=${level} is not a log level: ${LOG_LEVELS.join(', ')}`)
  process.exit(2)
}

function usageError(message: string): never {
  console.error(`specserve: ${message}\n${usage}`)
  process.exit(2)
}
