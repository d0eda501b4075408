// A labeled data set for `specserve eval`: a CSV (RFC 4180: quoted cells may hold commas) with
// a header, every cell read a number. The label column is the truth; every other column, in
// order, is a feature, unless --columns names the feature columns (in the order the model
// takes them; the others are not read).
// The file is read as a stream (csv.ts): the features go into one growing array of numbers
// (rows × features), so a large file costs about its numbers, not its text as strings.
// Bad input is an EvalInputError naming the file, the line and the column, never a crash
// halfway through.
import { statSync } from 'node:fs'
import { CsvReader, fileText, type CsvRecord } from './csv.ts'
import { DECIMAL } from '../decimal.ts'
import { count } from '../plural.ts'
import { EvalInputError } from './errors.ts'

export { EvalInputError } from './errors.ts'

export interface LabeledData {
  readonly file: string
  /** The feature columns, in the order they are fed. */
  readonly features: readonly string[]
  /** True when --columns named the features; otherwise they are every column but the label. */
  readonly selected: boolean
  readonly label: string
  /** The number of rows (samples). */
  readonly rows: number
  /** Every row's feature values, in file order: row i is values[i × F, (i + 1) × F), F = features.length (featureRow). */
  readonly values: Float64Array
  readonly truth: Float64Array
  /** Line in the file of each row (1-based, the header is line 1). */
  readonly lines: Int32Array
}

/** Row i's feature values (a view into data.values, not a copy). */
export function featureRow(data: LabeledData, i: number): Float64Array {
  const width = data.features.length
  return data.values.subarray(i * width, (i + 1) * width)
}

/** The narrow float inputs a feature may overflow: each one's rounding and its range as said. */
export const NARROW_FLOATS = { FP32: { round: Math.fround, range: '±3.4e38' }, FP16: { round: Math.f16round, range: '±65504' } } as const

/**
 * The features beyond the range of `datatype` (a double, but Infinity once rounded to it): how
 * many, and the first (its line and column); undefined when none is. A value that rounds to the
 * largest finite one is in range.
 */
export function beyondRange(data: LabeledData, datatype: keyof typeof NARROW_FLOATS): { count: number; line: number; column: string; value: number } | undefined {
  const { round } = NARROW_FLOATS[datatype]
  let first = -1
  let count = 0
  for (let k = 0; k < data.values.length; k++) {
    if (Number.isFinite(round(data.values[k]!))) continue
    if (first < 0) first = k
    count++
  }
  if (first < 0) return undefined
  const width = data.features.length
  return { count, line: data.lines[Math.floor(first / width)]!, column: data.features[first % width]!, value: data.values[first]! }
}

/** A number as a CSV cell (or a --budgets item) may hold it: decimal or exponent notation, no blanks, no hex (a header's budget's grammar). */
export const NUMBER = DECIMAL

/**
 * Reads the CSV: the file `file` as a stream, or `text` (the whole text, or its chunks in
 * order). `columns` (--columns) names the feature columns in the order they are fed; cells of
 * columns neither named nor the label are not read (an id or a text column may stay).
 */
export function readLabeledCsv(file: string, label: string, text?: string | Iterable<string>, columns?: readonly string[]): LabeledData {
  // The text's length, when known, sizes the arrays from the first rows' length: one copy, not one per growth.
  const data = new LabeledRows(file, label, columns, typeof text === 'string' ? text.length : text === undefined ? fileSize(file) : undefined)
  const reader = new CsvReader(file, (record) => data.add(record))
  for (const chunk of typeof text === 'string' ? [text] : (text ?? fileText(file))) reader.push(chunk)
  reader.end()
  return data.done()
}

/** A file's size in bytes (its length in characters, for ASCII), or undefined (fileText reports why it cannot be read). */
function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size
  } catch {
    return undefined
  }
}

/** The header, then each row as its record arrives, into arrays grown as rows come. */
class LabeledRows {
  private header: string[] | undefined
  private labelCol = -1
  private featureCols: number[] = []
  /** The cells read (features and the label), left to right: the first bad one in a line is the one reported. */
  private cellsRead: number[] = []
  /** Each read column's place in a row of features; -1 for the label. */
  private slot: number[] = []
  private rows = 0
  private values = new Float64Array(0)
  private truth = new Float64Array(0)
  private lines = new Int32Array(0)
  /** The line of the first of the blank lines since the last row: an error if a row follows (trailing blank lines are fine). */
  private blankAt: number | undefined

  private readonly file: string
  private readonly label: string
  private readonly columns: readonly string[] | undefined
  /** The text's length in characters (about its size in bytes, for a file), when known. */
  private readonly length: number | undefined
  /** Characters read through the last row. */
  private read = 0

  constructor(file: string, label: string, columns: readonly string[] | undefined, length: number | undefined) {
    this.file = file
    this.label = label
    this.columns = columns
    this.length = length
  }

