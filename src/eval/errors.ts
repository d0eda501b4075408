// eval's refusal of its input (flags, the data set, the config's fit to it): the file, the
// line and what is wrong, exit 2; never a crash halfway through.
export class EvalInputError extends Error {
  override readonly name = 'EvalInputError'
}
