// What a thread is started from: its module file, or, in a process started with --input-type
// (which makes Node refuse a thread whose entry is a file), a line of text importing it.
import { describe, expect, it } from 'vitest'
import { hasInputType, threadEntry } from '../src/thread-entry.ts'

const file = new URL('file:///opt/specserve/src/executors/onnx/worker.ts')
const importing = 'import("file:///opt/specserve/src/executors/onnx/worker.ts").catch((err) => process.nextTick(() => { throw err }))'

describe('a thread entry', () => {
  it('is the module file itself in a process started without --input-type', () => {
    for (const [argv, nodeOptions] of [[[], ''], [['--cpu-prof'], '--max-old-space-size=512'], [['--conditions=dev', '--input-typo=x'], '--inspect']] as const) {
      expect(hasInputType(argv, nodeOptions)).toBe(false)
      expect(threadEntry(file, argv, nodeOptions)).toEqual({ entry: file, eval: false })
    }
  })

  it('is a line importing the file, evaluated, with --input-type in any spelling, on the command line or in NODE_OPTIONS', () => {
    const cases: [string[], string][] = [
      [['--input-type=module', '-e', 'x'], ''],
      [['--input-type', 'commonjs', '-e', 'x'], ''],
      [['--input_type=module'], ''],
      [['--max-old-space-size=512'], '--inspect --input-type=module'],
    ]
    for (const [argv, nodeOptions] of cases) {
      expect(hasInputType(argv, nodeOptions)).toBe(true)
      expect(threadEntry(file, argv, nodeOptions)).toEqual({ entry: importing, eval: true })
    }
  })
})