  add({ cells, line, blank, end }: CsvRecord): void {
    if (blank) {
      this.blankAt ??= line
      return
    }
    if (this.blankAt !== undefined) {
      // A blank line where the header should be is read as a header of one unnamed column.
      if (this.header === undefined) throw new EvalInputError(`${this.file}:1: column 1 has no name`)
      throw new EvalInputError(`${this.file}:${this.blankAt}: empty line inside the data`)
    }
    if (this.header === undefined) return this.readHeader(cells)
    const header = this.header
    if (cells.length !== header.length) {
      throw new EvalInputError(`${this.file}:${line}: ${count(cells.length, 'cell')}, the header has ${header.length} columns`)
    }
    const width = this.featureCols.length
    if (this.rows === this.truth.length) this.grow()
    const at = this.rows * width
    for (let k = 0; k < this.cellsRead.length; k++) {
      const col = this.cellsRead[k]!
      const value = cellValue(this.file, line, header[col]!, cells[col]!, col === this.labelCol)
      if (col === this.labelCol) this.truth[this.rows] = value
      else this.values[at + this.slot[k]!] = value
    }
    this.lines[this.rows] = line
    this.rows++
    this.read = end
  }

  done(): LabeledData {
    if (this.header === undefined) throw new EvalInputError(`${this.file}: empty file: expected a header line and rows`)
    if (this.rows === 0) throw new EvalInputError(`${this.file}: a header but no rows`)
    const width = this.featureCols.length
    return {
      file: this.file,
      features: this.featureCols.map((col) => this.header![col]!),
      selected: this.columns !== undefined,
      label: this.label,
      rows: this.rows,
      // The rows read: views while the room grown for more is small, else copies (which free it).
      values: this.trimmed(this.values, this.rows * width),
      truth: this.trimmed(this.truth, this.rows),
      lines: this.trimmed(this.lines, this.rows),
    }
  }

  private readHeader(cells: readonly string[]): void {
    const { file, label, columns } = this
    const header = cells.map((h) => h.trim())
    header.forEach((name, col) => {
      if (name === '') throw new EvalInputError(`${file}:1: column ${col + 1} has no name`)
      if (header.indexOf(name) !== col) throw new EvalInputError(`${file}:1: column "${name}" appears twice`)
    })
    const labelCol = header.indexOf(label)
    if (labelCol < 0) throw new EvalInputError(`${file}:1: no column "${label}" for --label (columns: ${header.join(', ')})`)
    if (header.length < 2) throw new EvalInputError(`${file}:1: only the label column; expected feature columns too`)
    this.featureCols = columns === undefined ? header.map((_, col) => col).filter((col) => col !== labelCol) : columnsOf(file, header, label, columns)
    const slot = new Map(this.featureCols.map((col, f) => [col, f]))
    this.cellsRead = [...slot.keys(), labelCol].sort((a, b) => a - b)
    this.slot = this.cellsRead.map((col) => slot.get(col) ?? -1)
    this.labelCol = labelCol
    this.header = header
  }

  private trimmed<T extends Float64Array | Int32Array>(array: T, length: number): T {
    return (array.length > length * 1.25 ? array.slice(0, length) : array.subarray(0, length)) as T
  }

  /**
   * Room for more rows: at first 1024, or fewer when the text is short or the rows wide (a row of F
   * features takes at least 2F characters, so no more than length / 2F rows, and at least one;
   * without a length, no more than ~2^20 doubles); then as many as the rows so far make likely for
   * the whole text, when its length is known (a tenth more), else half as many again. Each growth
   * holds two arrays while one is copied into the other.
   */
  private grow(): void {
    const width = Math.max(1, this.featureCols.length)
    if (this.truth.length === 0) return this.allocate(Math.max(1, Math.min(1024, Math.ceil((this.length ?? 2 ** 21) / (2 * width)))))
    const estimate = this.length !== undefined && this.read > 0 ? Math.ceil(((this.rows * this.length) / this.read) * 1.1) : 0
    this.allocate(Math.max(this.truth.length + 1, estimate > this.truth.length ? estimate : Math.ceil(this.truth.length * 1.5)))
  }

  private allocate(rows: number): void {
    const values = new Float64Array(rows * this.featureCols.length)
    values.set(this.values)
    this.values = values
    const truth = new Float64Array(rows)
    truth.set(this.truth)
    this.truth = truth
    const lines = new Int32Array(rows)
    lines.set(this.lines)
    this.lines = lines
  }
}

function cellValue(file: string, line: number, column: string, text: string, isLabel: boolean): number {
  const cell = text.trim()
  if (cell === '') throw new EvalInputError(`${file}:${line}: missing value in column "${column}"`)
  if (!NUMBER.test(cell)) {
    // A class name (`class_0`, `benign`) where eval needs the probability column it names.
    const labels = isLabel ? ': labels must be class indices (0, 1, …), or numbers for a regression' : ''
    throw new EvalInputError(`${file}:${line}: "${cell}" in column "${column}" is not a number${labels}`)
  }
  const value = Number(cell)
  // 1e400 is a number to the pattern and Infinity to Number(): it would reach the models as such.
  if (!Number.isFinite(value)) throw new EvalInputError(`${file}:${line}: "${cell}" in column "${column}" is out of range (not a finite number)`)
  return value
}

/** The header positions of the columns --columns names, in its order; an error at line 1 for a name that is not one. */
function columnsOf(file: string, header: readonly string[], label: string, columns: readonly string[]): number[] {
  if (columns.length === 0) throw new EvalInputError('--columns: give at least one feature column, e.g. --columns f0,f1,f2')
  return columns.map((name, i) => {
    if (columns.indexOf(name) !== i) throw new EvalInputError(`--columns: column "${name}" is named twice`)
    if (name === label) throw new EvalInputError(`--columns: "${name}" is the --label column, not a feature`)
    const col = header.indexOf(name)
    if (col < 0) throw new EvalInputError(`${file}:1: no column "${name}" for --columns (columns: ${header.join(', ')})`)
    return col
  })
}
