// serve's first signals, held while the program starts. Without a listener Node ends the
// process at SIGHUP, SIGTERM or SIGINT, and serve installs its own only once its modules are
// loaded (1-2 s), the config read and the listeners built: a reload asked for then killed
// the gateway (exit 129), and a stop was not a stop (exit 143, not 0). cli.ts holds them
// (for serve, as commandOf in src/cli-options.ts finds it) before it imports anything else;
// serve then takes over and acts on what was held (a stop before it binds anything; a
// reload, queued until the first load is done). This module imports nothing: it must run
// before the rest of the program is loaded.

export interface HeldSignals {
  /** The SIGTERM or SIGINT received while held (a second one exits 1 at once, as during a drain). */
  readonly stop: NodeJS.Signals | undefined
  /** Whether a SIGHUP was received while held. */
  readonly hangup: boolean
  /** Removes the held listeners: serve's own are installed, and it acts on what was held. */
  release(): void
  /** Removes them and sends again what was held, to be handled as if nothing held it (by default the process ends). */
  restore(): void
}

const STOPS = ['SIGTERM', 'SIGINT'] as const

export function holdSignals(): HeldSignals {
  let stop: NodeJS.Signals | undefined
  let hangup = false
  const onStop = (signal: NodeJS.Signals): void => {
    if (stop) process.exit(1)
    stop = signal
  }
  const onHangup = (): void => {
    hangup = true
  }
  for (const signal of STOPS) process.on(signal, onStop)
  process.on('SIGHUP', onHangup)
  const release = (): void => {
    for (const signal of STOPS) process.off(signal, onStop)
    process.off('SIGHUP', onHangup)
  }
  return {
    get stop() {
      return stop
    },
    get hangup() {
      return hangup
    },
    release,
    restore() {
      release()
      if (hangup) process.kill(process.pid, 'SIGHUP')
      if (stop) process.kill(process.pid, stop)
    },
  }
}
