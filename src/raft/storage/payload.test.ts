/**
 * Proves the payload codec: every record payload round-trips, decoded bytes are plain
 * Uint8Arrays that own their memory, and payloads that pass a checksum but have the wrong shape
 * (another version, non-contiguous entries, bad ids, garbage) decode to undefined, never to data.
 */
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import type { Entry } from '../core/types.ts'
import {
  decodeEntries,
  decodeHardState,
  decodeIndexTerm,
  decodeSegmentHeader,
  decodeSnapshotMeta,
  encodeEntries,
  encodeHardState,
  encodeIndexTerm,
  encodeSegmentHeader,
  encodeSnapshotMeta,
} from './payload.ts'

const raw = new Packr({ useRecords: false })

describe('payload codec', () => {
  it('round-trips every payload type', () => {
    const list: Entry[] = [
      { index: 7, term: 2, type: 'normal', data: new Uint8Array([1, 2]) },
      { index: 8, term: 2, type: 'conf', data: new Uint8Array(0), change: { type: 'removeNode', nodeId: 3 } },
      {
        index: 9,
        term: 3,
        type: 'conf',
        data: new Uint8Array(0),
        change: { type: 'addVoter', nodeId: 4, context: new Uint8Array([9]) },
      },
    ]
    const decoded = decodeEntries(encodeEntries(list))
    expect(decoded).toEqual(list)
    expect(decoded![0]!.data.constructor).toBe(Uint8Array)
    const header = {
      seq: 3,
      hardState: { term: 4, vote: 1, commit: 2 ** 40 },
      logStart: { index: 9, term: 3 },
      lastIndex: 2 ** 41,
    }
    expect(decodeSegmentHeader(encodeSegmentHeader(header))).toEqual(header)
    expect(decodeHardState(encodeHardState({ term: 1, vote: 2, commit: 3 }))).toEqual({
      term: 1,
      vote: 2,
      commit: 3,
    })
    expect(decodeIndexTerm(encodeIndexTerm({ index: 5, term: 6 }))).toEqual({ index: 5, term: 6 })
    const meta = {
      index: 5,
      term: 6,
      confState: { voters: [1, 2], learners: [3] },
      dataBytes: 10,
      dataCrc32: 0xffffffff,
    }
    expect(decodeSnapshotMeta(encodeSnapshotMeta(meta))).toEqual(meta)
  })

  it('decoded entries do not share memory with the payload', () => {
    const payload = encodeEntries([{ index: 1, term: 1, type: 'normal', data: new Uint8Array([5, 5, 5]) }])
    const [e] = decodeEntries(payload)!
    payload.fill(0)
    expect(Array.from(e!.data)).toEqual([5, 5, 5])
  })

  it.each([
    { what: 'garbage', payload: new Uint8Array([0xc1, 0xff, 0x00]) },
    { what: 'an empty entries list', payload: raw.pack([]) },
    {
      what: 'non-contiguous entries',
      payload: raw.pack([
        [1, 1, new Uint8Array(0)],
        [3, 1, new Uint8Array(0)],
      ]),
    },
    { what: 'an entry at index 0', payload: raw.pack([[0, 1, new Uint8Array(0)]]) },
    { what: 'a string as data', payload: raw.pack([[1, 1, 'x']]) },
    { what: 'an unknown change type', payload: raw.pack([[1, 1, new Uint8Array(0), ['promote', 2]]]) },
    { what: 'a fractional term', payload: raw.pack([[1, 1.5, new Uint8Array(0)]]) },
  ])('entries: $what decodes to undefined', ({ payload }) => {
    expect(decodeEntries(payload)).toBeUndefined()
  })

  it('other payloads with the wrong shape or version decode to undefined', () => {
    expect(decodeSegmentHeader(raw.pack([2, 1, [0, 0, 0], 0, 0, 0]))).toBeUndefined()
    expect(decodeSegmentHeader(raw.pack([1, 1, [0, 0, 0], 5, 0, 4]))).toBeUndefined()
    expect(decodeHardState(raw.pack([1, -1, 0]))).toBeUndefined()
    expect(decodeIndexTerm(raw.pack([1]))).toBeUndefined()
    expect(decodeSnapshotMeta(raw.pack([1, 5, 1, [0], [], 0, 0]))).toBeUndefined()
  })
})
