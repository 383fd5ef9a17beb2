/**
 * Typed operating errors of the peer transport.
 *
 * These are the reasons a connection or a snapshot stream is closed: they are logged and counted,
 * never thrown to the caller (send() never throws) and never handed to the Raft core, which only
 * learns "unreachable" or "snapshot failed". The codes are stable; they belong in the error
 * catalogue (src/errors.ts, docs/errors.md) and live here until that file is merged.
 *
 * Programmer errors (bad options, misuse of the API) are assertions, not TransportErrors.
 */

export const transportErrorCatalogue = {
  TRANSPORT_FRAME_BYTES_MAX: 'a frame is longer than frameBytesMax; the connection was closed',
  TRANSPORT_FRAME_INVALID:
    'a frame is empty, of an unknown kind, or not allowed at this point of the protocol',
  TRANSPORT_HANDSHAKE_INVALID: 'the first frame of a connection is not a well-formed handshake',
  TRANSPORT_HANDSHAKE_REFUSED:
    'the handshake was refused (wrong cluster id, wrong member id, protocol, or busy)',
  TRANSPORT_HANDSHAKE_TIMEOUT: 'no handshake completed within dialTimeoutMs / handshakeTimeoutMs',
  TRANSPORT_CONNECTION_LOST: 'the connection closed or failed',
  TRANSPORT_SNAPSHOT_BYTES_MAX: 'a snapshot is larger than snapshotBytesMax',
  TRANSPORT_SNAPSHOT_INVALID:
    'a snapshot stream is malformed (header, chunk beyond the declared length, end marker)',
  TRANSPORT_SNAPSHOT_CHECKSUM: 'a snapshot arrived with the wrong length or checksum',
  TRANSPORT_SNAPSHOT_TIMEOUT: 'a snapshot stream made no progress for snapshotIdleTimeoutMs',
  TRANSPORT_SNAPSHOT_BUSY: 'a snapshot to this peer is already streaming (one at a time per peer)',
} as const

export type TransportErrorCode = keyof typeof transportErrorCatalogue

export class TransportError extends Error {
  readonly code: TransportErrorCode

  constructor(code: TransportErrorCode, detail?: string) {
    super(
      detail === undefined ? transportErrorCatalogue[code] : `${transportErrorCatalogue[code]}: ${detail}`,
    )
    this.name = 'TransportError'
    this.code = code
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
