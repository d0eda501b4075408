// serve's signals while the program loads (src/held-signals.ts): held, not Node's default
// (which ended the process), and given to serve, or sent again for another command. The held
// listeners are called directly: a real signal would reach the test runner's own listeners too.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { commandOf } from '../src/cli-options.ts'
import { holdSignals } from '../src/held-signals.ts'

/** The listener holdSignals() added last for `signal`. */
const heldListener = (signal: NodeJS.Signals): ((signal: NodeJS.Signals) => void) => process.listeners(signal).at(-1) as (signal: NodeJS.Signals) => void

afterEach(() => vi.restoreAllMocks())

describe('holdSignals', () => {
  it('records a stop and a reload instead of ending the process; release() removes its listeners', () => {
    const before = ['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))
    const held = holdSignals()
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before.map((n) => n + 1))
    heldListener('SIGHUP')('SIGHUP')
    heldListener('SIGINT')('SIGINT')
    expect({ stop: held.stop, hangup: held.hangup }).toEqual({ stop: 'SIGINT', hangup: true })
    held.release()
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before)
  })

  it('a second stop signal exits 1 at once, as during a drain', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => undefined as never)
    const held = holdSignals()
    heldListener('SIGTERM')('SIGTERM')
    expect(exit).not.toHaveBeenCalled()
    heldListener('SIGTERM')('SIGTERM')
    expect(exit).toHaveBeenCalledWith(1)
    held.release()
  })

  it('restore() (another command than serve) sends again what was held, once its listeners are gone', () => {
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true)
    const held = holdSignals()
    held.restore()
    expect(kill).not.toHaveBeenCalled()
    const again = holdSignals()
    const listeners = process.listenerCount('SIGTERM')
    heldListener('SIGHUP')('SIGHUP')
    heldListener('SIGTERM')('SIGTERM')
    kill.mockImplementation(() => (expect(process.listenerCount('SIGTERM')).toBe(listeners - 1), true))
    again.restore()
    expect(kill.mock.calls).toEqual([[process.pid, 'SIGHUP'], [process.pid, 'SIGTERM']])
  })
})

describe('commandOf', () => {
  it('finds the command past options and their values, as parseArgs will', () => {
    expect(commandOf(['serve'])).toBe('serve')
    expect(commandOf(['-c', 'serve.yaml', 'validate'])).toBe('validate')
    expect(commandOf(['--config', 'x.yaml', '--stream', 'serve'])).toBe('serve')
    expect(commandOf(['--config=x.yaml', 'serve'])).toBe('serve')
    expect(commandOf(['validate', 'serve'])).toBe('validate')
    expect(commandOf(['--', 'serve'])).toBe('serve')
    expect(commandOf(['-hc', 'x.yaml', 'serve'])).toBe('serve')
    expect(commandOf(['-h'])).toBeUndefined()
    expect(commandOf([])).toBeUndefined()
  })
})
