/**
 * WAL segment files: names, creation, and scanning one file into records.
 *
 * A segment is named by its sequence number, `<seq as 16 hex digits>.wal`, and begins with a
 * segmentHeader record holding the state at its creation (payload.ts). It is created whole:
 * written as a temporary file, synced, renamed into place and its directory synced, so a segment
 * with its final name always has a valid header.
 *
 * Liveness: each segment tracks the highest index of an entry written to it that is still in the
 * log (markLive); wal.ts deletes a segment only when that is behind the durable compaction point.
 *
 * Scanning tells a torn tail from damage. A segment's file may run on past its last record with
 * zero bytes (space the WAL zero-filled ahead of its appends, wal.ts): a record that fails to decode
 * followed only by zeros is the clean end of any segment. Otherwise only the last segment can end
 * in a torn write (earlier ones were synced before the next was created). In it, the first record
 * that fails to decode starts the tail, which is discarded only if no valid record follows it
 * anywhere in the file; a valid record after a bad one means acknowledged data was damaged, which
 * is an error.
 */

import type { FileHandle } from 'node:fs/promises'
import { constants, open, rename } from 'node:fs/promises'
import path from 'node:path'
import { syncDirectory, tmpSuffix, writeFully } from './directory.ts'
import { StorageError } from './errors.ts'
import { encodeSegmentHeader, type SegmentHeader } from './payload.ts'
import { decodeRecordAt, encodeRecords, RecordType, recordHeaderBytes } from './record.ts'

const segmentNamePattern = /^([0-9a-f]{16})\.wal$/

export function segmentName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.wal`
}

export function parseSegmentName(name: string): number | undefined {
  const match = segmentNamePattern.exec(name)
  if (match === null) return undefined
  const seq = Number.parseInt(match[1]!, 16)
  return Number.isSafeInteger(seq) && seq >= 1 ? seq : undefined
}

/** Creates a segment holding only its header; returns it open for appending. */
export type WalSyncMode = 'dsync' | 'fdatasync'

/** open(2) flags of a segment a WAL appends to. */
export function segmentOpenFlags(mode: WalSyncMode, create: boolean): number {
  const base = create ? constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC : constants.O_RDWR
  return mode === 'dsync' ? base | constants.O_DSYNC : base
}

export async function createSegment(
  dir: string,
  header: SegmentHeader,
  payloadBytesMax: number,
  syncMode: WalSyncMode,
): Promise<{ handle: FileHandle; bytes: number; filePath: string }> {
  const filePath = path.join(dir, segmentName(header.seq))
  const tmpPath = filePath + tmpSuffix
  const bytes = encodeRecords(
    [{ type: RecordType.segmentHeader, payload: encodeSegmentHeader(header) }],
    0,
    payloadBytesMax,
  )
  const handle = await open(tmpPath, segmentOpenFlags(syncMode, true))
  try {
    await writeFully(handle, bytes, 0)
    if (syncMode === 'fdatasync') await handle.datasync() // with O_DSYNC the write already was durable
    await rename(tmpPath, filePath)
    await syncDirectory(dir)
  } catch (error) {
    await handle.close()
    throw error
  }
  return { handle, bytes: bytes.length, filePath }
}

export interface ScannedRecord {
  type: RecordType
  /** A view into the scanned buffer. */
  payload: Uint8Array
  offset: number
}

export interface SegmentScan {
  records: ScannedRecord[]
  /** Bytes of valid records from the start; the file is truncated to this when a tail is torn. */
  validBytes: number
  torn: { offset: number; reason: string } | undefined
}

const zeroProbe = new Uint8Array(64 * 1024)

/** Whether every byte of buf from `from` on is zero. */
export function isZeroFrom(buf: Uint8Array, from: number): boolean {
  for (let at = from; at < buf.length; at += zeroProbe.length) {
    const end = Math.min(buf.length, at + zeroProbe.length)
    if (Buffer.compare(buf.subarray(at, end), zeroProbe.subarray(0, end - at)) !== 0) return false
  }
  return true
}

/** Splits a whole segment file into records. Throws STORAGE_CORRUPT for damage that is not a torn tail. */
export function scanSegment(
  buf: Uint8Array,
  isLast: boolean,
  name: string,
  payloadBytesMax: number,
): SegmentScan {
  const records: ScannedRecord[] = []
  let offset = 0
  while (offset < buf.length) {
    const rec = decodeRecordAt(buf, offset, payloadBytesMax)
    if (!rec.ok) {
      if (isZeroFrom(buf, offset)) return { records, validBytes: offset, torn: undefined }
      if (!isLast) {
        throw new StorageError(
          'STORAGE_CORRUPT',
          `segment ${name}, offset ${offset}: ${rec.reason} (not the last segment)`,
        )
      }
      const later = findValidRecordAfter(buf, offset, payloadBytesMax)
      if (later !== undefined) {
        throw new StorageError(
          'STORAGE_CORRUPT',
          `segment ${name}, offset ${offset}: ${rec.reason}, but a valid record follows at offset ${later}: ` +
            'damaged data before the end of the log, not a torn write',
        )
      }
      return { records, validBytes: offset, torn: { offset, reason: rec.reason } }
    }
    records.push({ type: rec.type, payload: rec.payload, offset })
    offset = rec.end
  }
  return { records, validBytes: offset, torn: undefined }
}

/** The offset of the first record after `from` that decodes, if any. Linear: only offsets that name
 *  themselves in the header are checksummed. */
function findValidRecordAfter(buf: Uint8Array, from: number, payloadBytesMax: number): number | undefined {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  for (let p = from + 1; p + recordHeaderBytes <= buf.length; p++) {
    if (view.getUint32(p + 8, true) !== p) continue
    if (decodeRecordAt(buf, p, payloadBytesMax).ok) return p
  }
  return undefined
}

/** A segment as the WAL tracks it. */
export interface Segment {
  seq: number
  filePath: string
  bytes: number
  /** Highest index of an entry written here and not since truncated or reset; 0 if none. */
  liveIndexMax: number
  /** Whether anything follows the header. */
  hasRecords: boolean
}

/** Entries first..last were written to segments[at]: earlier copies of index >= first are dead. */
export function markLive(segments: Segment[], at: number, first: number, last: number): void {
  for (const s of segments) if (s.liveIndexMax >= first) s.liveIndexMax = first - 1
  segments[at]!.liveIndexMax = last
}
