// A labeled data set for `specserve eval`: a CSV with a header, every cell a number. The
// label column is the truth; every other column, in order, is a feature. Bad input is an
// EvalInputError naming the file, the line and the column, never a crash halfway through.
import { readFileSync } from 'node:fs'

export class EvalInputError extends Error {
  override readonly name = 'EvalInputError'
}

export interface LabeledData {
  readonly file: string
  readonly features: readonly string[]
  readonly label: string
  /** One row of feature values per sample, in file order. */
  readonly rows: readonly Float64Array[]
  readonly truth: Float64Array
  /** Line in the file of each row (1-based, the header is line 1). */
  readonly lines: Int32Array
}

/** A number as a CSV cell may hold it: decimal or exponent notation, no blanks, no hex. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

export function readLabeledCsv(file: string, label: string, text: string = readText(file)): LabeledData {
  const lines = text.split(/\r?\n/)
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop()
  if (lines.length === 0) throw new EvalInputError(`${file}: empty file: expected a header line and rows`)
  const header = lines[0]!.split(',').map((h) => h.trim())
  header.forEach((name, col) => {
    if (name === '') throw new EvalInputError(`${file}:1: column ${col + 1} has no name`)
    if (header.indexOf(name) !== col) throw new EvalInputError(`${file}:1: column "${name}" appears twice`)
  })
  const labelCol = header.indexOf(label)
  if (labelCol < 0) throw new EvalInputError(`${file}:1: no column "${label}" for --label (columns: ${header.join(', ')})`)
  if (header.length < 2) throw new EvalInputError(`${file}:1: only the label column; expected feature columns too`)
  const rows: Float64Array[] = []
  const truth: number[] = []
  const at: number[] = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.trim() === '') throw new EvalInputError(`${file}:${i + 1}: empty line inside the data`)
    const cells = line.split(',')
    if (cells.length !== header.length) {
      throw new EvalInputError(`${file}:${i + 1}: ${cells.length} cells, the header has ${header.length} columns`)
    }
    const row = new Float64Array(header.length - 1)
    let f = 0
    for (let col = 0; col < cells.length; col++) {
      const cell = cells[col]!.trim()
      if (cell === '') throw new EvalInputError(`${file}:${i + 1}: missing value in column "${header[col]}"`)
      if (!NUMBER.test(cell)) throw new EvalInputError(`${file}:${i + 1}: "${cell}" in column "${header[col]}" is not a number`)
      const value = Number(cell)
      // 1e400 is a number to the pattern and Infinity to Number(): it would reach the models as such.
      if (!Number.isFinite(value)) throw new EvalInputError(`${file}:${i + 1}: "${cell}" in column "${header[col]}" is out of range (not a finite number)`)
      if (col === labelCol) truth.push(value)
      else row[f++] = value
    }
    rows.push(row)
    at.push(i + 1)
  }
  if (rows.length === 0) throw new EvalInputError(`${file}: a header but no rows`)
  return {
    file,
    features: header.filter((_, col) => col !== labelCol),
    label,
    rows,
    truth: Float64Array.from(truth),
    lines: Int32Array.from(at),
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new EvalInputError(`${file}: cannot read: ${(err as Error).message}`)
  }
}
