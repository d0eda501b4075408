// Config checks that need the models loaded (their inputs and outputs): run after load,
// reported with the same paths and lines as the static checks.
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/config/yaml.ts'
import { Gateway } from '../../src/gateway.ts'
import { configFrom } from '../helpers.ts'

const models = `models:
  a: { kind: onnx, path: ../models/cancer_logreg.onnx }
  b: { kind: onnx, path: ../models/cancer_mlp.onnx }
`

describe('config checks after loading', () => {
  it('rejects, after loading, an ensemble whose models take different inputs', async () => {
    const config = configFrom(`models:
  cancer: { kind: onnx, path: ../models/cancer_logreg.onnx }
  wine: { kind: onnx, path: ../models/wine_logreg.onnx }
ensembles:
  mixed: { strategy: deadline-fallback, models: [cancer, wine] }
executors: { onnx_workers: 1 }
`)
    const gateway = new Gateway(config)
    try {
      const err = await gateway.load().then(() => undefined, (e: unknown) => e)
      expect(err).toBeInstanceOf(ConfigError)
      const [issue] = (err as ConfigError).issues
      expect(issue).toMatchObject({ path: 'ensembles.mixed.models.1', line: 5 })
      expect(issue?.message).toMatch(/inputs of "wine" \(input:FP32\[-1,13\]\) differ from "cancer" \(input:FP32\[-1,30\]\)/)
      expect(gateway.ready).toBe(false)
    } finally {
      await gateway.close()
    }
  })

  it('rejects, after loading, strategy options that do not fit the models (quorum over the model count)', async () => {
    const config = configFrom(`${models}ensembles:
  e:
    strategy: { name: majority-vote, quorum: 3 }
    models: [a, b]
executors: { onnx_workers: 1 }
`)
    const gateway = new Gateway(config)
    try {
      const err = (await gateway.load().then(() => undefined, (e: unknown) => e)) as ConfigError
      expect(err.issues).toEqual([expect.objectContaining({ path: 'ensembles.e.strategy', line: 6 })])
    } finally {
      await gateway.close()
    }
  })
})
