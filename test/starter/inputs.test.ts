// What an ensemble declares as its inputs when its members' shapes differ in what they fix:
// a dimension any member fixes is fixed, whatever the members' order. A request of another
// size is refused BAD_INPUT before any member runs, rather than reaching the member that
// fixes it and failing there (counted against that model). Scripted members on a fake clock.
import { describe, expect, it } from 'vitest'
import { describeEnsemble } from '../../src/api/native/describe.ts'
import { modelMetadata } from '../../src/api/oip/model.ts'
import { GatewayError } from '../../src/errors.ts'
import type { Gateway } from '../../src/gateway.ts'
import { serve, useFakeClock } from './fake-clock.ts'

useFakeClock()

const models = (...shapes: [string, string][]): string => shapes.map(([name, shape]) => `  ${name}: { kind: scripted, input: { datatype: FP32, shape: ${shape} } }`).join('\n')
const vote = (members: string): string => `    strategy: majority-vote\n    models: [${members}]\n    budget_ms: { default: 100, max: 500 }`
const rows = (width: number) => ({ x: { datatype: 'FP32', shape: [1, width], data: new Float32Array(width) } }) as const

/** The predict's synchronous refusal (a request error), or null when it was taken. */
function refusal(g: Gateway, width: number): string | null {
  try {
    void g.predict({ id: 'r', ensemble: 'e', inputs: rows(width) })
    return null
  } catch (err) {
    return err instanceof GatewayError ? `${err.code}: ${err.message}` : String(err)
  }
}

describe("starter: an ensemble's inputs", () => {
  it.each([['dyn, fix4'], ['fix4, dyn']])('fix a dimension one member fixes and another leaves -1, in either order (%s)', async (members) => {
    const g = await serve(models(['dyn', '[-1, -1]'], ['fix4', '[-1, 4]']), vote(members))
    const ens = g.ensemble('e')
    expect(ens.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }])
    // What the describe and metadata endpoints show is the same merged shape.
    expect(describeEnsemble(ens).inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }])
    expect(modelMetadata(ens).inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }])
    expect(refusal(g, 3)).toMatch(/^BAD_INPUT: input "x": shape \[1, 3\] does not match declared \[-1, 4\]/)
    expect(refusal(g, 4)).toBeNull()
  })

  it('fixes each dimension from whichever member fixes it', async () => {
    const g = await serve(models(['a', '[-1, -1, 3]'], ['b', '[2, -1, -1]'], ['c', '[-1, -1, -1]']), vote('c, a, b'))
    expect(g.ensemble('e').inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [2, -1, 3] }])
  })

  it.each([
    ['dyn, fix3, fix4', 'fix4', 'fix3'],
    ['fix3, dyn, fix4', 'fix4', 'fix3'],
    ['fix4, dyn, fix3', 'fix3', 'fix4'],
  ])('are refused when two members fix a dimension at two sizes, in any order (%s)', async (members, last, fixer) => {
    const loading = serve(models(['dyn', '[-1, -1]'], ['fix3', '[-1, 3]'], ['fix4', '[-1, 4]']), vote(members))
    const width = (name: string): string => name.slice(-1)
    await expect(loading).rejects.toThrow(`ensembles.e.models.2: inputs of "${last}" (x:FP32[-1,${width(last)}]) differ from "${fixer}" (x:FP32[-1,${width(fixer)}])`)
  })

  it('keep the first member\'s names and datatypes: a member of another datatype is named against it', async () => {
    const loading = serve(`${models(['a', '[-1, 2]'])}\n  b: { kind: scripted, input: { datatype: FP64, shape: [-1, 2] } }`, vote('a, b'))
    await expect(loading).rejects.toThrow(/ensembles\.e\.models\.1: inputs of "b" \(x:FP64\[-1,2\]\) differ from "a" \(x:FP32\[-1,2\]\)/)
  })
})
