/**
 * Proves the record framing: records round-trip at their offsets; every strict prefix of a record
 * (a torn write), every single flipped bit, a record read at another offset and out-of-range
 * lengths or types fail to decode, never throw and never return data.
 */
import { describe, expect, it } from 'vitest'
import { decodeRecordAt, encodeRecords, RecordType, recordHeaderBytes } from './record.ts'

const payloadMax = 1 << 20

describe('record framing', () => {
  it('round-trips several records written at a file offset', () => {
    const records = [
      { type: RecordType.entries, payload: new Uint8Array([1, 2, 3]) },
      { type: RecordType.hardState, payload: new Uint8Array(1000).fill(9) },
    ]
    const buf = encodeRecords(records, 500, payloadMax)
    const first = decodeRecordAt(buf, 0, payloadMax, 500)
    expect(first).toMatchObject({ ok: true, type: RecordType.entries, end: recordHeaderBytes + 3 })
    if (!first.ok) return
    expect(Array.from(first.payload)).toEqual([1, 2, 3])
    const second = decodeRecordAt(buf, first.end, payloadMax, 500)
    expect(second).toMatchObject({ ok: true, type: RecordType.hardState, end: buf.length })
  })

  it('every strict prefix of a record fails to decode (a torn write)', () => {
    const buf = encodeRecords(
      [{ type: RecordType.entries, payload: new Uint8Array(40).fill(7) }],
      0,
      payloadMax,
    )
    for (let cut = 0; cut < buf.length; cut++) {
      expect(decodeRecordAt(buf.subarray(0, cut), 0, payloadMax).ok, `cut ${cut}`).toBe(false)
    }
  })

  it('every single flipped bit is detected', () => {
    const buf = encodeRecords(
      [{ type: RecordType.compaction, payload: new Uint8Array([0x92, 5, 1]) }],
      0,
      payloadMax,
    )
    for (let bit = 0; bit < buf.length * 8; bit++) {
      const damaged = Buffer.from(buf)
      damaged[bit >> 3]! ^= 1 << (bit & 7)
      expect(decodeRecordAt(damaged, 0, payloadMax).ok, `bit ${bit}`).toBe(false)
    }
  })

  it('a record copied to another offset does not decode there', () => {
    const buf = encodeRecords([{ type: RecordType.hardState, payload: new Uint8Array([1]) }], 0, payloadMax)
    const shifted = Buffer.concat([Buffer.alloc(8), buf])
    expect(decodeRecordAt(shifted, 8, payloadMax)).toEqual({
      ok: false,
      reason: 'record does not name its own offset',
    })
  })

  it('lengths beyond the limit and unknown types are rejected with a reason', () => {
    const buf = encodeRecords([{ type: RecordType.entries, payload: new Uint8Array(100) }], 0, payloadMax)
    expect(decodeRecordAt(buf, 0, 99)).toEqual({ ok: false, reason: 'payload length 100 out of range' })
    const badType = Buffer.from(buf)
    badType[12] = 42
    expect(decodeRecordAt(badType, 0, payloadMax)).toEqual({ ok: false, reason: 'unknown record type 42' })
  })

  it('encoding an empty or oversized payload is a programmer error', () => {
    expect(() =>
      encodeRecords([{ type: RecordType.entries, payload: new Uint8Array(0) }], 0, payloadMax),
    ).toThrow(/storage assertion/)
    expect(() => encodeRecords([{ type: RecordType.entries, payload: new Uint8Array(11) }], 0, 10)).toThrow(
      /storage assertion/,
    )
  })
})
