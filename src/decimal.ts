// The one grammar of a decimal number given as text: a header's budget (`12`, `0.5`, `2e1`), an
// eval CSV cell, an eval --budgets item. Decimal or exponent notation, a sign allowed; no hex,
// no `Infinity`, no blanks (trim first where blanks around it are allowed).

/** A decimal number, whole text: `12`, `-0.5`, `.5`, `5.`, `2e1`; not `0x10`, `Infinity`, `1e`, ` 1`. */
export const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/
