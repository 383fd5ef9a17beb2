/**
 * Proves the framing layer: frames split at any byte boundaries come out whole and in order;
 * a length prefix of 0 or beyond frameBytesMax fails before the body is buffered and silences the
 * decoder; random bytes never throw. Also the batch encoder: batches too large for one frame are
 * split in order, and a message too large for any frame is counted, not sent.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Message } from '../core/types.ts'
import { encodeFrame, FrameDecoder, FrameKind } from './frame.ts'
import { decodeBody, decodeOwnedBody, encodeBatches, encodeBody } from './message-codec.ts'
import { heartbeat } from './test-support.ts'

const frameArb = fc.record({ kind: fc.integer({ min: 1, max: 7 }), body: fc.uint8Array({ maxLength: 300 }) })

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
  const pieces: Buffer[] = []
  let at = 0
  for (const p of [...points, bytes.length]) {
    pieces.push(bytes.subarray(at, p))
    at = p
  }
  return pieces
}

describe('FrameDecoder', () => {
  it('yields the frames that were encoded, whatever the chunking', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (frames, cuts) => {
          const wire = Buffer.concat(frames.map((f) => encodeFrame(f.kind as FrameKind, f.body)))
          const decoder = new FrameDecoder(1024)
          const got: { kind: number; body: number[] }[] = []
          for (const piece of split(wire, cuts)) {
            // Copy each body: a body is only valid during the callback.
            const error = decoder.push(piece, (kind, body) => got.push({ kind, body: Array.from(body) }))
            expect(error).toBeUndefined()
          }
          expect(got).toEqual(frames.map((f) => ({ kind: f.kind, body: Array.from(f.body) })))
          expect(decoder.bufferedBytes).toBe(0)
        },
      ),
      { numRuns: 2_000 },
    )
  })

  it.each([
    ['0', 0, 'TRANSPORT_FRAME_INVALID'],
    ['frameBytesMax + 1', 1025, 'TRANSPORT_FRAME_BYTES_MAX'],
    ['2^32 - 1', 0xffffffff, 'TRANSPORT_FRAME_BYTES_MAX'],
  ])('fails on a length prefix of %s, then ignores all input', (_, length, code) => {
    const decoder = new FrameDecoder(1024)
    const good = encodeFrame(FrameKind.batch, Buffer.from([0x90]))
    const bad = Buffer.alloc(4)
    bad.writeUInt32BE(length, 0)
    const frames: number[] = []
    expect(decoder.push(good, (kind) => frames.push(kind))).toBeUndefined()
    // The bad prefix arrives one byte at a time: the error comes with its last byte.
    for (let i = 0; i < 3; i++) expect(decoder.push(bad.subarray(i, i + 1), () => {})).toBeUndefined()
    expect(decoder.push(bad.subarray(3), () => {})?.code).toBe(code)
    expect(decoder.push(good, (kind) => frames.push(kind))).toBeUndefined()
    expect(frames).toEqual([FrameKind.batch])
    expect(decoder.bufferedBytes).toBe(0)
  })

  it('accepts a frame of exactly frameBytesMax', () => {
    const decoder = new FrameDecoder(1024)
    const bodies: number[] = []
    decoder.push(encodeFrame(FrameKind.snapshotChunk, new Uint8Array(1023)), (_, body) =>
      bodies.push(body.length),
    )
    expect(bodies).toEqual([1023])
  })

  it('stops delivering when stopped from inside the callback', () => {
    const decoder = new FrameDecoder(1024)
    const wire = Buffer.concat([1, 2, 3].map((k) => encodeFrame(k as FrameKind, Buffer.alloc(0))))
    const kinds: number[] = []
    decoder.push(wire, (kind) => {
      kinds.push(kind)
      decoder.stop()
    })
    expect(kinds).toEqual([1])
  })

  it('never throws on random bytes, and never buffers more than one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const decoder = new FrameDecoder(256)
        for (const chunk of chunks) {
          decoder.push(Buffer.from(chunk), (_, body) => decodeBody(body))
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(256 + 4 + 200)
        }
      }),
      { numRuns: 2_000 },
    )
  })
})

describe('decodeOwnedBody', () => {
  it('decoded bytes never point into a socket chunk the body was a view of', () => {
    const body = encodeBody([{ data: new Uint8Array([1, 2, 3]) }])
    // A 64 KiB socket read holding many frames (large enough not to come from Buffer's pool).
    const chunk = Buffer.concat([Buffer.alloc(32 * 1024), body, Buffer.alloc(32 * 1024)])
    const view = chunk.subarray(32 * 1024, 32 * 1024 + body.length)
    const [copied] = decodeOwnedBody(view, false) as { data: Uint8Array }[]
    expect(copied?.data.buffer).not.toBe(chunk.buffer)
    expect(Array.from(copied?.data ?? [])).toEqual([1, 2, 3])
    // An owned body (assembled from several chunks) is decoded in place.
    const owned = Buffer.from(body)
    const [inPlace] = decodeOwnedBody(owned, true) as { data: Uint8Array }[]
    expect(inPlace?.data.buffer).toBe(owned.buffer)
  })

  it('the decoder marks assembled frames owned and single-chunk frames not', () => {
    const frame = encodeFrame(FrameKind.batch, new Uint8Array(10))
    const seen: boolean[] = []
    new FrameDecoder(1024).push(frame, (_, __, owned) => seen.push(owned))
    const split = new FrameDecoder(1024)
    split.push(frame.subarray(0, 7), () => {})
    split.push(frame.subarray(7), (_, __, owned) => seen.push(owned))
    expect(seen).toEqual([false, true])
  })
})

describe('encodeBatches', () => {
  it('encodes a batch that fits as one body', () => {
    const out: Buffer[] = []
    const messages = [heartbeat(1, 2, 1), heartbeat(1, 2, 2)]
    expect(encodeBatches(messages, 1024, out)).toBe(0)
    expect(out).toHaveLength(1)
    expect(decodeBody(out[0] as Buffer)).toEqual(messages)
  })

  it('splits a large batch into bodies under the limit, keeping order, and counts messages too large alone', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 600 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const messages: Message[] = sizes.map((size, i) => ({
          type: 'prop',
          from: 1,
          to: 2,
          term: i,
          entries: [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(size) }],
        }))
        const out: Buffer[] = []
        const dropped = encodeBatches(messages, 512, out)
        const decoded = out.flatMap((body) => {
          expect(body.length).toBeLessThanOrEqual(512)
          return decodeBody(body) as Message[]
        })
        expect(decoded.length + dropped).toBe(messages.length)
        const terms = decoded.map((m) => m.term)
        expect(terms).toEqual([...terms].sort((x, y) => x - y))
        // Exactly the messages too large on their own are missing.
        const tooLarge = messages.filter((m) => !decoded.some((d) => d.term === m.term)).map((m) => m.term)
        for (const term of tooLarge) expect(sizes[term]).toBeGreaterThan(400)
      }),
      { numRuns: 300 },
    )
  })
})
