/**
 * Reading a WAL back: scans every segment (segment.ts), replays its records in order (replay.ts)
 * and rebuilds what the writer tracks per segment (size, live entries). Throws STORAGE_CORRUPT,
 * naming the segment and offset, for anything that is not a torn tail of the last segment.
 */
import { readFile } from 'node:fs/promises'
import { StorageError } from './errors.ts'
import { decodeEntries, decodeHardState, decodeIndexTerm, decodeSegmentHeader } from './payload.ts'
import { RecordType } from './record.ts'
import { Replay, type ReplayedLog } from './replay.ts'
import { markLive, type ScannedRecord, type Segment, scanSegment, segmentName } from './segment.ts'

/** The torn tail cut from the last segment. */
export interface TornTail {
  segment: string
  offset: number
  bytes: number
  reason: string
}

/** Replays `segments` (consecutive, oldest first), filling in their bytes and liveness. */
export async function replaySegments(
  segments: Segment[],
  recordBytesMax: number,
): Promise<{ log: ReplayedLog; torn: TornTail | undefined }> {
  let replay: Replay | undefined
  let torn: TornTail | undefined
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const name = segmentName(segment.seq)
    const buf = await readFile(segment.filePath)
    const isLast = i === segments.length - 1
    const scan = scanSegment(buf, isLast, name, recordBytesMax)
    segment.bytes = scan.validBytes
    if (scan.torn !== undefined) {
      torn = {
        segment: name,
        offset: scan.torn.offset,
        bytes: buf.length - scan.validBytes,
        reason: scan.torn.reason,
      }
    }
    const [first, ...rest] = scan.records
    const header = first?.type === RecordType.segmentHeader ? decodeSegmentHeader(first.payload) : undefined
    if (header === undefined || header.seq !== segment.seq) {
      throw new StorageError('STORAGE_CORRUPT', `segment ${name} does not start with its header`)
    }
    if (replay === undefined) replay = new Replay(header)
    else failIf(replay.checkHeader(header), name, 0)
    for (const rec of rest) applyRecord(replay, rec, segments, i, name)
    segment.hasRecords = rest.length > 0
  }
  const result = replay!.finish()
  if (typeof result === 'string') throw new StorageError('STORAGE_CORRUPT', `WAL: ${result}`)
  return { log: result, torn }
}

function applyRecord(
  replay: Replay,
  rec: ScannedRecord,
  segments: Segment[],
  at: number,
  name: string,
): void {
  const fail = (reason: string | undefined) => failIf(reason, name, rec.offset)
  switch (rec.type) {
    case RecordType.entries: {
      const entries = decodeEntries(rec.payload) ?? corrupt('undecodable entries', name, rec.offset)
      fail(replay.applyEntries(entries))
      markLive(segments, at, entries[0]!.index, entries[entries.length - 1]!.index)
      return
    }
    case RecordType.hardState:
      replay.applyHardState(
        decodeHardState(rec.payload) ?? corrupt('undecodable hard state', name, rec.offset),
      )
      return
    case RecordType.snapshot:
      fail(
        replay.applySnapshot(
          decodeIndexTerm(rec.payload) ?? corrupt('undecodable snapshot', name, rec.offset),
        ),
      )
      for (const s of segments) s.liveIndexMax = 0
      return
    case RecordType.compaction:
      fail(
        replay.applyCompaction(
          decodeIndexTerm(rec.payload) ?? corrupt('undecodable compaction', name, rec.offset),
        ),
      )
      return
    default:
      corrupt(`unexpected record type ${rec.type}`, name, rec.offset)
  }
}

function failIf(reason: string | undefined, name: string, offset: number): void {
  if (reason !== undefined) corrupt(reason, name, offset)
}

function corrupt(reason: string, name: string, offset: number): never {
  throw new StorageError('STORAGE_CORRUPT', `segment ${name}, offset ${offset}: ${reason}`)
}
