/**
 * The one msgpackr configuration the keyspace encodes commands, member contexts and snapshots with.
 *
 * Records (msgpackr's shared-structure extension) are off: every encoded value stands alone, so a
 * member decodes any entry or snapshot without state from earlier ones. Decoding never yields a
 * BigInt (64-bit integers become numbers); callers validate the decoded shape before using it,
 * and never encode `undefined` (msgpackr would write an extension for it).
 */
import { Packr, Unpackr } from 'msgpackr'

const packrOptions = { useRecords: false, moreTypes: false } as const
const packr = new Packr(packrOptions)
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

export function packValue(value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * A Packr of its own, with the same options, for one large encoding (a snapshot). msgpackr keeps
 * its output buffer between calls and carves later results out of it, so a snapshot encoded with
 * the shared Packr would leave a buffer of the snapshot's size behind, pinned by every small
 * command encoded after it.
 */
export function newPackr(): Packr {
  return new Packr(packrOptions)
}

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
