// A comma-separated flag's items: trimmed, and an empty item or none at all refused (a typo,
// never an item silently left out).
import { describe, expect, it } from 'vitest'
import { commaList, type ListFlag } from '../src/comma-list.ts'

const NAMES: ListFlag = { flag: '--names', one: 'name', many: 'names', example: 'a,b' }

/** What commaList refuses `text` with, or its items. */
function read(text: string): string[] | string {
  try {
    return commaList(text, NAMES, (message) => {
      throw new Error(message)
    })
  } catch (err) {
    return (err as Error).message
  }
}

describe('commaList', () => {
  it('the items, each trimmed of the spaces around it', () => {
    expect(read('a')).toEqual(['a'])
    expect(read('a,b,c')).toEqual(['a', 'b', 'c'])
    expect(read(' a , b\t,c ')).toEqual(['a', 'b', 'c'])
    expect(read('a b,c')).toEqual(['a b', 'c'])
  })

  it('refuses an empty item wherever it is, naming the flag and the list as given', () => {
    for (const text of ['a,,b', 'a,', ',a', 'a, ,b', ',', ' , ']) {
      expect(read(text), text).toBe(`--names: "${text}" has an empty item; give names separated by commas, e.g. --names a,b`)
    }
  })

  it('refuses a list of none', () => {
    for (const text of ['', ' ', '\t']) expect(read(text)).toBe('--names: give at least one name, e.g. --names a,b')
  })
})
