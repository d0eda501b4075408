import { describe, expect, it } from 'vitest'

describe('runtime', () => {
  it('is the Node 24 LTS pinned in devDependencies', () => {
    expect(process.versions.node.split('.')[0]).toBe('24')
  })
})
