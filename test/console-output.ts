// What a command's main function printed, for tests that call it in-process: console.log and
// console.error are captured (not shown) while it runs, and restored after.
import { vi } from 'vitest'

export async function printed<T>(main: () => Promise<T>): Promise<{ code: T; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')))
  try {
    const code = await main()
    return { code, out: out.join('\n'), err: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}
