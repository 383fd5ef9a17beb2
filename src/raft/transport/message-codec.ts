/**
 * msgpackr encoding of frame bodies: message batches and the small control records (handshake,
 * snapshot header, end marker, acknowledgement).
 *
 * Encoding: plain msgpack maps and arrays (no records, no shared structures, no structured-clone
 * references), so every frame decodes on its own and a peer cannot plant state in our decoder.
 * Byte fields are msgpack `bin` values; they decode as views of the body they came in (copying each
 * one costs 4x the whole decode for 256-byte entries, see bench/transport.ts). So that an entry the
 * log keeps does not pin a whole socket chunk, decodeOwnedBody() first copies a body that is a view
 * of a socket chunk: an entry pins at most the frame it arrived in (or, for frames under 4 KiB,
 * the 8 KiB slab of Buffer's pool the copy landed in).
 *
 * decodeBody() never throws: bytes that are not one well-formed msgpack value give undefined.
 * Validating what a value means is validate.ts's job.
 */
import { Packr, Unpackr } from 'msgpackr'
import type { Message } from '../core/types.ts'

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  // A uint64 beyond 2^53 decodes to an unsafe number, which validation rejects.
  int64AsType: 'number',
})

/**
 * The returned buffer is a view of the encoder's output area; later encodings never overwrite it
 * (msgpackr moves on to a fresh area), so it may be queued on a socket as is.
 */
export function encodeBody(value: unknown): Buffer {
  return packr.pack(value)
}

export function decodeBody(body: Uint8Array): unknown {
  try {
    return unpackr.unpack(body)
  } catch {
    return undefined
  }
}

/** decodeBody for a body whose bytes may be kept: copies it first unless the caller owns it. */
export function decodeOwnedBody(body: Buffer, owned: boolean): unknown {
  return decodeBody(owned ? body : Buffer.from(body))
}

/**
 * Encodes messages as batch bodies of at most bodyBytesMax bytes each, in order: one body when they
 * fit, else the batch is halved until each part fits. Returns how many messages could not fit on
 * their own (each alone is larger than bodyBytesMax); those are left out.
 */
export function encodeBatches(messages: readonly Message[], bodyBytesMax: number, out: Buffer[]): number {
  if (messages.length === 0) return 0
  const body = packr.pack(messages)
  if (body.length <= bodyBytesMax) {
    out.push(body)
    return 0
  }
  if (messages.length === 1) return 1
  const half = messages.length >>> 1
  return (
    encodeBatches(messages.slice(0, half), bodyBytesMax, out) +
    encodeBatches(messages.slice(half), bodyBytesMax, out)
  )
}

/** A cheap upper-bound-ish estimate of a message's encoded size, for the per-peer queue byte limit. */
export function messageBytesEstimate(message: Message): number {
  const base = 64
  switch (message.type) {
    case 'app':
    case 'prop': {
      let bytes = base
      for (const entry of message.entries)
        bytes += 32 + entry.data.length + (entry.change?.context?.length ?? 0)
      return bytes
    }
    case 'snap':
      return base + message.snapshot.data.byteLength
    case 'readIndex':
    case 'readIndexResp':
      return base + message.ctx.length * 3
    default:
      return base
  }
}
