/**
 * Proves the snapshot stream: a multi-megabyte snapshot crosses in chunks on its own connection and
 * arrives whole (onSnapshotStatus true only after the receiver's ack); a stalled snapshot does not
 * hold up heartbeats; every failure (stream cut, stalled receiver, refusal, checksum or length
 * mismatch, size limit, busy peer, unknown peer) reports false on the sender and delivers nothing
 * on the receiver; inbound streams are limited in number.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { Message, NodeId, SnapshotMessage } from '../core/types.ts'
import { snapshotBytes } from '../core/types.ts'
import { FrameKind } from './frame.ts'
import {
  connectAll,
  type Harness,
  heartbeat,
  RawAcceptor,
  RawPeer,
  startHarness,
  waitFor,
} from './test-support.ts'

const running: Harness[] = []
const cleanups: (() => Promise<void>)[] = []

async function start(id: number, options: Parameters<typeof startHarness>[1] = {}): Promise<Harness> {
  const harness = await startHarness(id, options)
  running.push(harness)
  return harness
}

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()))
  await Promise.all(running.splice(0).map((h) => h.transport.stop()))
})

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const data = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    data[i] = x & 0xff
  }
  return data
}

function snapshotMessage(from: NodeId, to: NodeId, data: Uint8Array): SnapshotMessage {
  return {
    type: 'snap',
    from,
    to,
    term: 3,
    snapshot: { meta: { index: 500, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, data },
  }
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest()

describe('streaming', () => {
  it('streams a 12 MiB snapshot in 1 MiB chunks; it arrives intact and the sender hears ok', async () => {
    const [a, b] = [await start(1), await start(2)]
    connectAll([a, b])
    const data = pseudoRandomBytes(12 * 1024 * 1024 + 123, 7)
    a.transport.send([snapshotMessage(1, 2, data)])
    await waitFor(() => a.snapshotStatus.length === 1, 'snapshot status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }])
    expect(b.received).toHaveLength(1)
    const got = b.received[0] as Message
    expect(got.type).toBe('snap')
    if (got.type !== 'snap') return
    expect(got.snapshot.meta).toEqual({ index: 500, term: 3, confState: { voters: [1, 2, 3], learners: [] } })
    expect(got.snapshot.data.byteLength).toBe(data.length)
    expect(Buffer.from(snapshotBytes(got.snapshot.data)).equals(Buffer.from(data))).toBe(true)
    expect(a.transport.stats()).toMatchObject({ snapshotsSent: 1, snapshotsSendFailed: 0, messagesSent: 0 })
    expect(b.transport.stats()).toMatchObject({ snapshotsReceived: 1, snapshotsReceiveFailed: 0 })
  })

  it('streams stored snapshot data chunk by chunk; a read that fails fails the send', async () => {
    const [a, b] = [await start(1), await start(2)]
    connectAll([a, b])
    const data = pseudoRandomBytes(3 * 1024 * 1024 + 5, 11)
    const reads: number[] = []
    let broken = false
    const stored = {
      byteLength: data.length,
      read(offset: number, length: number): Uint8Array {
        if (broken && offset > 0) throw new Error('snapshot file gone')
        reads.push(offset)
        return data.slice(offset, offset + length)
      },
    }
    const message = (): SnapshotMessage => ({
      ...snapshotMessage(1, 2, data),
      snapshot: { ...snapshotMessage(1, 2, data).snapshot, data: stored },
    })
    a.transport.send([message()])
    await waitFor(() => a.snapshotStatus.length === 1, 'snapshot status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }])
    expect(reads).toEqual([0, 1, 2, 3].map((i) => i * 1024 * 1024))
    const got = b.received[0] as Message
    expect(
      got.type === 'snap' && Buffer.from(snapshotBytes(got.snapshot.data)).equals(Buffer.from(data)),
    ).toBe(true)
    broken = true
    a.transport.send([message()])
    await waitFor(() => a.snapshotStatus.length === 2, 'second snapshot status')
    expect(a.snapshotStatus[1]).toEqual({ peer: 2, ok: false })
    expect(b.received).toHaveLength(1)
  })

  it('sends chunks of snapshotChunkBytes: header, 13 chunks, end', async () => {
    const chunks: number[] = []
    const acceptor = await RawAcceptor.start((connection, kind, body) => {
      if (kind === FrameKind.snapshotChunk) chunks.push(body.length)
      if (kind === FrameKind.snapshotEnd) connection.socket.end()
    })
    cleanups.push(() => acceptor.stop())
    const a = await start(1, { snapshotChunkBytes: 64 * 1024 })
    a.transport.setPeer(2, acceptor.address)
    a.transport.send([snapshotMessage(1, 2, pseudoRandomBytes(12 * 64 * 1024 + 5, 3))])
    await waitFor(() => a.snapshotStatus.length === 1, 'status')
    expect(acceptor.connections[0]?.kinds).toEqual([
      FrameKind.hello,
      FrameKind.snapshotHeader,
      ...chunks.map(() => FrameKind.snapshotChunk),
      FrameKind.snapshotEnd,
    ])
    expect(chunks).toEqual([...Array.from({ length: 12 }, () => 64 * 1024), 5])
    expect(acceptor.connections[0]?.hello?.stream).toBe('snapshot')
    // The acceptor closed without an ack: not a success.
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }])
  })

  it('an empty snapshot streams as header and end', async () => {
    const [a, b] = [await start(1), await start(2)]
    connectAll([a, b])
    a.transport.send([snapshotMessage(1, 2, new Uint8Array(0))])
    await waitFor(() => a.snapshotStatus.length === 1, 'status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }])
    expect(b.received[0]?.type).toBe('snap')
  })

  it('a stalled snapshot stream does not hold up heartbeats, then fails after snapshotIdleTimeoutMs', async () => {
    const heartbeats: number[] = []
    const acceptor = await RawAcceptor.start((connection, kind) => {
      if (kind === FrameKind.snapshotHeader) connection.socket.pause() // never read the chunks
      if (kind === FrameKind.batch) heartbeats.push(kind)
    })
    cleanups.push(() => acceptor.stop())
    const a = await start(1, { snapshotIdleTimeoutMs: 300 })
    a.transport.setPeer(2, acceptor.address)
    a.transport.send([snapshotMessage(1, 2, new Uint8Array(32 * 1024 * 1024))])
    await waitFor(
      () => acceptor.connections.some((c) => c.hello?.stream === 'snapshot' && c.socket.isPaused()),
      'stall',
    )
    for (let i = 0; i < 5; i++) {
      a.transport.send([heartbeat(1, 2, i)])
      await waitFor(() => heartbeats.length === i + 1, `heartbeat ${i} while the snapshot is stalled`)
    }
    expect(a.snapshotStatus).toEqual([])
    await waitFor(() => a.snapshotStatus.length === 1, 'idle timeout')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }])
    expect(a.log.records.some((r) => r.fields.code === 'TRANSPORT_SNAPSHOT_TIMEOUT')).toBe(true)
  })
})

describe('sender failures report false', () => {
  it('the receiver cuts the stream after the first chunk', async () => {
    const acceptor = await RawAcceptor.start((connection, kind) => {
      if (kind === FrameKind.snapshotChunk) connection.socket.destroy()
    })
    cleanups.push(() => acceptor.stop())
    const a = await start(1, { snapshotChunkBytes: 256 * 1024 })
    a.transport.setPeer(2, acceptor.address)
    a.transport.send([snapshotMessage(1, 2, pseudoRandomBytes(8 * 1024 * 1024, 9))])
    await waitFor(() => a.snapshotStatus.length === 1, 'status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }])
    expect(a.transport.stats().snapshotsSendFailed).toBe(1)
  })

  it('the real receiver stops mid-stream', async () => {
    const [a, b] = [await start(1, { snapshotChunkBytes: 64 * 1024 }), await start(2)]
    connectAll([a, b])
    a.transport.send([snapshotMessage(1, 2, pseudoRandomBytes(64 * 1024 * 1024, 11))])
    await waitFor(() => a.transport.peerStatus(2)?.snapshotStreaming === true, 'streaming')
    await b.transport.stop()
    await waitFor(() => a.snapshotStatus.length === 1, 'status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }])
    expect(b.received).toEqual([])
  })

  it('the peer is unknown, already receiving a snapshot from us, or the snapshot is over snapshotBytesMax', async () => {
    const acceptor = await RawAcceptor.start(() => {}) // accepts, never acks
    cleanups.push(() => acceptor.stop())
    const a = await start(1, { snapshotBytesMax: 1024 * 1024 })
    a.transport.setPeer(2, acceptor.address)
    a.transport.send([snapshotMessage(1, 9, new Uint8Array(10))])
    await waitFor(() => a.snapshotStatus.length === 1, 'unknown peer')
    expect(a.snapshotStatus[0]).toEqual({ peer: 9, ok: false })

    a.transport.send([snapshotMessage(1, 2, new Uint8Array(10))])
    a.transport.send([snapshotMessage(1, 2, new Uint8Array(10))])
    await waitFor(() => a.snapshotStatus.length === 2, 'busy')
    expect(a.snapshotStatus[1]).toEqual({ peer: 2, ok: false })
    expect(a.log.records.some((r) => String(r.fields.reason).includes('already streaming'))).toBe(true)

    a.transport.removePeer(2) // cancels the first one: reported as failed
    await waitFor(() => a.snapshotStatus.length === 3, 'cancelled by removePeer')
    a.transport.setPeer(2, acceptor.address)
    a.transport.send([snapshotMessage(1, 2, new Uint8Array(1024 * 1024 + 1))])
    await waitFor(() => a.snapshotStatus.length === 4, 'too large')
    expect(a.snapshotStatus.map((s) => s.ok)).toEqual([false, false, false, false])
  })

  it('the receiver refuses the handshake (wrong cluster)', async () => {
    const a = await start(1, { clusterId: 'elsewhere' })
    const b = await start(2)
    connectAll([a, b])
    a.transport.send([snapshotMessage(1, 2, new Uint8Array(100))])
    await waitFor(() => a.snapshotStatus.length === 1, 'status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }])
    expect(b.received).toEqual([])
  })
})

describe('receiver checks', () => {
  async function snapshotStream(b: Harness, from = 5): Promise<RawPeer> {
    const raw = await RawPeer.connect(b.address)
    cleanups.push(() => raw.close())
    raw.hello({ from, to: 2, stream: 'snapshot' })
    await waitFor(() => raw.frames.length === 1, 'hello reply')
    return raw
  }

  function header(dataBytes: number, from = 5) {
    return {
      from,
      to: 2,
      term: 3,
      meta: { index: 9, term: 3, confState: { voters: [2, 5], learners: [] } },
      dataBytes,
    }
  }

  const lastAck = (raw: RawPeer) => raw.frames.at(-1)

  it('delivers a well-formed stream from a raw sender and acks it', async () => {
    const b = await start(2)
    const raw = await snapshotStream(b)
    const data = pseudoRandomBytes(3000, 1)
    raw.writeRecord(FrameKind.snapshotHeader, header(3000))
    raw.write(rawChunk(data.subarray(0, 1000)))
    raw.write(rawChunk(data.subarray(1000)))
    raw.writeRecord(FrameKind.snapshotEnd, { dataBytes: 3000, checksum: sha256(data) })
    await waitFor(() => raw.frames.length === 2, 'ack')
    expect(lastAck(raw)).toEqual({ kind: FrameKind.snapshotAck, value: { ok: true } })
    const got = b.received.at(-1)
    expect(
      got?.type === 'snap' && Buffer.from(snapshotBytes(got.snapshot.data)).equals(Buffer.from(data)),
    ).toBe(true)
  })

  it.each([
    ['a wrong checksum', 100, [100], { dataBytes: 100, checksum: Buffer.alloc(32) }, /SHA-256 mismatch/],
    ['a short stream', 100, [60], { dataBytes: 100, checksum: Buffer.alloc(32) }, /received 60 bytes/],
    [
      'an end that disagrees with the header',
      100,
      [100],
      { dataBytes: 99, checksum: Buffer.alloc(32) },
      /end said 99/,
    ],
    ['data beyond the declared length', 100, [60, 60], undefined, /beyond the declared/],
    ['a malformed end', 10, [10], { dataBytes: 10, checksum: Buffer.alloc(3) }, /malformed end/],
  ])('refuses %s and delivers nothing', async (_, declared, chunks, end, reason) => {
    const b = await start(2)
    const raw = await snapshotStream(b)
    raw.writeRecord(FrameKind.snapshotHeader, header(declared))
    for (const n of chunks) raw.write(rawChunk(new Uint8Array(n)))
    if (end !== undefined) raw.writeRecord(FrameKind.snapshotEnd, end)
    await waitFor(() => raw.frames.length === 2, 'refusal ack')
    expect(lastAck(raw)).toEqual({
      kind: FrameKind.snapshotAck,
      value: { ok: false, reason: expect.stringMatching(reason) },
    })
    await waitFor(() => raw.closed, 'closed after the refusal')
    expect(b.received).toEqual([])
    expect(b.transport.stats().snapshotsReceiveFailed).toBe(1)
  })

  it('refuses a header over snapshotBytesMax before any data, and a misaddressed header', async () => {
    const b = await start(2, { snapshotBytesMax: 1000 })
    const big = await snapshotStream(b)
    big.writeRecord(FrameKind.snapshotHeader, header(1001))
    await waitFor(() => big.frames.length === 2, 'refusal')
    expect(lastAck(big)?.value).toEqual({ ok: false, reason: expect.stringMatching(/snapshotBytesMax/) })
    const wrong = await snapshotStream(b, 5)
    wrong.writeRecord(FrameKind.snapshotHeader, header(10, 6))
    await waitFor(() => wrong.frames.length === 2, 'refusal')
    expect(lastAck(wrong)?.value).toEqual({ ok: false, reason: expect.stringMatching(/misaddressed/) })
  })

  it('limits concurrent inbound streams (inboundSnapshotStreamsMax) and frees the slot on close', async () => {
    const b = await start(2, { inboundSnapshotStreamsMax: 1 })
    const first = await snapshotStream(b, 5)
    expect(first.frames[0]?.value).toEqual({ ok: true })
    const second = await snapshotStream(b, 6)
    expect(second.frames[0]?.value).toEqual({ ok: false, reason: expect.stringMatching(/busy/) })
    first.writeRecord(FrameKind.snapshotHeader, header(100))
    first.write(rawChunk(new Uint8Array(50)))
    await first.close() // cut mid-stream
    await waitFor(() => b.transport.stats().snapshotsReceiveFailed === 1, 'cut counted')
    const third = await snapshotStream(b, 7)
    expect(third.frames[0]?.value).toEqual({ ok: true })
    expect(b.received).toEqual([])
  })

  it('closes a snapshot stream that goes quiet (snapshotIdleTimeoutMs)', async () => {
    const b = await start(2, { snapshotIdleTimeoutMs: 100 })
    const raw = await snapshotStream(b)
    raw.writeRecord(FrameKind.snapshotHeader, header(100))
    await waitFor(() => raw.closed, 'reaped')
    expect(lastAck(raw)?.value).toEqual({ ok: false, reason: expect.stringMatching(/no progress/) })
  })
})

function rawChunk(bytes: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + bytes.length)
  frame.writeUInt32BE(bytes.length + 1, 0)
  frame[4] = FrameKind.snapshotChunk
  frame.set(bytes, 5)
  return frame
}
