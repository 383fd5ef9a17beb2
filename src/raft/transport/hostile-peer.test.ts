/**
 * Proves that input from the network cannot crash a member or reach its core unvalidated: raw
 * sockets send garbage, oversized and zero length prefixes, frames out of order, undecodable and
 * ill-typed batches, half frames, or nothing at all; each is dropped or closed (and counted) while
 * the member keeps serving its real peers.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, FrameKind } from './frame.ts'
import { encodeBody } from './message-codec.ts'
import {
  connectAll,
  everyMessageType,
  type Harness,
  heartbeat,
  RawPeer,
  startHarness,
  waitFor,
} from './test-support.ts'

let a: Harness
let b: Harness
let sent = 0

beforeAll(async () => {
  a = await startHarness(1)
  b = await startHarness(2, { handshakeTimeoutMs: 200 })
  connectAll([a, b])
})

afterAll(async () => {
  await Promise.all([a.transport.stop(), b.transport.stop()])
})

/** a still reaches b through its real connection. */
async function stillServing(): Promise<void> {
  sent++
  const expected = b.received.filter((m) => m.from === 1).length + 1
  a.transport.send([heartbeat(1, 2, sent)])
  await waitFor(() => b.received.filter((m) => m.from === 1).length === expected, 'a → b still delivered')
}

async function rawPeer(): Promise<RawPeer> {
  return RawPeer.connect(b.address)
}

async function handshaken(from = 5): Promise<RawPeer> {
  const raw = await rawPeer()
  raw.hello({ from, to: 2 })
  await waitFor(() => raw.frames.length === 1, 'handshake reply')
  expect(raw.frames[0]?.value).toEqual({ ok: true })
  return raw
}

function frameWithLength(length: number, rest: number[] = []): Buffer {
  const frame = Buffer.alloc(4 + rest.length)
  frame.writeUInt32BE(length, 0)
  Buffer.from(rest).copy(frame, 4)
  return frame
}

describe('before the handshake', () => {
  it.each([
    ['an oversized length prefix', frameWithLength(0xffffffff), 'TRANSPORT_FRAME_BYTES_MAX'],
    ['a length just past frameBytesMax', frameWithLength(4 * 1024 * 1024 + 1), 'TRANSPORT_FRAME_BYTES_MAX'],
    ['a zero length prefix', frameWithLength(0), 'TRANSPORT_FRAME_INVALID'],
    [
      'a batch frame instead of hello',
      encodeFrame(FrameKind.batch, encodeBody([heartbeat(5, 2)])),
      'TRANSPORT_FRAME_INVALID',
    ],
    [
      'an unknown frame kind',
      encodeFrame(99 as FrameKind, Buffer.from([1, 2, 3])),
      'TRANSPORT_FRAME_INVALID',
    ],
    [
      'a hello that is not msgpack',
      encodeFrame(FrameKind.hello, Buffer.from([0xc1, 0xc1])),
      'TRANSPORT_HANDSHAKE_INVALID',
    ],
    [
      'a hello of the wrong shape',
      encodeFrame(FrameKind.hello, encodeBody({ hi: 1 })),
      'TRANSPORT_HANDSHAKE_INVALID',
    ],
  ])('closes a connection that sends %s', async (_, bytes, code) => {
    const closedBefore = b.transport.stats().connectionsClosedProtocol
    const raw = await rawPeer()
    raw.write(bytes)
    await waitFor(() => raw.closed, 'connection closed by b')
    expect(b.transport.stats().connectionsClosedProtocol).toBe(closedBefore + 1)
    expect(b.log.records.some((r) => r.fields.code === code)).toBe(true)
    await stillServing()
  })

  it('closes a connection that never sends its handshake (handshakeTimeoutMs)', async () => {
    const raw = await rawPeer()
    await waitFor(() => raw.closed, 'idle connection reaped')
    await stillServing()
  })

  it('survives half a frame followed by a close', async () => {
    const raw = await rawPeer()
    const hello = encodeFrame(
      FrameKind.hello,
      encodeBody({ protocol: 1, clusterId: 'x', from: 5, to: 2, stream: 'messages' }),
    )
    raw.write(hello.subarray(0, hello.length - 3))
    await raw.close()
    await stillServing()
  })

  it('survives random bytes (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2000 }), async (bytes) => {
        const raw = await rawPeer()
        raw.write(bytes)
        await raw.close()
      }),
      { numRuns: 40 },
    )
    await stillServing()
    expect(b.received.every((m) => m.from === 1 || m.from === 5)).toBe(true)
  })
})

describe('after the handshake', () => {
  it('drops an undecodable batch and keeps the connection', async () => {
    const raw = await handshaken()
    const before = b.transport.stats().framesUndecodable
    raw.write(encodeFrame(FrameKind.batch, Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])))
    raw.write(encodeFrame(FrameKind.batch, encodeBody({ not: 'an array' })))
    raw.writeRecord(FrameKind.batch, [heartbeat(5, 2, 77)])
    await waitFor(
      () => b.received.some((m) => m.from === 5 && m.type === 'heartbeat' && m.commit === 77),
      'valid after bad',
    )
    expect(b.transport.stats().framesUndecodable).toBe(before + 2)
    expect(raw.closed).toBe(false)
    await raw.close()
  })

  it('drops ill-typed messages one by one, delivering the well-formed ones of the same batch', async () => {
    const raw = await handshaken()
    const before = b.transport.stats().messagesInvalid
    const good = heartbeat(5, 2, 78)
    const bad = [
      { ...good, commit: -1 },
      { ...good, commit: 1.5 },
      { ...good, commit: 2 ** 53 },
      { ...good, commit: '1' },
      { ...good, type: 'heartbeatz' },
      {
        type: 'app',
        from: 5,
        to: 2,
        term: 1,
        index: 0,
        logTerm: 0,
        commit: 0,
        entries: [{ index: 1, term: 1, type: 'normal', data: 'str' }],
      },
      // A snapshot may only arrive on a snapshot stream.
      everyMessageType(5, 2).find((m) => m.type === 'snap'),
      null,
      42,
    ]
    raw.writeRecord(FrameKind.batch, [...bad, good])
    await waitFor(() => b.received.some((m) => m.type === 'heartbeat' && m.commit === 78), 'the good one')
    expect(b.transport.stats().messagesInvalid).toBe(before + bad.length)
    await raw.close()
  })

  it('closes a message stream that sends a non-batch frame', async () => {
    const raw = await handshaken()
    raw.write(encodeFrame(FrameKind.snapshotChunk, Buffer.from([1, 2, 3])))
    await waitFor(() => raw.closed, 'closed')
    await stillServing()
  })

  it('closes a message stream whose frame is longer than frameBytesMax, without buffering it', async () => {
    const raw = await handshaken()
    raw.write(frameWithLength(64 * 1024 * 1024, [FrameKind.batch, 0x90]))
    await waitFor(() => raw.closed, 'closed')
    await stillServing()
  })

  it('a newer message stream from the same peer replaces the older one', async () => {
    const first = await handshaken(6)
    const second = await handshaken(6)
    await waitFor(() => first.closed, 'older stream closed')
    second.writeRecord(FrameKind.batch, [heartbeat(6, 2, 79)])
    await waitFor(() => b.received.some((m) => m.from === 6), 'newer stream delivers')
    await second.close()
  })
})
