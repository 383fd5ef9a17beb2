/**
 * The one msgpackr configuration the keyspace encodes commands, member contexts and snapshots with.
 *
 * Records (msgpackr's shared-structure extension) are off: every encoded value stands alone, so a
 * member decodes any entry or snapshot without state from earlier ones. Decoding never yields a
 * BigInt (64-bit integers become numbers); callers validate the decoded shape before using it,
 * and never encode `undefined` (msgpackr would write an extension for it).
 */
import { Packr, Unpackr } from 'msgpackr'

const packr = new Packr({ useRecords: false, moreTypes: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

export function packValue(value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * Packs `value` into `scratch` and returns the bytes: a view of scratch, valid until scratch is
 * used again (or a new buffer msgpackr allocates when the value does not fit). msgpackr's output
 * buffer is shared by every Packr in the process and later results are carved out of it, so a large
 * encoding (a snapshot's chunks) made with pack() leaves a buffer of its size behind, pinned by
 * every small command encoded after it; here the shared buffer is handed back as a fresh small one
 * right after, so nothing else ever encodes into scratch.
 */
export function packReusing(value: unknown, scratch: Buffer): Uint8Array {
  packr.useBuffer(scratch)
  try {
    return packr.pack(value)
  } finally {
    packr.useBuffer(Buffer.allocUnsafeSlow(packBufferBytes))
  }
}

/** What msgpackr starts with by itself. */
const packBufferBytes = 8192

/** Decodes a concatenation of msgpack values into the list of them. */
export function unpackValues(bytes: Uint8Array): unknown[] {
  return unpackr.unpackMultiple(bytes) as unknown[]
}

/** Decodes msgpack bytes; throws whatever msgpackr throws on malformed input. */
export function unpackValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes)
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
