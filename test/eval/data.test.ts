// The labeled CSV eval reads: every way it can be wrong gives the file, the line and the column.
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { beyondRange, EvalInputError, featureRow, readLabeledCsv, type LabeledData } from '../../src/eval/data.ts'
import { root } from '../helpers.ts'

const read = (text: string, label = 'y') => readLabeledCsv('d.csv', label, text)
/** The rows of feature values, one array each. */
const rowsOf = (data: LabeledData): Float64Array[] => Array.from({ length: data.rows }, (_, i) => featureRow(data, i).slice())
const error = (text: string, label = 'y'): string => {
  try {
    read(text, label)
  } catch (err) {
    expect(err).toBeInstanceOf(EvalInputError)
    return (err as Error).message
  }
  throw new Error('no error')
}

describe('readLabeledCsv', () => {
  it('reads features in column order around the label, the truth, and each row\'s line', () => {
    const data = read('a,y,b\n1,0,2.5\n-3e2,1,.5\n\n')
    expect(data.features).toEqual(['a', 'b'])
    expect(rowsOf(data)).toEqual([Float64Array.of(1, 2.5), Float64Array.of(-300, 0.5)])
    expect(data.truth).toEqual(Float64Array.of(0, 1))
    expect(data.lines).toEqual(Int32Array.of(2, 3))
  })

  it('a missing or non-numeric cell: the line and the column', () => {
    expect(error('a,b,y\n1,2,0\n1,,0\n')).toBe('d.csv:3: missing value in column "b"')
    expect(error('a,b,y\n1,2,0\n1,2,0\n1,x2,1\n')).toBe('d.csv:4: "x2" in column "b" is not a number')
    // A text label (a class name): what labels must be.
    expect(error('a,b,y\n1,2,cat\n')).toBe('d.csv:2: "cat" in column "y" is not a number: labels must be class indices (0, 1, …), or numbers for a regression')
    expect(error('a,b,y\n1,0x1F,1\n')).toBe('d.csv:2: "0x1F" in column "b" is not a number')
  })

  it('a number too large for a double (1e400, read as Infinity): refused with its line and column, not fed to the models', () => {
    expect(error('a,b,y\n1,2,0\n1e400,2,1\n')).toBe('d.csv:3: "1e400" in column "a" is out of range (not a finite number)')
    expect(error('a,b,y\n1,-1E999,0\n')).toBe('d.csv:2: "-1E999" in column "b" is out of range (not a finite number)')
    expect(error('a,b,y\n1,2,1e309\n')).toBe('d.csv:2: "1e309" in column "y" is out of range (not a finite number)')
    // The largest doubles are still numbers.
    expect(rowsOf(read('a,b,y\n1.7e308,1e-400,0\n'))[0]).toEqual(Float64Array.of(1.7e308, 0))
  })

  it('finds features beyond FP32 or FP16 (a double, but Infinity to such an input): how many, and the first; a value rounding to the largest is in range', () => {
    expect(beyondRange(read('a,b,y\n1,3.4e38,0\n'), 'FP32')).toBeUndefined()
    // Above FP32's largest (3.4028234663852886e38), but rounded to it, not to Infinity.
    expect(beyondRange(read('a,b,y\n1,3.40282350000000001e38,0\n1,-3.4028235677973e38,1\n'), 'FP32')).toBeUndefined()
    expect(beyondRange(read('a,b,y\n1,2,0\n1,-1e39,1\n1e300,1,0\n'), 'FP32')).toEqual({ count: 2, line: 3, column: 'b', value: -1e39 })
    expect(beyondRange(read('a,b,y\n1,65519,0\n1,70000,1\n'), 'FP16')).toEqual({ count: 1, line: 3, column: 'b', value: 70000 })
  })

  it('a label column that does not exist: line 1 and the columns there are', () => {
    expect(error('a,b,y\n1,2,0\n', 'label')).toBe('d.csv:1: no column "label" for --label (columns: a, b, y)')
  })

  it('a row as wide as the header, no blank lines inside, a header with names', () => {
    expect(error('a,b,y\n1,2,0\n1,2\n')).toBe('d.csv:3: 2 cells, the header has 3 columns')
    expect(error('a,b,y\n1\n')).toBe('d.csv:2: 1 cell, the header has 3 columns')
    expect(error('a,b,y\n1,2,0\n\n1,2,0\n')).toBe('d.csv:3: empty line inside the data')
    expect(error('a,,y\n1,2,0\n')).toBe('d.csv:1: column 2 has no name')
    expect(error('a,a,y\n1,2,0\n')).toBe('d.csv:1: column "a" appears twice')
    expect(error('a,y\n')).toBe('d.csv: a header but no rows')
    expect(error('')).toMatch(/empty file/)
  })

  it('an unreadable file', () => {
    expect(() => readLabeledCsv(join(root, 'nope.csv'), 'y')).toThrow(/nope\.csv: cannot read/)
  })

  it('reads a demo held-out split whole', () => {
    const data = readLabeledCsv(join(root, 'models', 'digits_holdout.csv'), 'label')
    expect(data.rows).toBe(450)
    expect(data.values).toHaveLength(450 * 64)
    expect(data.features).toHaveLength(64)
    expect(new Set(data.truth)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
  })

  it('--columns: the features named, in that order; the other columns are not read', () => {
    const data = readLabeledCsv('d.csv', 'y', 'id,b,y,a,c\nrow-1,2,0,1,x\nrow-2,4,1,3,\n', ['a', 'b'])
    expect(data.features).toEqual(['a', 'b'])
    expect(data.selected).toBe(true)
    expect(rowsOf(data)).toEqual([Float64Array.of(1, 2), Float64Array.of(3, 4)])
    expect(data.truth).toEqual(Float64Array.of(0, 1))
    expect(read('a,b,y\n1,2,0\n').selected).toBe(false)
    // A named column is read as any feature is.
    expect(() => readLabeledCsv('d.csv', 'y', 'a,b,y\n1,x,0\n', ['b'])).toThrow('d.csv:2: "x" in column "b" is not a number')
  })

  it('reads quoted cells as RFC 4180 does: commas, quotes and line breaks inside, a quoted header', () => {
    const data = readLabeledCsv('d.csv', 'y', '"id","x","y"\n"Smith, John",1.5,0\n"say ""hi""", "2" ,1\n"two\nlines",3,1\n4th,4,0\n', ['x'])
    expect(data.features).toEqual(['x'])
    expect(rowsOf(data)).toEqual([Float64Array.of(1.5), Float64Array.of(2), Float64Array.of(3), Float64Array.of(4)])
    expect(data.truth).toEqual(Float64Array.of(0, 1, 1, 0))
    // A record is numbered by the line it starts on: the one after a cell of two lines is line 6.
    expect(data.lines).toEqual(Int32Array.of(2, 3, 4, 6))
    expect(rowsOf(read('x,y\r\n"1",0\r\n"2",1\r\n'))).toEqual([Float64Array.of(1), Float64Array.of(2)])
  })

  it('reads the same data from the text in chunks, wherever a chunk ends (a quoted cell, CRLF, a byte-order mark)', () => {
    const text = '\uFEFF"id",x,"y"\r\n"a,\r\nb",1.5,0\r\n"c ""d""",2,1\r\n\r\n'
    const whole = readLabeledCsv('d.csv', 'y', text, ['x'])
    expect(rowsOf(whole)).toEqual([Float64Array.of(1.5), Float64Array.of(2)])
    expect(whole.lines).toEqual(Int32Array.of(2, 4))
    for (let at = 0; at <= text.length; at++) expect(readLabeledCsv('d.csv', 'y', [text.slice(0, at), text.slice(at)], ['x'])).toEqual(whole)
    expect(readLabeledCsv('d.csv', 'y', [...text], ['x'])).toEqual(whole)
  })

  it('line breaks of a CR alone: refused, not read as one line', () => {
    expect(error('a,y\r1,0\r2,1\r')).toBe('d.csv:1: line breaks are CR only (a CR before "1", not LF); use LF or CRLF')
  })

  it('a quoted cell not closed, or text after its closing quote: the line', () => {
    expect(error('x,y\n1,0\n"2,1\n3,0\n')).toBe('d.csv:3: a quoted cell is not closed')
    expect(error('x,y\n"1"2,0\n')).toBe('d.csv:2: text after the closing quote of a cell')
    expect(error('x,y\n"a b",0\n')).toBe('d.csv:2: "a b" in column "x" is not a number')
  })

  describe('the arrays grown for the rows', () => {
    afterEach(() => {
      vi.unstubAllGlobals()
    })

    it('a short file of wide rows: the first room sized from its length (1 row of 40,000 features is not 1024 rows of them), then grown geometrically', () => {
      // Every Float64Array the reader makes, by length.
      const made: number[] = []
      class Counted extends Float64Array {
        constructor(...args: unknown[]) {
          super(...(args as [number]))
          if (typeof args[0] === 'number') made.push(args[0])
        }
      }
      vi.stubGlobal('Float64Array', Counted)
      const width = 40_000
      const header = Array.from({ length: width }, (_, i) => `f${i}`).join(',') + ',y'
      const row = (r: number): string => Array.from({ length: width }, (_, i) => String((r + i) % 10)).join(',') + `,${r % 2}`
      const one = read(`${header}\n${row(0)}\n`)
      expect(one.rows).toBe(1)
      expect(one.values[width - 1]).toBe(9)
      // The text is ~320,000 characters: at most ~4 rows' room, not 1024 × 40,000 doubles (328 MB).
      expect(Math.max(...made)).toBeLessThanOrEqual(8 * width)
      // More rows than the first room held: all read, by growths of the room, not one per row.
      made.length = 0
      const many = read([header, ...Array.from({ length: 40 }, (_, r) => row(r))].join('\n') + '\n')
      expect(many.rows).toBe(40)
      expect(Array.from(featureRow(many, 39).subarray(0, 3))).toEqual([9, 0, 1])
      expect(made.filter((n) => n >= width).length).toBeLessThan(12)
    })
  })

  it('--columns: a name that is not a column, the label, a name twice, or none at all', () => {
    const columns = (names: string[]): string => {
      try {
        readLabeledCsv('d.csv', 'y', 'a,b,y\n1,2,0\n', names)
      } catch (err) {
        expect(err).toBeInstanceOf(EvalInputError)
        return (err as Error).message
      }
      throw new Error('no error')
    }
    expect(columns(['a', 'c'])).toBe('d.csv:1: no column "c" for --columns (columns: a, b, y)')
    expect(columns(['a', 'y'])).toBe('--columns: "y" is the --label column, not a feature')
    expect(columns(['b', 'a', 'b'])).toBe('--columns: column "b" is named twice')
    expect(columns([])).toBe('--columns: give at least one feature column, e.g. --columns f0,f1,f2')
  })
})

