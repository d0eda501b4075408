// A count in a message: the number and the word, plural but for one (`1 row`, `2 rows`).

/** `n` and the word, plural but for one: `1 row`, `2 rows`; `many` for an irregular plural. */
export const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
