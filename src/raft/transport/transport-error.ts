/**
 * Typed operating errors of the peer transport.
 *
 * These are the reasons a connection or a snapshot stream is closed: they are logged and counted,
 * never thrown to the caller (send() never throws) and never handed to the Raft core, which only
 * learns "unreachable" or "snapshot failed". The codes and messages are in the one
 * catalogue (src/errors.ts, docs/errors.md).
 *
 * Programmer errors (bad options, misuse of the API) are assertions, not TransportErrors.
 */
import { CairnError, type ErrorCode } from '../../errors.ts'

export type TransportErrorCode = Extract<ErrorCode, `TRANSPORT_${string}`>

export class TransportError extends CairnError {
  declare readonly code: TransportErrorCode

  constructor(code: TransportErrorCode, detail?: string) {
    super(code, detail)
    this.name = 'TransportError'
  }
}

/** Wraps whatever a socket or a callback reported into a TransportError (keeps typed ones). */
export function toTransportError(error: unknown, code: TransportErrorCode): TransportError {
  if (error instanceof TransportError) return error
  return new TransportError(code, error instanceof Error ? error.message : String(error))
}

/** Programmer errors: stay on in production and stop the caller. */
export function assertTransport(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`transport invariant: ${message}`)
}
