import Type from 'typebox'

/** Fields every model entry may carry, whatever its kind. */
export const commonModelFields = {
  version: Type.Optional(Type.Union([Type.String(), Type.Number()])),
  /** Static quality for best-quality when the model reports none. */
  quality: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  description: Type.Optional(Type.String()),
}

export interface CommonModelConfig {
  readonly kind: string
  readonly version?: string | number
  readonly quality?: number
  readonly description?: string
}
