// The flags of serve, validate, health and publish-model: one table, read by the command
// line's parse (cli-line.ts), by commandOf before the program loads (cli.ts holds serve's signals
// by it: src/held-signals.ts) and by each command's allowed flags. It imports nothing of the
// program: it is loaded before the rest of it.
import { parseArgs } from 'node:util'

export const OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  stream: { type: 'boolean' },
  // health
  announced: { type: 'boolean' },
  // publish-model
  brokers: { type: 'string' },
  topic: { type: 'string' },
  name: { type: 'string' },
  version: { type: 'string' },
  description: { type: 'string' },
  location: { type: 'string' },
  sha256: { type: 'string' },
} as const

/** Each command's flags (--help aside): another command's is a usage error, not ignored. */
export const COMMAND_FLAGS: Readonly<Record<string, readonly (keyof typeof OPTIONS)[]>> = {
  serve: ['config', 'stream'],
  validate: ['config', 'stream'],
  health: ['config', 'announced'],
  'publish-model': ['brokers', 'topic', 'name', 'version', 'description', 'location', 'sha256'],
}

/** The command a specserve command line names (its first argument that is neither an option nor an option's value), before the line is checked. */
export function commandOf(args: readonly string[]): string | undefined {
  return parseArgs({ args: [...args], options: OPTIONS, strict: false, allowPositionals: true }).positionals[0]
}
