// The CSV reader takes the text chunk by chunk (a file is never read whole): a chunk may end
// anywhere, inside a quoted cell, between the two quotes of `""`, between CR and LF, inside
// a UTF-8 character, and the records are the same as from the text in one piece.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CsvReader, fileText, type CsvRecord } from '../../src/eval/csv.ts'
import { EvalInputError } from '../../src/eval/errors.ts'
import { tempDir } from '../temp-dirs.ts'

/** The records of `chunks`, read in that order. */
function records(chunks: Iterable<string>): CsvRecord[] {
  const out: CsvRecord[] = []
  const reader = new CsvReader('d.csv', (record) => out.push(record))
  for (const chunk of chunks) reader.push(chunk)
  reader.end()
  return out
}

/** The message of the EvalInputError reading `chunks` throws. */
function error(chunks: Iterable<string>): string {
  try {
    records(chunks)
  } catch (err) {
    expect(err).toBeInstanceOf(EvalInputError)
    return (err as Error).message
  }
  throw new Error('no error')
}

/** `text` cut at every position into two chunks, and into chunks of one character. */
function cuts(text: string): string[][] {
  return [...Array.from({ length: text.length + 1 }, (_, at) => [text.slice(0, at), text.slice(at)]), [...text]]
}

// Quoted cells with a comma, a quote and a line break (LF and CRLF) inside, blanks around a quoted cell, CRLF records, a last record without a line break.
const TEXT = '"id","x",y\r\n"Smith, John",1.5,0\r\n"say ""hi""" , "2" ,1\r\n"two\nlines",3,1\r\n"three\r\nlines", 4 ,0\r\nlast,5,1'

describe('CsvReader', () => {
  it('reads RFC 4180 records: quoted commas, quotes and line breaks; each record at the line it starts on', () => {
    expect(records([TEXT]).map((r) => [r.line, r.cells])).toEqual([
      [1, ['id', 'x', 'y']],
      [2, ['Smith, John', '1.5', '0']],
      [3, ['say "hi"', '2', '1']],
      [4, ['two\nlines', '3', '1']],
      [6, ['three\r\nlines', ' 4 ', '0']],
      [8, ['last', '5', '1']],
    ])
  })

  it('reads the same records wherever the chunks end: in a quoted cell, in `""`, between CR and LF', () => {
    const whole = records([TEXT])
    for (const chunks of cuts(TEXT)) expect(records(chunks), JSON.stringify(chunks.slice(0, 2))).toEqual(whole)
  })

  it('reports the same errors, at the same lines, wherever the chunks end', () => {
    const cases: [string, string][] = [
      ['x,y\n1,0\n"2,1\n3,0\n', 'd.csv:3: a quoted cell is not closed'],
      ['x,y\n"1"2,0\n', 'd.csv:2: text after the closing quote of a cell'],
      ['x,y\n"a\nb" 2,0\n', 'd.csv:3: text after the closing quote of a cell'],
      ['x,y\r1,0\r', 'd.csv:1: line breaks are CR only (a CR before "1", not LF); use LF or CRLF'],
      ['x,y\n1,0\n2,1\r3,0\n', 'd.csv:3: line breaks are CR only (a CR before "3", not LF); use LF or CRLF'],
      ['x,y\r\r\n1,0\r\r2,1\r\r\n', 'd.csv:2: line breaks are CR only (a CR before "2", not LF); use LF or CRLF'],
    ]
    for (const [text, message] of cases) {
      for (const chunks of cuts(text)) expect(error(chunks), JSON.stringify(chunks.slice(0, 2))).toBe(message)
    }
  })

  it('CR CR LF (Python csv.writer on Windows without newline=\'\') is one line break, wherever the chunks end', () => {
    const text = 'x,"y"\r\r\n1,0\r\r\n"2",1\r\r\n'
    const crlf = records([text.replaceAll('\r\r\n', '\r\n')])
    expect(records([text]).map((r) => [r.line, r.cells])).toEqual([
      [1, ['x', 'y']],
      [2, ['1', '0']],
      [3, ['2', '1']],
    ])
    for (const chunks of cuts(text)) {
      expect(
        records(chunks).map((r) => [r.line, r.cells]),
        JSON.stringify(chunks.slice(0, 2)),
      ).toEqual(crlf.map((r) => [r.line, r.cells]))
    }
  })

  it('a CR inside a quoted cell is text; a CR at the very end is the last line break', () => {
    expect(records(['x,y\n"a\rb",0\r']).map((r) => r.cells)).toEqual([['x', 'y'], ['a\rb', '0']])
  })
})

describe('fileText', () => {
  it('reads a file in chunks of bytes; a UTF-8 character split between two chunks arrives whole', () => {
    const file = join(tempDir('specserve-eval-csv-'), 'utf8.csv')
    const text = 'name,x,y\n"Łódź, Poland",1,0\n日本語,2,1\n😀,3,0\n'
    writeFileSync(file, '\uFEFF' + text)
    for (const bytes of [1, 2, 3, 5, 7, 64]) {
      const chunks = [...fileText(file, bytes)]
      // The byte-order mark is dropped.
      expect(chunks.join(''), `${bytes} bytes`).toBe(text)
      expect(records(chunks), `${bytes} bytes`).toEqual(records([text]))
    }
  })

  it('a file that cannot be read: its name and why', () => {
    const dir = tempDir('specserve-eval-csv-')
    expect(() => [...fileText(join(dir, 'nope.csv'))]).toThrow(/nope\.csv: cannot read: ENOENT/)
    expect(() => [...fileText(dir)]).toThrow(`${dir}: cannot read: EISDIR: illegal operation on a directory, read`)
  })
})
