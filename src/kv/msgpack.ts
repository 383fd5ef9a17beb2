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

/** Decodes msgpack bytes; throws whatever msgpackr throws on malformed input. */
export function unpackValue(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes)
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
