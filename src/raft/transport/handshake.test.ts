/**
 * Proves the acceptor's handshake decision (cluster id, member id, own id, protocol) and that
 * malformed handshakes and replies are rejected without throwing.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Hello, helloRefusal, validateHello, validateReply } from './handshake.ts'

const local = { clusterId: 'prod-eu', memberId: 2 }
const good: Hello = { protocol: 1, clusterId: 'prod-eu', from: 1, to: 2, stream: 'messages' }

describe('helloRefusal', () => {
  it.each([
    ['the right cluster and member', good, undefined],
    ['a snapshot stream', { ...good, stream: 'snapshot' as const }, undefined],
    [
      'another cluster',
      { ...good, clusterId: 'prod-us' },
      /cluster id "prod-us" is not this cluster's \("prod-eu"\)/,
    ],
    ['another member id', { ...good, to: 3 }, /member 3 was expected, this is member 2/],
    ['our own id as the dialer', { ...good, from: 2 }, /claims this member's own id/],
    ['protocol 2', { ...good, protocol: 2 }, /protocol 2 is not supported/],
  ])('%s', (_, hello, expected) => {
    const reason = helloRefusal(hello, local)
    if (expected === undefined) expect(reason).toBeUndefined()
    else expect(reason).toMatch(expected)
  })
})

describe('validateHello and validateReply', () => {
  it.each([
    ['a missing stream', { ...good, stream: undefined }],
    ['an unknown stream', { ...good, stream: 'files' }],
    ['a node id 0', { ...good, from: 0 }],
    ['a string member id', { ...good, to: '2' }],
    ['a cluster id over 256 characters', { ...good, clusterId: 'x'.repeat(257) }],
    ['a fractional protocol', { ...good, protocol: 1.5 }],
  ])('rejects a hello with %s', (_, hello) => {
    expect(validateHello(hello)).toBeUndefined()
  })

  it('keeps only the known fields of a hello', () => {
    expect(validateHello({ ...good, extra: 1 })).toStrictEqual(good)
  })

  it('accepts replies of both shapes and truncates long reasons', () => {
    expect(validateReply({ ok: true, reason: 'ignored' })).toStrictEqual({ ok: true })
    expect(validateReply({ ok: false, reason: 'x'.repeat(1000) })).toStrictEqual({
      ok: false,
      reason: 'x'.repeat(512),
    })
    expect(validateReply({ ok: false })).toBeUndefined()
    expect(validateReply({ ok: 1 })).toBeUndefined()
  })

  it('never throws on random values', () => {
    fc.assert(
      fc.property(
        fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true }),
        (value) => {
          expect(validateHello(value)).toBeUndefined()
          validateReply(value)
        },
      ),
      { numRuns: 5_000 },
    )
  })
})
