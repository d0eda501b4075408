// The items of a comma-separated flag (--ensembles a,b, --brokers h1:9092,h2:9092), for every
// command's flags. Imports nothing: the command line is checked with it before the program
// loads (src/cli-line.ts).

/** A list flag, as its messages name it: `--budgets`, one `budget in ms`, many `budgets in ms`, e.g. `5,10,20`. */
export interface ListFlag {
  readonly flag: string
  readonly one: string
  readonly many: string
  readonly example: string
}

/**
 * The items of `text`, each trimmed. An empty item (`a,,b`, `a,`, `,a`) is a typo, not an item
 * left out, and a list of none would say nothing: each is refused with `refuse` (which throws
 * or exits), naming the flag and an example of a list it takes.
 */
export function commaList(text: string, list: ListFlag, refuse: (message: string) => never): string[] {
  const { flag, one, many, example } = list
  if (text.trim() === '') refuse(`${flag}: give at least one ${one}, e.g. ${flag} ${example}`)
  const items = text.split(',').map((item) => item.trim())
  if (items.includes('')) refuse(`${flag}: "${text}" has an empty item; give ${many} separated by commas, e.g. ${flag} ${example}`)
  return items
}
