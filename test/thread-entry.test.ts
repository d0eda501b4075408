// What a thread is started from: its module file, or, in a process started with --input-type
// (which makes Node refuse a thread whose entry is a file), a line of text importing it.
import { describe, expect, it } from 'vitest'
import { hasInputType, threadEntry } from '../src/thread-entry.ts'

const file = new URL('file:///opt/specserve/src/executors/onnx/worker.ts')

describe('a thread entry', () => {
  it('is the module file itself in a process started without --input-type', () => {
    for (const argv of [[], ['--cpu-prof'], ['--max-old-space-size=512', '--conditions=dev']]) {
      expect(hasInputType(argv)).toBe(false)
      expect(threadEntry(file, argv)).toEqual({ entry: file, eval: false })
    }
  })

  it('is a line importing the file, evaluated, with --input-type in either spelling', () => {
    for (const argv of [['--input-type=module', '-e', 'x'], ['--input-type', 'commonjs', '-e', 'x'], ['--max-old-space-size=512', '--input-type=module']]) {
      expect(hasInputType(argv)).toBe(true)
      expect(threadEntry(file, argv)).toEqual({ entry: 'import("file:///opt/specserve/src/executors/onnx/worker.ts")', eval: true })
    }
  })
})
