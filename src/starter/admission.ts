// The gateway's one admission: predicts in flight, against `server.max_in_flight` read
// from the config being served, so a reload that changes the limit applies at once. REST
// takes its slot before the body is read (a refusal then costs almost nothing; a body slow
// to arrive gives it back, src/api/rest/admission.ts); gRPC and Kafka take theirs when the
// predict starts.
import { GatewayError } from '../errors.ts'

export class Admission {
  private inFlight = 0
  private readonly limit: () => number

  constructor(limit: () => number) {
    this.limit = limit
  }

  /** The limit now (`server.max_in_flight` of the config being served). */
  get max(): number {
    return this.limit()
  }

  /** Predicts admitted and not finished. */
  get count(): number {
    return this.inFlight
  }

  /** Takes a slot; false when `max_in_flight` predicts are in flight already. */
  tryEnter(): boolean {
    if (this.inFlight >= this.limit()) return false
    this.inFlight++
    return true
  }

  leave(): void {
    this.inFlight--
  }

  overloaded(): GatewayError {
    return new GatewayError('OVERLOADED', this.message())
  }

  /** Why a predict is refused (REST serializes its refusals from it once per limit). */
  message(): string {
    return `more than ${this.limit()} predicts in flight (server.max_in_flight)`
  }
}
