// Backoff between tries: doubling from the first wait up to a cap.

/** The wait before the `attempt`th try again (1, 2, …): `firstMs`, twice that, … at most `maxMs`. */
export const doubling =
  (firstMs: number, maxMs: number) =>
  (attempt: number): number =>
    Math.min(firstMs * 2 ** (attempt - 1), maxMs)
