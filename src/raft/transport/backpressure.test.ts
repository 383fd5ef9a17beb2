/**
 * Proves that a peer that stops reading cannot make a member's memory grow without bound: once the
 * socket holds peerWriteBufferBytesHigh unsent bytes the peer is slow, at most peerQueueMessagesMax
 * messages queue for it, the rest are dropped, counted and reported unreachable; a healthy peer is
 * not affected; and when the slow peer reads again the queue drains.
 */
import { afterEach, expect, it } from 'vitest'
import type { Message } from '../core/types.ts'
import { FrameKind } from './frame.ts'
import { connectAll, type Harness, RawAcceptor, startHarness, waitFor } from './test-support.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()))
})

const entryData = new Uint8Array(64 * 1024).fill(1)

function append(to: number, index: number): Message {
  return {
    type: 'app',
    from: 1,
    to,
    term: 1,
    index,
    logTerm: 1,
    commit: 0,
    entries: [{ index: index + 1, term: 1, type: 'normal', data: entryData }],
  }
}

it('bounds the queue and the socket buffer of a peer that never reads, and drains when it reads again', async () => {
  let batchesAtSlowPeer = 0
  const slow = await RawAcceptor.start((connection, kind) => {
    if (kind === FrameKind.batch) batchesAtSlowPeer++
    connection.socket.pause()
  })
  cleanups.push(() => slow.stop())
  const limits = { peerWriteBufferBytesHigh: 1024 * 1024, peerQueueMessagesMax: 50 }
  const a: Harness = await startHarness(1, limits)
  const healthy = await startHarness(3)
  cleanups.push(
    () => a.transport.stop(),
    () => healthy.transport.stop(),
  )
  a.transport.setPeer(2, slow.address)
  connectAll([a, healthy])

  const arrayBuffersBefore = process.memoryUsage().arrayBuffers
  let maxQueued = 0
  let maxBuffered = 0
  let index = 0
  // 4000 appends of 64 KiB: 250 MiB offered to a peer that reads nothing.
  for (let round = 0; round < 400; round++) {
    const batch: Message[] = []
    for (let i = 0; i < 10; i++) batch.push(append(2, index++))
    batch.push({ type: 'heartbeat', from: 1, to: 3, term: 1, commit: round, readRound: 0 })
    a.transport.send(batch)
    const status = a.transport.peerStatus(2)
    maxQueued = Math.max(maxQueued, status?.queuedMessages ?? 0)
    maxBuffered = Math.max(maxBuffered, status?.writeBufferBytes ?? 0)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  const stats = a.transport.stats()
  expect(maxQueued).toBeLessThanOrEqual(limits.peerQueueMessagesMax)
  // Over the mark by at most one batch (10 appends) plus the queue flushed on a drain.
  const batchBytes = 11 * (entryData.length + 100)
  expect(maxBuffered).toBeLessThanOrEqual(
    limits.peerWriteBufferBytesHigh + batchBytes + 50 * (entryData.length + 100),
  )
  expect(stats.messagesDroppedQueueFull).toBeGreaterThan(2000)
  expect(a.unreachable).toContain(2)
  expect(process.memoryUsage().arrayBuffers - arrayBuffersBefore).toBeLessThan(64 * 1024 * 1024)

  // The healthy peer got every heartbeat, in order, while the slow one was stuck.
  await waitFor(() => healthy.received.length === 400, 'heartbeats at the healthy peer')
  expect(healthy.received.map((m) => (m.type === 'heartbeat' ? m.commit : -1))).toEqual(
    Array.from({ length: 400 }, (_, i) => i),
  )

  // The slow peer reads again: the queue drains through the same connection.
  const connection = slow.connections.find((c) => c.hello?.stream === 'messages')
  expect(connection).toBeDefined()
  const before = batchesAtSlowPeer
  slow.connections.forEach((c) => {
    c.socket.removeAllListeners('data')
    c.socket.on('data', () => {})
    c.socket.resume()
  })
  await waitFor(() => {
    const status = a.transport.peerStatus(2)
    return status?.queuedMessages === 0 && status.writeBufferBytes === 0
  }, 'queue and socket buffer drained')
  expect(a.transport.peerStatus(2)?.state).toBe('open')
  expect(before).toBeGreaterThan(0)
})
