// A labeled data set for `specserve eval`: a CSV (RFC 4180: quoted cells may hold commas) with
// a header, every cell read a number. The label column is the truth; every other column, in
// order, is a feature, unless --columns names the feature columns (in the order the model
// takes them; the others are not read).
// Bad input is an EvalInputError naming the file, the line and the column, never a crash
// halfway through.
import { readFileSync } from 'node:fs'

export class EvalInputError extends Error {
  override readonly name = 'EvalInputError'
}

export interface LabeledData {
  readonly file: string
  /** The feature columns, in the order they are fed. */
  readonly features: readonly string[]
  /** True when --columns named the features; otherwise they are every column but the label. */
  readonly selected: boolean
  readonly label: string
  /** One row of feature values per sample, in file order. */
  readonly rows: readonly Float64Array[]
  readonly truth: Float64Array
  /** Line in the file of each row (1-based, the header is line 1). */
  readonly lines: Int32Array
}

/** A number as a CSV cell may hold it: decimal or exponent notation, no blanks, no hex. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/**
 * Reads the CSV. `columns` (--columns) names the feature columns in the order they are fed;
 * cells of columns neither named nor the label are not read (an id or a text column may stay).
 */
export function readLabeledCsv(file: string, label: string, text: string = readText(file), columns?: readonly string[]): LabeledData {
  const records = csvRecords(file, text)
  while (records.length > 0 && records[records.length - 1]!.blank) records.pop()
  if (records.length === 0) throw new EvalInputError(`${file}: empty file: expected a header line and rows`)
  const header = records[0]!.cells.map((h) => h.trim())
  header.forEach((name, col) => {
    if (name === '') throw new EvalInputError(`${file}:1: column ${col + 1} has no name`)
    if (header.indexOf(name) !== col) throw new EvalInputError(`${file}:1: column "${name}" appears twice`)
  })
  const labelCol = header.indexOf(label)
  if (labelCol < 0) throw new EvalInputError(`${file}:1: no column "${label}" for --label (columns: ${header.join(', ')})`)
  if (header.length < 2) throw new EvalInputError(`${file}:1: only the label column; expected feature columns too`)
  const featureCols = columns === undefined ? header.map((_, col) => col).filter((col) => col !== labelCol) : columnsOf(file, header, label, columns)
  // Each feature's place in a row; the cells read, left to right (the first bad one in a line is the one reported).
  const slot = new Map(featureCols.map((col, f) => [col, f]))
  const read = [...slot.keys(), labelCol].sort((a, b) => a - b)
  const rows: Float64Array[] = []
  const truth: number[] = []
  const at: number[] = []
  for (const { cells, line, blank } of records.slice(1)) {
    if (blank) throw new EvalInputError(`${file}:${line}: empty line inside the data`)
    if (cells.length !== header.length) {
      throw new EvalInputError(`${file}:${line}: ${cells.length} cells, the header has ${header.length} columns`)
    }
    const row = new Float64Array(featureCols.length)
    for (const col of read) {
      const value = cellValue(file, line, header[col]!, cells[col]!)
      if (col === labelCol) truth.push(value)
      else row[slot.get(col)!] = value
    }
    rows.push(row)
    at.push(line)
  }
  if (rows.length === 0) throw new EvalInputError(`${file}: a header but no rows`)
  return {
    file,
    features: featureCols.map((col) => header[col]!),
    selected: columns !== undefined,
    label,
    rows,
    truth: Float64Array.from(truth),
    lines: Int32Array.from(at),
  }
}

interface CsvRecord {
  readonly cells: string[]
  /** The line it starts on (1-based). */
  readonly line: number
  /** A line with nothing but blanks on it. */
  readonly blank: boolean
}

/**
 * The file's records, as RFC 4180 reads them: cells split at commas, records at line breaks
 * (LF or CRLF); a cell in double quotes may hold commas and line breaks, `""` standing for a
 * quote (what spreadsheets and R's write.csv quote: a text column, a header). Blanks around a
 * quoted cell are allowed; anything else after its closing quote is an error at its line.
 */
function csvRecords(file: string, text: string): CsvRecord[] {
  const records: CsvRecord[] = []
  let cells: string[] = []
  let cell = ''
  let quotedAny = false
  let line = 1
  let start = 1
  const endCell = (): void => {
    cells.push(cell)
    cell = ''
  }
  const endRecord = (): void => {
    endCell()
    records.push({ cells, line: start, blank: !quotedAny && cells.length === 1 && cells[0]!.trim() === '' })
    cells = []
    quotedAny = false
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (ch === '"' && cell.trim() === '') {
      // A quoted cell: up to the quote not followed by another one.
      const opened = line
      cell = ''
      quotedAny = true
      for (i++; ; i++) {
        if (i >= text.length) throw new EvalInputError(`${file}:${opened}: a quoted cell is not closed`)
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break
          i++
        } else if (text[i] === '\n') line++
        cell += text[i]
      }
      while (i + 1 < text.length && (text[i + 1] === ' ' || text[i + 1] === '\t')) i++
      const next = text[i + 1]
      if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') throw new EvalInputError(`${file}:${line}: text after the closing quote of a cell`)
      continue
    }
    if (ch === ',') endCell()
    else if (ch === '\n' || (ch === '\r' && text[i + 1] === '\n')) {
      if (ch === '\r') i++
      endRecord()
      start = ++line
    } else cell += ch
  }
  if (cell !== '' || cells.length > 0 || quotedAny) endRecord()
  return records
}

function cellValue(file: string, line: number, column: string, text: string): number {
  const cell = text.trim()
  if (cell === '') throw new EvalInputError(`${file}:${line}: missing value in column "${column}"`)
  if (!NUMBER.test(cell)) throw new EvalInputError(`${file}:${line}: "${cell}" in column "${column}" is not a number`)
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

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new EvalInputError(`${file}: cannot read: ${(err as Error).message}`)
  }
}
