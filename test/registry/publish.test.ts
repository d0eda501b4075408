// publishModel (the library call behind `specserve publish-model`): a record it sends always
// carries a sha256, so a gateway replaying the topic knows it before reading its location.
import { describe, expect, it } from 'vitest'
import { publishModel } from '../../src/registry/publish.ts'

describe('publishModel', () => {
  it('refuses a location record with no model file and no sha256, before any broker is asked', async () => {
    const sent = publishModel({ brokers: ['127.0.0.1:1'], topic: 't', name: 'm', version: 2, description: '', file: undefined, location: 'http://127.0.0.1:1/m.onnx' })
    await expect(sent).rejects.toThrow('a model record needs a sha256: give the model file (hashed) or, with a location, its sha256')
  })
})
