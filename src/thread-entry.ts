// Starting a gateway's threads (the inference workers, the producer thread) from a module
// file. A thread inherits the process's node options, and Node refuses a thread whose entry
// is a file in a process started with `--input-type` (which says how to read a main entry
// given as text: `node --input-type=module -e …`, or a script on stdin):
// ERR_INPUT_TYPE_NOT_ALLOWED, every model in a worker failing to load. In such a process
// the thread's entry is a line of text that imports the file instead; the thread still
// inherits every option, which an explicit execArgv would not allow (Node refuses V8's
// and per-process options there, such as --max-old-space-size).
import { Worker, type WorkerOptions } from 'node:worker_threads'

/** Whether `execArgv` has `--input-type` (either spelling): a thread's entry must then be text. */
export const hasInputType = (execArgv: readonly string[]): boolean => execArgv.some((arg) => arg === '--input-type' || arg.startsWith('--input-type='))

const entryAsText = hasInputType(process.execArgv)

/** What a thread of `file` is started from: the file, or a line that imports it (with `eval`) in a process started with --input-type. */
export function threadEntry(file: URL, execArgv: readonly string[] = process.execArgv): { readonly entry: string | URL; readonly eval: boolean } {
  // An import() in the text works read as a module or as a script, whichever --input-type says.
  return hasInputType(execArgv) ? { entry: `import(${JSON.stringify(file.href)})`, eval: true } : { entry: file, eval: false }
}

/** A thread running the module `file`, in any process (see above). */
export function startThread(file: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  if (!entryAsText) return new Worker(file, options)
  const { entry } = threadEntry(file)
  return new Worker(entry, { ...options, eval: true })
}
