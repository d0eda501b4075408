// Annotations for a caller without the `debug` scope keep every model's status and error
// code but not its error message: messages carry upstream details (hosts, upstream error
// text, file paths) that are the operator's business, not the client's. The request's own
// error (code and its fixed message) is unchanged. Records and logs keep everything. A
// model's description says that its upstream's metadata could not be read at load, but not the error's text.
import type { ModelAnnotation, PredictResult } from '../types.ts'
import type { Principal } from './guard.ts'

/** The result as this caller may see it. Open gateways (no principal) and `debug` callers see it whole. */
export function forCaller(result: PredictResult, principal: Principal | undefined): PredictResult {
  if (principal === undefined || principal.grants.debug) return result
  let failed = false
  for (const m of result.models) if (m.error !== undefined) failed = true
  return failed ? { ...result, models: result.models.map(codeOnly) } : result
}

const codeOnly = (m: ModelAnnotation): ModelAnnotation => (m.error === undefined ? m : { ...m, error: { code: m.error.code } })

/** What a model's description says of a metadata call that failed at load, to a caller without `debug`. */
export const METADATA_ERROR_REDACTED = 'its upstream\'s metadata could not be read at load (the error needs the debug scope)'

/** An executor's description (describe()) as this caller may see it. */
export function detailsForCaller(details: Readonly<Record<string, unknown>> | undefined, principal: Principal | undefined): Readonly<Record<string, unknown>> | undefined {
  if (principal === undefined || principal.grants.debug || details?.metadata_error === undefined) return details
  return { ...details, metadata_error: METADATA_ERROR_REDACTED }
}
