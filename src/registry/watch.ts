// The repository directory watched (recursively, debounced): a version directory moved in is
// picked up without a signal. Watching is a convenience: uploads and the stream work without it.
import { watch, type FSWatcher } from 'node:fs'
import type { Logger } from '../types.ts'

export interface RepositoryWatch {
  close(): void
}

export function watchRepository(path: string, onChange: () => void, log: Logger, debounceMs = 200): RepositoryWatch {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(path, { recursive: true, persistent: false }, () => {
      clearTimeout(timer)
      timer = setTimeout(onChange, debounceMs)
    })
    watcher.on('error', (err) => log.warn({ err, repository: path }, 'repository watch stopped; uploads still work'))
  } catch (err) {
    log.warn({ err, repository: path }, 'cannot watch the repository; uploads still work')
  }
  return {
    close() {
      clearTimeout(timer)
      watcher?.close()
    },
  }
}
