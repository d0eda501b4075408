// Arbitraries and checks shared by the hand-written codec tests.
import fc from 'fast-check'
import { expect } from 'vitest'
import { DATATYPES, ProtoError, type DataType, type Tensor } from '../../../src/tensor/index.ts'

/** A [1, n] tensor of `datatype` (n from 0 to 5) with elements anywhere in its range. */
export function tensorOf(datatype: DataType): fc.Arbitrary<Tensor> {
  const row = DATATYPES[datatype]
  return fc.integer({ min: 0, max: 5 }).chain((n) => {
    const sized = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(a, { minLength: n, maxLength: n })
    let elements: fc.Arbitrary<unknown[]>
    if (row.kind === 'bytes') elements = sized(fc.string())
    else if (row.kind === 'bigint') elements = sized(fc.bigInt(...(row.range as [bigint, bigint])))
    else if (row.kind === 'float') elements = sized(datatype === 'FP64' ? fc.double() : fc.float())
    else elements = sized(fc.integer({ min: (row.range as [number, number])[0], max: (row.range as [number, number])[1] }))
    return elements.map((e) => ({ datatype, shape: [1, n], data: row.array ? (row.array as unknown as { from(a: unknown[]): never }).from(e) : (e as string[]) }) as Tensor)
  })
}

export const anyDatatypeTensor = (): fc.Arbitrary<Tensor> => fc.constantFrom(...(Object.keys(DATATYPES) as DataType[])).chain(tensorOf)

/** Random bytes and every truncation of valid messages either decode or raise ProtoError: never another exception. */
export function expectOnlyProtoErrors<T>(decode: (bytes: Uint8Array) => unknown, valid: fc.Arbitrary<T>, encode: (value: T) => Uint8Array): void {
  const decodesOrProtoError = (bytes: Uint8Array): boolean => {
    try {
      decode(bytes)
      return true
    } catch (err) {
      return err instanceof ProtoError
    }
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      expect(decodesOrProtoError(bytes)).toBe(true)
    }),
    { numRuns: 2000 },
  )
  fc.assert(
    fc.property(valid, (value) => {
      const bytes = encode(value)
      for (let n = 0; n < bytes.length; n++) expect(decodesOrProtoError(bytes.subarray(0, n))).toBe(true)
    }),
    { numRuns: 100 },
  )
  // Unknown group fields (field 15, SGROUP: a number neither request uses) opened inside each other: a nesting a few levels past
  // the limit, and one a message under the receive limit can carry (1 MiB of open tags, which
  // would overflow the stack of a reader that follows it).
  for (const depth of [101, 1024 * 1024]) {
    const bytes = new Uint8Array(depth).fill(0x7b)
    expect(() => decode(bytes)).toThrow(ProtoError)
  }
}
