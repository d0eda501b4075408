// Running the CLI as a user does, for the CLI's tests: its exit code and output.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { root, startProcess } from './helpers.ts'
import { tempDir } from './temp-dirs.ts'

export const cli = join(root, 'src', 'cli.ts')

export async function run(args: string[], script = cli): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(process.execPath, [script, ...args])
  const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)))
  return { code, output: proc.output() }
}

/** The CLI's exit code, stdout and stderr, apart. */
export async function runSplit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

/** Every directory and file under `dir`, with the files' bytes: to show a command wrote nothing. */
export function snapshot(dir: string): Record<string, string> {
  const tree: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    tree[path] = entry.isDirectory() ? '(dir)' : readFileSync(path).toString('base64')
  }
  return tree
}

/** A small config of one model, on loopback, written to a temporary directory. */
export function smallConfig(): string {
  const file = join(tempDir('specserve-cli-'), 'small.yaml')
  writeFileSync(file, `server: { host: 127.0.0.1 }\nmodels:\n  lr: { kind: onnx, path: ${join(root, 'models', 'cancer_logreg.onnx')} }\nensembles:\n  e: { strategy: deadline-fallback, models: [lr] }\n`)
  return file
}
