// The held-out splits models/train.py writes beside the models: one CSV per demo task, the
// rows the models never trained on, with the truth in the last column.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const dir = join(import.meta.dirname, '..', '..', 'models')
interface TaskEntry { kind: string; features: number; test_rows: number; holdout: string; samples: number[][]; truth: number[] }
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { tasks: Record<string, TaskEntry> }

describe('models/*_holdout.csv', () => {
  for (const [name, task] of Object.entries(manifest.tasks)) {
    it(`${name}: the whole test split, features then the truth, including the manifest's sample rows`, () => {
      expect(task.holdout).toBe(`${name}_holdout.csv`)
      const [header, ...lines] = readFileSync(join(dir, task.holdout), 'utf8').trimEnd().split('\n')
      const truth = task.kind === 'classification' ? 'label' : 'target'
      expect(header!.split(',')).toEqual([...Array.from({ length: task.features }, (_, i) => `f${i}`), truth])
      expect(lines).toHaveLength(task.test_rows)
      const rows = lines.map((line) => line.split(',').map(Number))
      for (const row of rows) {
        expect(row).toHaveLength(task.features + 1)
        expect(row.every(Number.isFinite)).toBe(true)
      }
      // Float32 values written as their shortest decimal: the manifest's samples are found exactly.
      task.samples.forEach((sample, k) => {
        const found = rows.find((row) => sample.every((v, i) => Math.fround(row[i]!) === Math.fround(v)))
        expect(found?.[task.features]).toBeCloseTo(task.truth[k]!, 6)
      })
    })
  }
})
