// What a predict's run reports to the gateway that started it: the config's count of runs in
// flight (a replaced config retires once its last one ends) and the serving records' hooks.
import type { Outcome, PredictRequest, PredictResult } from '../types.ts'
import type { EnsembleRuntime } from './ensemble.ts'

/** Predicts running on one config, so a replaced config knows when its last one is done. */
export interface RunScope {
  inFlight: number
  onIdle: (() => void) | undefined
}

export interface RunHooks {
  /**
   * Called once per predict with its final result (serving records); `decidedAt` is when it
   * was decided (Date.now()), even when shadows ran after. Before any onLate of the predict.
   */
  onResult?(result: PredictResult, req: PredictRequest, ens: EnsembleRuntime, decidedAt: number): void
  /**
   * Called when a model answers after the decision (published as "late" if configured), with
   * the object onResult got (or will get: a late answer waits for the predict's shadows).
   */
  onLate?(result: PredictResult, model: number, outcome: Outcome, req: PredictRequest, decidedAt: number): void
}
