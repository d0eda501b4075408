import Type from 'typebox'

/** Fields every model entry may carry, whatever its kind. */
export const commonModelFields = {
  version: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  /** Static quality for best-quality when the model reports none. */
  quality: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  description: Type.Optional(Type.String()),
  /**
   * Outputs a new version of the model may take from its ensembles: the registry refuses a
   * version that would drop any other output an ensemble declares (src/registry/compatible.ts).
   */
  outputs_may_drop: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
}

export interface CommonModelConfig {
  readonly kind: string
  readonly version?: string | number
  readonly quality?: number
  readonly description?: string
  readonly outputs_may_drop?: readonly string[]
}
