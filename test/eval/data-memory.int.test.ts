// Reading a large labeled CSV costs about its numbers, not its text: the file is read as a
// stream and the features kept in one array of doubles. Read whole as strings (every cell a
// string, an array per row) a file took ~16-19 times its size, and a large one ended the
// process out of memory. Measured in a process of its own: its peak RSS is the reading's.
import { execFile } from 'node:child_process'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { root } from '../helpers.ts'
import { tempDir } from '../temp-dirs.ts'

/** A CSV of 13 feature columns and a label, about `mb` MB. */
function bigCsv(file: string, mb: number): void {
  const lines = [Array.from({ length: 13 }, (_, i) => `f${i}`).join(',') + ',label']
  let size = 0
  for (let r = 0; size < mb * 1e6; r++) {
    const line = Array.from({ length: 13 }, (_, i) => (((r * 7919 + i * 104729) % 100000) / 1000).toString()).join(',') + `,${r % 3}`
    lines.push(line)
    size += line.length + 1
  }
  writeFileSync(file, lines.join('\n') + '\n')
}

describe('readLabeledCsv on a large file', () => {
  it('grows the RSS by under 3 times the file size (its doubles and a chunk), not ~16 times', async () => {
    const dir = tempDir('specserve-eval-memory-')
    const csv = join(dir, 'big.csv')
    bigCsv(csv, 25)
    const script = join(dir, 'read.mjs')
    writeFileSync(
      script,
      `import { readLabeledCsv } from ${JSON.stringify(join(root, 'src', 'eval', 'data.ts'))}
      const before = process.memoryUsage().rss
      const data = readLabeledCsv(${JSON.stringify(csv)}, 'label')
      console.log(JSON.stringify({ rows: data.rows, growth: process.resourceUsage().maxRSS * 1024 - before }))`,
    )
    const { stdout } = await promisify(execFile)(process.execPath, [script], { maxBuffer: 1 << 20 })
    const { rows, growth } = JSON.parse(stdout) as { rows: number; growth: number }
    const size = statSync(csv).size
    // 13 doubles a row are 104 bytes against ~90 of text: about 1.2 times the file, plus the room grown.
    expect(growth / size).toBeLessThan(3)
    expect(rows).toBeGreaterThan(250_000)
  })
})
