/**
 * Payloads of the records (record.ts), encoded with msgpackr as positional arrays.
 *
 *   segmentHeader  [version, seq, [term, vote, commit], logStartIndex, logStartTerm, lastIndex]
 *   entries        [entry, ...] with entry = [index, term, data] or [index, term, data, change]
 *                  and change = [changeType, nodeId] or [changeType, nodeId, context]
 *   hardState      [term, vote, commit]
 *   snapshot       [index, term]
 *   compaction     [index, term]
 *   snapshotMeta   [version, index, term, voters, learners, dataBytes, dataCrc32]
 *
 * Decoding validates shapes and returns undefined for anything malformed: a payload that passed
 * its checksum but does not decode is corruption (or a newer format), never data.
 * Ownership: decoded entries own their bytes (copied out of the read buffer).
 */
import { Packr } from 'msgpackr'
import type { ConfChange, ConfChangeType, ConfState, Entry, HardState } from '../core/types.ts'

export const formatVersion = 1

const packr = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true })

const changeTypes: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode']

export interface SegmentHeader {
  seq: number
  hardState: HardState
  logStart: { index: number; term: number }
  /** The log's last index when the segment was created; its entries continue after it. */
  lastIndex: number
}

export interface IndexTerm {
  index: number
  term: number
}

export interface SnapshotMetaPayload {
  index: number
  term: number
  confState: ConfState
  dataBytes: number
  dataCrc32: number
}

export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  const hs = h.hardState
  return packr.pack([
    formatVersion,
    h.seq,
    [hs.term, hs.vote, hs.commit],
    h.logStart.index,
    h.logStart.term,
    h.lastIndex,
  ])
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader | undefined {
  const v = unpack(payload)
  if (!Array.isArray(v) || v.length !== 6 || v[0] !== formatVersion) return undefined
  const [, seq, hsRaw, startIndex, startTerm, lastIndex] = v
  const hardState = toHardState(hsRaw)
  if (!isCount(seq) || seq < 1 || hardState === undefined) return undefined
  if (!isCount(startIndex) || !isCount(startTerm) || !isCount(lastIndex) || lastIndex < startIndex)
    return undefined
  return { seq, hardState, logStart: { index: startIndex, term: startTerm }, lastIndex }
}

export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  return packr.pack(entries.map(entryTuple))
}

export function decodeEntries(payload: Uint8Array): Entry[] | undefined {
  const v = unpack(payload)
  if (!Array.isArray(v) || v.length === 0) return undefined
  const entries: Entry[] = []
  for (const raw of v) {
    const entry = toEntry(raw)
    if (entry === undefined) return undefined
    const prev = entries[entries.length - 1]
    if (prev !== undefined && entry.index !== prev.index + 1) return undefined
    entries.push(entry)
  }
  return entries
}

export function encodeHardState(hs: HardState): Uint8Array {
  return packr.pack([hs.term, hs.vote, hs.commit])
}

export function decodeHardState(payload: Uint8Array): HardState | undefined {
  return toHardState(unpack(payload))
}

export function encodeIndexTerm(it: IndexTerm): Uint8Array {
  return packr.pack([it.index, it.term])
}

export function decodeIndexTerm(payload: Uint8Array): IndexTerm | undefined {
  const v = unpack(payload)
  if (!Array.isArray(v) || v.length !== 2 || !isCount(v[0]) || !isCount(v[1])) return undefined
  return { index: v[0], term: v[1] }
}

export function encodeSnapshotMeta(m: SnapshotMetaPayload): Uint8Array {
  const { voters, learners } = m.confState
  return packr.pack([formatVersion, m.index, m.term, voters, learners, m.dataBytes, m.dataCrc32])
}

export function decodeSnapshotMeta(payload: Uint8Array): SnapshotMetaPayload | undefined {
  const v = unpack(payload)
  if (!Array.isArray(v) || v.length !== 7 || v[0] !== formatVersion) return undefined
  const [, index, term, voters, learners, dataBytes, dataCrc32] = v
  if (!isCount(index) || !isCount(term) || !isCount(dataBytes) || !isCount(dataCrc32)) return undefined
  if (!isIdList(voters) || !isIdList(learners)) return undefined
  return { index, term, confState: { voters, learners }, dataBytes, dataCrc32 }
}

function entryTuple(e: Entry): unknown[] {
  if (e.change === undefined) return [e.index, e.term, e.data]
  const c = e.change
  const change = c.context === undefined ? [c.type, c.nodeId] : [c.type, c.nodeId, c.context]
  return [e.index, e.term, e.data, change]
}

function toEntry(raw: unknown): Entry | undefined {
  if (!Array.isArray(raw) || (raw.length !== 3 && raw.length !== 4)) return undefined
  const [index, term, data, changeRaw] = raw
  if (!isCount(index) || index < 1 || !isCount(term) || !(data instanceof Uint8Array)) return undefined
  if (raw.length === 3) return { index, term, type: 'normal', data: plainBytes(data) }
  const change = toConfChange(changeRaw)
  return change === undefined ? undefined : { index, term, type: 'conf', data: plainBytes(data), change }
}

function toConfChange(raw: unknown): ConfChange | undefined {
  if (!Array.isArray(raw) || (raw.length !== 2 && raw.length !== 3)) return undefined
  const [type, nodeId, context] = raw
  if (!changeTypes.includes(type) || !isCount(nodeId)) return undefined
  if (raw.length === 2) return { type, nodeId }
  return context instanceof Uint8Array ? { type, nodeId, context: plainBytes(context) } : undefined
}

/** msgpackr decodes bytes as Buffers; hand out plain Uint8Arrays (a view, no copy). */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function toHardState(raw: unknown): HardState | undefined {
  if (!Array.isArray(raw) || raw.length !== 3) return undefined
  const [term, vote, commit] = raw
  if (!isCount(term) || !isCount(vote) || !isCount(commit)) return undefined
  return { term, vote, commit }
}

function unpack(payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload)
  } catch {
    return undefined
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isIdList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((id) => isCount(id) && id > 0)
}
