/**
 * Proves the transport over real loopback sockets: every message type crosses intact, each send()
 * is one batch per peer (heartbeats and commit-only appends ride with the next send, or leave when
 * the event-loop turn ends), three members talk all-to-all, a restarted peer is redialled, handshakes
 * with the wrong cluster or member id are refused (nothing is delivered, the reason is logged and
 * counted), inbound messages must match the handshake's sender, events are never synchronous, and
 * stop() leaves no socket or timer behind.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Message } from '../core/types.ts'
import { FrameKind } from './frame.ts'
import { isRefused } from './framed-socket.ts'
import {
  connectAll,
  everyMessageType,
  type Harness,
  heartbeat,
  RawAcceptor,
  RawPeer,
  startHarness,
  waitFor,
} from './test-support.ts'

const running: Harness[] = []
const raws: RawPeer[] = []

async function start(id: number, options: Parameters<typeof startHarness>[1] = {}): Promise<Harness> {
  const harness = await startHarness(id, options)
  running.push(harness)
  return harness
}

afterEach(async () => {
  await Promise.all(raws.splice(0).map((raw) => raw.close()))
  await Promise.all(running.splice(0).map((h) => h.transport.stop()))
})

/** Byte arrays arrive as Buffers (a Uint8Array subclass): compare contents, not classes. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) }
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

describe('message exchange', () => {
  it('delivers one message of every type, intact and in order (the snapshot on its own stream)', async () => {
    const [a, b] = [await start(1), await start(2)]
    connectAll([a, b])
    const messages = everyMessageType(1, 2)
    a.transport.send(messages)
    await waitFor(() => b.received.length === messages.length, 'every message at b')
    const isSnap = (m: Message) => m.type === 'snap'
    expect(plain(b.received.filter((m) => !isSnap(m)))).toStrictEqual(
      plain(messages.filter((m) => !isSnap(m))),
    )
    expect(plain(b.received.find(isSnap))).toStrictEqual(plain(messages.find(isSnap)))
    await waitFor(() => a.snapshotStatus.length === 1, 'snapshot status')
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }])
    expect(b.transport.stats()).toMatchObject({ messagesReceived: messages.length, messagesInvalid: 0 })
  })

  it('writes each send() call as one batch per peer', async () => {
    const [a, b, c] = [await start(1), await start(2), await start(3)]
    connectAll([a, b, c])
    const toB = Array.from({ length: 100 }, (_, i) => heartbeat(1, 2, i))
    const toC = Array.from({ length: 60 }, (_, i) => heartbeat(1, 3, i))
    a.transport.send([...toB, ...toC]) // queued while dialling, flushed as one batch each
    await waitFor(() => b.received.length === 100 && c.received.length === 60, 'first batches')
    expect(a.transport.stats()).toMatchObject({ batchesSent: 2, messagesSent: 160 })
    a.transport.send(toB.slice(0, 10))
    await waitFor(() => b.received.length === 110, 'second batch')
    expect(a.transport.stats()).toMatchObject({ batchesSent: 3, messagesSent: 170 })
    expect(b.received.map((m) => (m.type === 'heartbeat' ? m.commit : -1))).toEqual([
      ...Array.from({ length: 100 }, (_, i) => i),
      ...Array.from({ length: 10 }, (_, i) => i),
    ])
  })

  it('heartbeats and appends without entries wait for the next send or the end of the turn, then ride in one batch', async () => {
    const [a, b] = [await start(1), await start(2)]
    connectAll([a, b])
    a.transport.send([heartbeat(1, 2, 1)])
    await waitFor(() => b.received.length === 1, 'a first batch')
    const sent = a.transport.stats().batchesSent
    const commitOnly: Message = {
      type: 'app',
      from: 1,
      to: 2,
      term: 1,
      index: 5,
      logTerm: 1,
      entries: [],
      commit: 5,
    }
    const withEntries: Message = {
      ...commitOnly,
      entries: [{ index: 6, term: 1, type: 'normal', data: new Uint8Array([1, 2, 3]) }],
    }
    a.transport.send([heartbeat(1, 2, 2)])
    a.transport.send([commitOnly])
    a.transport.send([withEntries]) // written at once, with the two deferred ones before it
    expect(a.transport.stats().batchesSent).toBe(sent + 1)
    a.transport.send([heartbeat(1, 2, 3)]) // alone: written when the turn ends
    expect(a.transport.stats().batchesSent).toBe(sent + 1)
    await waitFor(() => b.received.length === 5, 'every message')
    expect(a.transport.stats().batchesSent).toBe(sent + 2)
    expect(b.received.slice(1).map((m) => m.type)).toEqual(['heartbeat', 'app', 'app', 'heartbeat'])
  })

  it('three members exchange every message type all-to-all', async () => {
    const members = [await start(1), await start(2), await start(3)]
    connectAll(members)
    for (const from of members) {
      from.transport.send(members.filter((m) => m !== from).flatMap((to) => everyMessageType(from.id, to.id)))
    }
    const perPeer = everyMessageType(1, 2).length
    await waitFor(() => members.every((m) => m.received.length === 2 * perPeer), 'all-to-all delivery')
    for (const member of members) {
      expect(member.received.every((m) => m.to === member.id && m.from !== member.id)).toBe(true)
      expect(member.snapshotStatus.map((s) => s.ok)).toEqual([true, true])
    }
  })

  it('splits a batch larger than frameBytesMax into several frames', async () => {
    const [a, b] = [
      await start(1, { frameBytesMax: 64 * 1024, snapshotChunkBytes: 16 * 1024 }),
      await start(2),
    ]
    connectAll([a, b])
    const entry = (i: number) => ({
      index: i,
      term: 1,
      type: 'normal' as const,
      data: new Uint8Array(10_000),
    })
    const appends: Message[] = Array.from({ length: 20 }, (_, i) => ({
      type: 'app',
      from: 1,
      to: 2,
      term: 1,
      index: i,
      logTerm: 1,
      commit: 0,
      entries: [entry(i + 1)],
    }))
    a.transport.send(appends)
    await waitFor(() => b.received.length === 20, 'split batch delivered')
    expect(a.transport.stats().batchesSent).toBeGreaterThan(1)
    expect(b.received.map((m) => (m.type === 'app' ? m.index : -1))).toEqual(appends.map((_, i) => i))
  })

  it('drops (and reports) a single message larger than frameBytesMax', async () => {
    const [a, b] = [
      await start(1, { frameBytesMax: 64 * 1024, snapshotChunkBytes: 16 * 1024 }),
      await start(2),
    ]
    connectAll([a, b])
    const huge: Message = {
      type: 'prop',
      from: 1,
      to: 2,
      term: 0,
      entries: [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(100_000) }],
    }
    a.transport.send([huge, heartbeat(1, 2)])
    await waitFor(() => b.received.length === 1, 'the heartbeat')
    expect(b.received[0]?.type).toBe('heartbeat')
    expect(a.transport.stats().messagesDroppedOversized).toBe(1)
    await waitFor(() => a.unreachable.includes(2), 'unreachable reported')
  })
})

describe('events', () => {
  it('reports a message to an unknown peer as unreachable, never synchronously', async () => {
    const a = await start(1)
    a.transport.send([heartbeat(1, 9)])
    expect(a.unreachable).toEqual([])
    await Promise.resolve()
    expect(a.unreachable).toEqual([9])
    expect(a.transport.stats().messagesDroppedUnreachable).toBe(1)
  })

  it('reports a dead address as unreachable and keeps redialling with backoff', async () => {
    const a = await start(1)
    const dead = await start(2)
    const address = dead.address
    await dead.transport.stop()
    a.transport.setPeer(2, address)
    a.transport.send([heartbeat(1, 2)])
    await waitFor(() => a.transport.stats().connectionFailures >= 3, 'several failed dials')
    expect(a.unreachable).toContain(2)
    expect(a.transport.stats().messagesDroppedUnreachable).toBeGreaterThanOrEqual(1)
    // Nothing listens there: every failed dial was a refusal, and each was reported as peer down.
    const { connectionFailures, connectionsRefused } = a.transport.stats()
    expect(connectionsRefused).toBe(connectionFailures)
    expect(a.peersDown.length).toBeGreaterThanOrEqual(3)
    expect(new Set(a.peersDown)).toEqual(new Set([2]))
    expect(a.log.records.some((r) => r.fields.code === 'TRANSPORT_CONNECTION_REFUSED')).toBe(true)
  })

  it('reports a connected peer whose process stopped as down once its redial is refused, with nothing sent', async () => {
    const a = await start(1)
    const b = await start(2)
    connectAll([a, b])
    a.transport.send([heartbeat(1, 2)])
    await waitFor(() => b.received.length === 1, 'connected')
    expect(a.peersDown).toEqual([])
    await b.transport.stop()
    running.splice(running.indexOf(b), 1)
    await waitFor(() => a.peersDown.includes(2), 'b reported down')
    expect(a.transport.stats().connectionsRefused).toBeGreaterThanOrEqual(1)
  })
})

describe('isRefused', () => {
  const errno = (code: string) => Object.assign(new Error(code), { code })
  it.each([
    ['ECONNREFUSED', errno('ECONNREFUSED'), true],
    ['ECONNRESET', errno('ECONNRESET'), false],
    ['ETIMEDOUT', errno('ETIMEDOUT'), false],
    [
      'every address of a name refused',
      new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')]),
      true,
    ],
    [
      'one address of a name timed out',
      new AggregateError([errno('ECONNREFUSED'), errno('ETIMEDOUT')]),
      false,
    ],
    ['an empty AggregateError', new AggregateError([]), false],
    ['not an error', undefined, false],
  ])('%s', (_, error, refused) => {
    expect(isRefused(error)).toBe(refused)
  })
})

describe('dial timeout', () => {
  it('gives up on a peer that accepts the connection but never answers the handshake', async () => {
    const silent = await RawAcceptor.start(() => {})
    silent.answerHello = false
    const a = await start(1, { dialTimeoutMs: 100 })
    a.transport.setPeer(2, silent.address)
    a.transport.send([heartbeat(1, 2)])
    await waitFor(() => a.unreachable.includes(2), 'unreachable after the dial timeout')
    expect(a.log.records.some((r) => r.fields.code === 'TRANSPORT_HANDSHAKE_TIMEOUT')).toBe(true)
    expect(a.transport.stats()).toMatchObject({ connectionFailures: 1, messagesDroppedUnreachable: 1 })
    // A listener that accepts is a live (if stuck) process: never reported down.
    expect(a.transport.stats().connectionsRefused).toBe(0)
    expect(a.peersDown).toEqual([])
    await a.transport.stop()
    await silent.stop()
  })
})

describe('reconnect', () => {
  it('redials a peer that restarted on the same address and delivers again', async () => {
    const a = await start(1)
    let b = await start(2)
    connectAll([a, b])
    a.transport.send([heartbeat(1, 2, 1)])
    await waitFor(() => b.received.length === 1, 'before restart')

    await b.transport.stop()
    running.splice(running.indexOf(b), 1)
    await waitFor(() => {
      a.transport.send([heartbeat(1, 2, 2)])
      return a.unreachable.includes(2)
    }, 'a notices b is gone')

    b = await start(2, { listen: b.address })
    b.transport.setPeer(1, a.address)
    await waitFor(() => {
      a.transport.send([heartbeat(1, 2, 3)])
      return b.received.length > 0
    }, 'delivery to the restarted b')
    expect(b.received.every((m) => m.type === 'heartbeat' && m.commit === 3)).toBe(true)
    b.transport.send([heartbeat(2, 1, 4)])
    await waitFor(() => a.received.length === 1, 'b to a after restart')
  })

  it('follows a peer to a new address given by setPeer', async () => {
    const a = await start(1)
    const b1 = await start(2)
    connectAll([a, b1])
    a.transport.send([heartbeat(1, 2, 1)])
    await waitFor(() => b1.received.length === 1, 'first b')
    const b2 = await start(2)
    a.transport.setPeer(2, b2.address)
    await waitFor(() => {
      a.transport.send([heartbeat(1, 2, 2)])
      return b2.received.length > 0
    }, 'second b')
  })
})

describe('handshake', () => {
  it('refuses a dialer from another cluster: nothing delivered, reason logged and counted on both sides', async () => {
    const a = await start(1, { clusterId: 'some-other-cluster' })
    const b = await start(2)
    connectAll([a, b])
    a.transport.send([heartbeat(1, 2)])
    await waitFor(() => a.transport.stats().handshakesRefused >= 1, 'refusal seen by the dialer')
    expect(b.received).toEqual([])
    expect(b.transport.stats().handshakesRejected).toBeGreaterThanOrEqual(1)
    const reason = b.log.records.find((r) => r.message === 'refused a peer handshake')?.fields.reason
    expect(reason).toMatch(/cluster id "some-other-cluster"/)
    const refused = a.log.records.find((r) => r.message === 'peer refused the handshake')?.fields.reason
    expect(refused).toMatch(/cluster id/)
    await waitFor(() => a.unreachable.includes(2), 'unreachable')
  })

  it('refuses a dialer that believes it is talking to another member id', async () => {
    const a = await start(1)
    const b = await start(2)
    a.transport.setPeer(3, b.address) // b is member 2, not 3
    a.transport.send([heartbeat(1, 3)])
    await waitFor(() => a.transport.stats().handshakesRefused >= 1, 'refusal')
    expect(b.received).toEqual([])
    const reason = b.log.records.find((r) => r.message === 'refused a peer handshake')?.fields.reason
    expect(reason).toMatch(/member 3 was expected, this is member 2/)
  })

  it('refuses a dialer claiming the acceptor’s own id, and an unknown protocol', async () => {
    const b = await start(2)
    for (const hello of [
      { from: 2, to: 2 },
      { from: 5, to: 2, protocol: 2 },
    ]) {
      const raw = await RawPeer.connect(b.address)
      raws.push(raw)
      raw.hello(hello)
      await waitFor(() => raw.closed, 'refused connection closed')
      expect(raw.frames).toEqual([
        { kind: FrameKind.helloReply, value: { ok: false, reason: expect.any(String) } },
      ])
    }
    expect(b.transport.stats().handshakesRejected).toBe(2)
  })

  it('drops inbound messages whose from or to does not match the handshake', async () => {
    const b = await start(2)
    const raw = await RawPeer.connect(b.address)
    raws.push(raw)
    raw.hello({ from: 5, to: 2 })
    await waitFor(() => raw.frames.length === 1, 'handshake reply')
    expect(raw.frames[0]).toEqual({ kind: FrameKind.helloReply, value: { ok: true } })
    raw.writeRecord(FrameKind.batch, [heartbeat(6, 2), heartbeat(5, 3), heartbeat(5, 2, 42)])
    await waitFor(() => b.received.length === 1, 'the one well-addressed message')
    expect(b.received[0]).toMatchObject({ from: 5, commit: 42 })
    expect(b.transport.stats().messagesMisaddressed).toBe(2)
  })
})

describe('stop', () => {
  it('closes the listener and every connection and clears every timer', async () => {
    // vitest keeps a Timeout of its own that may come and go: timers may only go down.
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length
    const handles = () => ({
      sockets: count('TCPSocketWrap') + count('TCPServerWrap'),
      timers: count('Timeout'),
    })
    const before = handles()
    const members = [await startHarness(1), await startHarness(2), await startHarness(3)]
    connectAll(members)
    for (const m of members)
      m.transport.send(members.filter((o) => o !== m).flatMap((o) => everyMessageType(m.id, o.id)))
    await waitFor(() => members.every((m) => m.received.length === 28), 'traffic')
    // A peer in reconnect backoff holds a timer; stop() must clear it too.
    members[0]?.transport.setPeer(9, { host: '127.0.0.1', port: 1 })
    members[0]?.transport.send([heartbeat(1, 9)])
    expect(handles().sockets).toBeGreaterThan(before.sockets)
    await Promise.all(members.map((m) => m.transport.stop()))
    await waitFor(() => {
      const now = handles()
      return now.sockets === before.sockets && now.timers <= before.timers
    }, 'every socket and timer released')
    members[1]?.transport.send([heartbeat(2, 1)]) // after stop: ignored, no throw, no event
    await Promise.resolve()
    expect(members[1]?.unreachable).toEqual([])
  })
})
