// eval's refusal of its input (flags, the data set, the config's fit to it): the file, the
// line and what is wrong, exit 2; never a crash halfway through.
export class EvalInputError extends Error {
  override readonly name = 'EvalInputError'
}

/** Throws `message` as an EvalInputError: how eval refuses a flag (commaList's refuse). */
export function refuseInput(message: string): never {
  throw new EvalInputError(message)
}
