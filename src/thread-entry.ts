// Starting a gateway's threads (the inference workers, the producer thread) from a module
// file. A thread inherits the process's node options, and Node refuses a thread whose entry
// is a file in a process started with `--input-type` (which says how to read a main entry
// given as text: `node --input-type=module -e …`, or a script on stdin):
// ERR_INPUT_TYPE_NOT_ALLOWED, every model in a worker failing to load. In such a process
// the thread's entry is a line of text that imports the file instead; the thread still
// inherits every option, which an explicit execArgv would not allow (Node refuses V8's
// and per-process options there, such as --max-old-space-size).
import { Worker, type WorkerOptions } from 'node:worker_threads'

const INPUT_TYPE = /^--input[-_]type(=|$)/

/** Whether the options have `--input-type` (`=` or a separate value, dashes or underscores), from the command line or NODE_OPTIONS. */
export const hasInputType = (execArgv: readonly string[], nodeOptions = ''): boolean => [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => INPUT_TYPE.test(arg))

/** What a thread of `file` is started from: the file, or a line that imports it (with `eval`) in a process started with --input-type. */
export function threadEntry(file: URL, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): { readonly entry: string | URL; readonly eval: boolean } {
  if (!hasInputType(execArgv, nodeOptions)) return { entry: file, eval: false }
  // An import() works in the text read as a module or as a script, whichever --input-type says.
  // Its failure is thrown again as an uncaught exception, as a file entry's would be, so the
  // thread's 'error' event carries it whatever --unhandled-rejections says.
  return { entry: `import(${JSON.stringify(file.href)}).catch((err) => process.nextTick(() => { throw err }))`, eval: true }
}

/** A thread running the module `file`, in any process (see above). */
export function startThread(file: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  const { entry, eval: asText } = threadEntry(file)
  return new Worker(entry, { ...options, eval: asText })
}
