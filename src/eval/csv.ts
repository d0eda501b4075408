// The records of a CSV file, read as RFC 4180 has them, as its text arrives: the file is read
// in chunks and each record handed on once it ends, so memory holds one chunk and one record,
// never the file. A record's cells are split at commas, records at line breaks (LF, CRLF, or CRs then LF);
// a cell in double quotes may hold commas and line breaks, `""` standing for a quote (what
// spreadsheets and R's write.csv quote: a text column, a header). Blanks around a quoted cell
// are allowed; anything else after its closing quote is an error at its line. A chunk may end
// anywhere: inside a quoted cell, between a `"` and the next, between CR and LF.
import { closeSync, openSync, readSync } from 'node:fs'
import { EvalInputError } from './errors.ts'

export interface CsvRecord {
  readonly cells: readonly string[]
  /** The line it starts on (1-based). */
  readonly line: number
  /** A line with nothing but blanks on it. */
  readonly blank: boolean
  /** Characters of the text up to the end of the record (its line break included). */
  readonly end: number
}

const COMMA = 44
const QUOTE = 34
const LF = 10
const CR = 13
const SPACE = 32
const TAB = 9

/** Where the reader is: in an unquoted cell (or before a cell), in a quoted one, on a quote inside it, after its closing quote, on a CR. */
const At = { Cell: 0, Quoted: 1, QuoteInQuoted: 2, AfterQuoted: 3, Cr: 4 } as const
type At = (typeof At)[keyof typeof At]

/** Reads records from text pushed chunk by chunk; `end()` once the text is over. */
export class CsvReader {
  private state: At = At.Cell
  private cells: string[] = []
  /** The cell read so far (its text before the current chunk, or up to the current position). */
  private cell = ''
  private quotedAny = false
  private line = 1
  /** The line the current record starts on. */
  private start = 1
  /** The line the quoted cell being read opened on. */
  private opened = 1
  /** Characters of the text before the chunk being read. */
  private before = 0

  private readonly file: string
  private readonly onRecord: (record: CsvRecord) => void

  constructor(file: string, onRecord: (record: CsvRecord) => void) {
    this.file = file
    this.onRecord = onRecord
  }

  push(chunk: string): void {
    this.read(chunk)
    this.before += chunk.length
  }

  private read(chunk: string): void {
    const n = chunk.length
    for (let i = 0; i < n; ) {
      switch (this.state) {
        case At.Cell: {
          let j = i
          for (; j < n; j++) {
            const c = chunk.charCodeAt(j)
            if (c === COMMA || c === LF || c === CR || c === QUOTE) break
          }
          this.cell += chunk.slice(i, j)
          if (j === n) return
          const c = chunk.charCodeAt(j)
          if (c === QUOTE) {
            // Only blanks before it: a quoted cell. Inside an unquoted cell a quote is a character.
            if (this.cell.trim() === '') {
              this.cell = ''
              this.quotedAny = true
              this.opened = this.line
              this.state = At.Quoted
            } else this.cell += '"'
          } else if (c === COMMA) this.endCell()
          else if (c === LF) this.endRecord(j + 1)
          else this.state = At.Cr
          i = j + 1
          break
        }
        case At.Quoted: {
          let j = i
          for (; j < n; j++) {
            const c = chunk.charCodeAt(j)
            if (c === QUOTE) break
            if (c === LF) this.line++
          }
          this.cell += chunk.slice(i, j)
          if (j < n) this.state = At.QuoteInQuoted
          i = j + 1
          break
        }
        case At.QuoteInQuoted:
          // `""` is a quote; any other character means the quote closed the cell.
          if (chunk.charCodeAt(i) === QUOTE) {
            this.cell += '"'
            this.state = At.Quoted
            i++
          } else this.state = At.AfterQuoted
          break
        case At.AfterQuoted: {
          const c = chunk.charCodeAt(i++)
          if (c === SPACE || c === TAB) break
          if (c === COMMA) this.endCell()
          else if (c === LF) this.endRecord(i)
          else if (c === CR) this.state = At.Cr
          else throw new EvalInputError(`${this.file}:${this.line}: text after the closing quote of a cell`)
          if (c !== CR) this.state = At.Cell
          break
        }
        case At.Cr: {
          // CRs then LF end a record: CRLF, and CR CR LF (Python's csv.writer on Windows without
          // newline=''). A CR before anything else would leave the whole file one line (classic Mac files).
          const c = chunk.charCodeAt(i)
          if (c === CR) {
            i++
            break
          }
          if (c !== LF) throw new EvalInputError(`${this.file}:${this.line}: line breaks are CR only (a CR before ${JSON.stringify(chunk[i])}, not LF); use LF or CRLF`)
          this.endRecord(++i)
          this.state = At.Cell
          break
        }
      }
    }
  }

  /** The text is over: its last record (without a line break) is handed on. */
  end(): void {
    if (this.state === At.Quoted) throw new EvalInputError(`${this.file}:${this.opened}: a quoted cell is not closed`)
    // A CR at the very end is that last line's break.
    if (this.cell !== '' || this.cells.length > 0 || this.quotedAny) this.endRecord(0)
  }

  private endCell(): void {
    this.cells.push(this.cell)
    this.cell = ''
  }

  /** Ends the record at position `at` of the chunk being read. */
  private endRecord(at: number): void {
    this.endCell()
    const cells = this.cells
    this.onRecord({ cells, line: this.start, blank: !this.quotedAny && cells.length === 1 && cells[0]!.trim() === '', end: this.before + at })
    this.cells = []
    this.quotedAny = false
    this.start = ++this.line
  }
}

/** A file's text, UTF-8, chunk by chunk (a character split between chunks is whole in the next); an EvalInputError if it cannot be read. */
export function* fileText(file: string, chunkBytes = 1 << 16): Generator<string, void, undefined> {
  const cannotRead = (err: unknown): EvalInputError => new EvalInputError(`${file}: cannot read: ${(err as Error).message}`)
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    throw cannotRead(err)
  }
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes)
    // A byte-order mark is dropped, as a header cell's blanks are.
    const decoder = new TextDecoder('utf-8')
    for (;;) {
      let read: number
      try {
        read = readSync(fd, buffer, 0, chunkBytes, null)
      } catch (err) {
        throw cannotRead(err)
      }
      if (read === 0) break
      const text = decoder.decode(buffer.subarray(0, read), { stream: true })
      if (text !== '') yield text
    }
    const rest = decoder.decode()
    if (rest !== '') yield rest
  } finally {
    closeSync(fd)
  }
}
