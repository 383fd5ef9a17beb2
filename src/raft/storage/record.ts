/**
 * Record framing, shared by WAL segments and snapshot files.
 *
 * A record on disk (integers little-endian):
 *
 *   offset 0   u32  payload length L, 1 <= L <= recordBytesMax
 *   offset 4   u32  CRC-32 of bytes [0, 4) ++ [8, 13) ++ payload (everything but the CRC itself)
 *   offset 8   u32  the record's own offset in its file
 *   offset 12  u8   type (RecordType)
 *   offset 13  L    payload (msgpackr, see payload.ts)
 *
 * Invariants: a record decodes only if all of it is present, it sits at the offset it names, and
 * its checksum matches; so a torn write (a prefix of the bytes), flipped bits or a block at the
 * wrong place never decode as data. The self-offset also lets recovery search the bytes after a
 * bad record for a later valid one cheaply (only offsets that name themselves are checksummed),
 * which is how a torn tail is told from damage in the middle (segment.ts).
 * Files stay below 4 GiB (the offset is 32 bits): see walSegmentBytesMax.
 */
import { crc32 } from './crc32.ts'
import { assertStorage } from './errors.ts'

export const recordHeaderBytes = 13

export const RecordType = {
  /** First record of every WAL segment: the state at the moment the segment was created. */
  segmentHeader: 1,
  /** Consecutive log entries; the first one truncates the log at its index. */
  entries: 2,
  hardState: 3,
  /** A snapshot from the leader was persisted (its file is durable): the log restarts after it. */
  snapshot: 4,
  /** The log was compacted: it now starts after this index (a durable snapshot covers it). */
  compaction: 5,
  /** First record of a snapshot file: the snapshot's metadata and its data's length and checksum. */
  snapshotMeta: 6,
} as const

export type RecordType = (typeof RecordType)[keyof typeof RecordType]

const recordTypeMax = 6

/** Largest file offset a record can name. */
export const recordOffsetMax = 0xffff_ffff

export interface RecordToWrite {
  type: RecordType
  payload: Uint8Array
}

export type DecodedRecord =
  | { ok: true; type: RecordType; payload: Uint8Array; end: number }
  | { ok: false; reason: string }

export function encodedRecordBytes(payloadBytes: number): number {
  return recordHeaderBytes + payloadBytes
}

/** Frames records into one buffer, ready for a single write at file offset `fileOffset`. */
export function encodeRecords(
  records: readonly RecordToWrite[],
  fileOffset: number,
  payloadBytesMax: number,
): Buffer {
  let total = 0
  for (const r of records) total += encodedRecordBytes(r.payload.length)
  assertStorage(
    fileOffset + total <= recordOffsetMax + 1,
    `records would end past 4 GiB (${fileOffset + total})`,
  )
  const out = Buffer.allocUnsafe(total)
  let at = 0
  for (const r of records) {
    const length = r.payload.length
    assertStorage(length >= 1 && length <= payloadBytesMax, `record payload of ${length} bytes`)
    out.writeUInt32LE(length, at)
    out.writeUInt32LE(fileOffset + at, at + 8)
    out[at + 12] = r.type
    out.set(r.payload, at + recordHeaderBytes)
    out.writeUInt32LE(recordChecksum(out, at, length), at + 4)
    at += recordHeaderBytes + length
  }
  return out
}

/**
 * Decodes the record at `offset` of `buf`, which holds a file from offset `bufFileOffset` on
 * (0 when it holds the whole file). Never throws on bad bytes. The payload is a view into buf.
 */
export function decodeRecordAt(
  buf: Uint8Array,
  offset: number,
  payloadBytesMax: number,
  bufFileOffset = 0,
): DecodedRecord {
  const available = buf.length - offset
  if (available < recordHeaderBytes) return { ok: false, reason: 'incomplete record header' }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.getUint32(offset + 8, true) !== bufFileOffset + offset) {
    return { ok: false, reason: 'record does not name its own offset' }
  }
  const length = view.getUint32(offset, true)
  if (length < 1 || length > payloadBytesMax)
    return { ok: false, reason: `payload length ${length} out of range` }
  const type = buf[offset + 12]!
  if (type < 1 || type > recordTypeMax) return { ok: false, reason: `unknown record type ${type}` }
  if (available < recordHeaderBytes + length) return { ok: false, reason: 'record extends past the end' }
  if (view.getUint32(offset + 4, true) !== recordChecksum(buf, offset, length)) {
    return { ok: false, reason: 'checksum mismatch' }
  }
  const start = offset + recordHeaderBytes
  return {
    ok: true,
    type: type as RecordType,
    payload: buf.subarray(start, start + length),
    end: start + length,
  }
}

function recordChecksum(buf: Uint8Array, offset: number, length: number): number {
  const head = crc32(
    buf.subarray(offset + 8, offset + recordHeaderBytes),
    crc32(buf.subarray(offset, offset + 4)),
  )
  return crc32(buf.subarray(offset + recordHeaderBytes, offset + recordHeaderBytes + length), head)
}
