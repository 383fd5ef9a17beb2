/**
 * Proves the query decoder: a well-formed query yields its question (lower-cased labels, the
 * exact bytes to echo) and its EDNS0 OPT; every malformed shape gets the documented outcome
 * (drop, FORMERR, NOTIMP) without reading past a fault; random bytes never throw.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { queryBytesMax } from './limits.ts'
import { decodeQuery } from './query.ts'
import { encodeQuery } from './test-support.ts'
import { Rcode } from './wire.ts'

function patched(bytes: Buffer, at: number, ...values: number[]): Buffer {
  const copy = Buffer.from(bytes)
  values.forEach((value, i) => {
    copy[at + i] = value
  })
  return copy
}

describe('decodeQuery', () => {
  it('reads the question and the OPT of a well-formed query', () => {
    const decoded = decodeQuery(encodeQuery('WeB.Service.cairn', 33, { id: 7, ednsBytes: 1232 }))
    expect(decoded.kind).toBe('query')
    if (decoded.kind !== 'query') return
    expect(decoded.id).toBe(7)
    expect(decoded.rd).toBe(true)
    expect(decoded.question.labels).toEqual(['web', 'service', 'cairn'])
    expect(decoded.question.nameWire.toString('latin1')).toBe('\x03WeB\x07Service\x05cairn\x00')
    expect(decoded.question.type).toBe(33)
    expect(decoded.question.class).toBe(1)
    expect(decoded.edns).toEqual({ udpPayloadBytes: 1232, version: 0 })
  })

  const good = encodeQuery('web.service.cairn', 1)
  const cases: [string, Buffer, string | number][] = [
    ['shorter than a header', good.subarray(0, 11), 'drop'],
    ['longer than queryBytesMax', Buffer.alloc(queryBytesMax + 1), 'drop'],
    ['a response (QR set)', patched(good, 2, 0x81), 'drop'],
    ['opcode NOTIFY', patched(good, 2, 0x20), Rcode.NOTIMP],
    ['no question', patched(good, 4, 0, 0), Rcode.FORMERR],
    ['two questions', patched(good, 4, 0, 2), Rcode.FORMERR],
    ['an answer record in a query', patched(good, 6, 0, 1), Rcode.FORMERR],
    ['65535 additional records', patched(good, 10, 0xff, 0xff), Rcode.FORMERR],
    ['a compression pointer in the question', patched(good, 12, 0xc0, 0x0c), Rcode.FORMERR],
    ['a reserved label type', patched(good, 12, 0x43), Rcode.FORMERR],
    ['a label running past the end', good.subarray(0, 15), Rcode.FORMERR],
    ['a question without type and class', good.subarray(0, good.length - 2), Rcode.FORMERR],
    ['an OPT cut short', encodeQuery('a.cairn', 1, { ednsBytes: 4096 }).subarray(0, 30), Rcode.FORMERR],
  ]
  it.each(cases)('%s → %s', (_name, bytes, outcome) => {
    const decoded = decodeQuery(bytes)
    if (outcome === 'drop') expect(decoded.kind).toBe('drop')
    else expect(decoded).toMatchObject({ kind: 'error', rcode: outcome })
  })

  it('refuses a name longer than 255 bytes (huge label counts)', () => {
    const name = Array.from({ length: 130 }, () => 'a').join('.')
    expect(decodeQuery(encodeQuery(name, 1))).toMatchObject({ kind: 'error', rcode: Rcode.FORMERR })
  })

  it('refuses two OPT records and an OPT not owned by the root', () => {
    const one = encodeQuery('a.cairn', 1, { ednsBytes: 4096 })
    const opt = one.subarray(one.length - 11)
    const two = Buffer.concat([patched(one, 10, 0, 2), opt])
    expect(decodeQuery(two)).toMatchObject({ kind: 'error', rcode: Rcode.FORMERR })
    const named = Buffer.concat([one.subarray(0, one.length - 11), Buffer.from([1, 0x61]), opt])
    expect(decodeQuery(named)).toMatchObject({ kind: 'error', rcode: Rcode.FORMERR })
  })

  it('never throws on random bytes or on mutations of a good query', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        decodeQuery(Buffer.from(bytes))
      }),
      { numRuns: 2000 },
    )
    const base = encodeQuery('_web._tcp.service.cairn', 33, { ednsBytes: 1232 })
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }))), (edits) => {
        const bytes = Buffer.from(base)
        for (const [at, value] of edits) bytes[at] = value
        decodeQuery(bytes)
      }),
      { numRuns: 2000 },
    )
  })
})
