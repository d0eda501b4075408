// eval's refusal of its input (flags, the data set, the config's fit to it): the file, the
// line and what is wrong, exit 2; never a crash halfway through. And its messages' counts.
export class EvalInputError extends Error {
  override readonly name = 'EvalInputError'
}

/** `n` and the word, plural but for one: `1 row`, `2 rows`. */
export const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
