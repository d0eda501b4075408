// Latency profiles for `specserve eval --latency-profile`: extra delay a member's answers
// take, replayed so an ensemble is judged under realistic lateness (a remote member's
// measured distribution, an injected straggler). The member still runs at once; its answer
// is held back by the delay, as a slow network would, and dropped if the request is over.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { commaList, type ListFlag } from '../comma-list.ts'
import { MAX_TIMER_MS } from '../config/forms.ts'
import type { Executor } from '../executors/types.ts'
import { EvalInputError, refuseInput } from './errors.ts'

/** Delay in ms for a model's k-th call (k counts from 0 per model). */
export type DelaySource = (k: number) => number

export interface LatencyProfile {
  /** The profile as given, for the report. */
  readonly text: string
  readonly delays: ReadonlyMap<string, DelaySource>
}

const PROFILE: ListFlag = { flag: '--latency-profile', one: 'delay model=ms[@fraction] (or a .json file)', many: 'delays model=ms[@fraction]', example: 'a=30,b=5@0.5' }

/** Why a delay over MAX_TIMER_MS is refused (the config refuses such timers for the same reason). */
const TOO_LONG = `a delay must be at most ${MAX_TIMER_MS} ms (about 24.8 days): Node.js fires a longer timer at once; any delay past the budget already means the answer never comes in time`

/**
 * `model=ms` delays every answer of `model`; `model=ms@fraction` a fraction of them, spread
 * evenly (0.25: every 4th call); several are joined with `,`. A path ending in `.json` names
 * a file `{ "<model>": [ms, ...] }` whose delays are replayed in turn, from the start again
 * when they run out (e.g. latencies measured on a remote member). A delay is at most
 * MAX_TIMER_MS (about 24.8 days): Node.js fires a longer timer after 1 ms, which would make
 * a member meant never to answer look fast. Any delay past the budget already never answers in time.
 */
export function parseLatencyProfile(text: string): LatencyProfile {
  if (text.endsWith('.json')) return { text, delays: fromFile(text) }
  const delays = new Map<string, DelaySource>()
  for (const part of commaList(text, PROFILE, refuseInput)) {
    const match = /^([^=\s]+)\s*=\s*([\d.]+)\s*(?:@\s*([\d.]+))?$/.exec(part)
    if (!match) throw new EvalInputError(`--latency-profile: "${part}" is not model=ms or model=ms@fraction`)
    const [, model, msText, fractionText] = match as unknown as [string, string, string, string | undefined]
    const ms = Number(msText)
    const fraction = fractionText === undefined ? 1 : Number(fractionText)
    if (!Number.isFinite(ms) || !(fraction >= 0 && fraction <= 1)) {
      throw new EvalInputError(`--latency-profile: "${part}": the delay must be a number of ms and the fraction within 0..1`)
    }
    if (ms > MAX_TIMER_MS) throw new EvalInputError(`--latency-profile: "${part}": ${TOO_LONG}`)
    if (delays.has(model)) throw new EvalInputError(`--latency-profile: "${model}" is given twice (one delay per model; a share of calls: ${model}=ms@fraction)`)
    // Call k is delayed when the running count of delayed calls steps up: exactly `fraction` of them, evenly spread.
    delays.set(model, (k) => (Math.floor((k + 1) * fraction) > Math.floor(k * fraction) ? ms : 0))
  }
  return { text, delays }
}

function fromFile(path: string): Map<string, DelaySource> {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new EvalInputError(`--latency-profile ${path}: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new EvalInputError(`--latency-profile ${path}: expected an object { "<model>": [ms, ...] }`)
  }
  const delays = new Map<string, DelaySource>()
  for (const [model, list] of Object.entries(parsed)) {
    if (!Array.isArray(list) || list.length === 0 || !list.every((v) => typeof v === 'number' && v >= 0)) {
      throw new EvalInputError(`--latency-profile ${path}: "${model}" must be a non-empty list of delays in ms`)
    }
    const values = list as number[]
    const over = values.find((ms) => !(ms <= MAX_TIMER_MS)) // 1e400 in JSON is Infinity
    if (over !== undefined) throw new EvalInputError(`--latency-profile ${path}: "${model}": ${over} ms: ${TOO_LONG}`)
    delays.set(model, (k) => values[k % values.length]!)
  }
  return delays
}

/** Holds back the executor's answers by the profile's delays (for eval only: it wraps the instance). */
export function delayAnswers(executor: Executor, delay: DelaySource): void {
  const infer = executor.infer.bind(executor)
  let calls = 0
  executor.infer = (inputs, ctx) => {
    const ms = delay(calls++)
    if (ms <= 0) return infer(inputs, ctx)
    const signal = ctx.signal
    return infer(inputs, ctx).then(async (outputs) => {
      await sleep(ms, undefined, { signal })
      return outputs
    })
  }
}
