/**
 * Proves the counters behind /v2/stats/self, /v2/stats/leader and /metrics:
 *   - RateWindow computes etcd's statsQueue rate (messages and bytes over the span between the
 *     oldest and newest of the last N appends), forgets the oldest past N, and reads 0 once idle;
 *   - LatencyStats agrees with a naive mean / population standard deviation / min / max;
 *   - a latency probe is ended only by the append response that answers it (term, index), is
 *     abandoned after the probe timeout or a lost connection;
 *   - over real loopback sockets (clock injected, so round trips are exact numbers): appends are
 *     counted on both sides with frame bytes per peer, an answer gives one latency sample, appends
 *     to a dead peer count as fail, and a removed peer's counters are gone.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { AppendMessage, AppendResponseMessage, Message } from '../core/types.ts'
import { type Harness, heartbeat, startHarness, waitFor } from './test-support.ts'
import { LatencyStats, PeerCounters, RateWindow } from './transport-stats.ts'

function append(from: number, to: number, index: number, entries: number, term = 2): AppendMessage {
  return {
    type: 'app',
    from,
    to,
    term,
    index,
    logTerm: term,
    commit: index,
    entries: Array.from({ length: entries }, (_, i) => ({
      index: index + i + 1,
      term,
      type: 'normal' as const,
      data: new Uint8Array(100),
    })),
  }
}

function answer(from: number, to: number, index: number, reject = false, term = 2): AppendResponseMessage {
  return { type: 'appResp', from, to, term, index, reject, rejectHint: 0, logTerm: 0 }
}

describe('RateWindow (etcd statsQueue)', () => {
  it('is 0 when empty, with one sample, or when every sample is at the same instant', () => {
    const w = new RateWindow(4)
    expect(w.rate(0, 1000)).toEqual({ messagesPerSecond: 0, bytesPerSecond: 0 })
    w.record(10, 100)
    expect(w.rate(10, 1000)).toEqual({ messagesPerSecond: 0, bytesPerSecond: 0 })
    w.record(10, 100)
    expect(w.rate(10, 1000)).toEqual({ messagesPerSecond: 0, bytesPerSecond: 0 })
  })

  it('divides count and bytes by the span from oldest to newest, as etcd', () => {
    const w = new RateWindow(10)
    for (let i = 0; i < 5; i++) w.record(100 * i, 1000) // span 400 ms
    expect(w.rate(400, 1000)).toEqual({ messagesPerSecond: 5 / 0.4, bytesPerSecond: 5000 / 0.4 })
  })

  it('keeps only the last `capacity` samples (bytes of the evicted ones leave the sum)', () => {
    const w = new RateWindow(3)
    w.record(0, 1_000_000) // evicted below
    w.record(100, 10)
    w.record(200, 20)
    w.record(300, 30)
    expect(w.size).toBe(3)
    expect(w.rate(300, 1000)).toEqual({ messagesPerSecond: 3 / 0.2, bytesPerSecond: 60 / 0.2 })
  })

  it('reads 0 and empties itself once the newest sample is older than idleMs', () => {
    const w = new RateWindow(3)
    w.record(0, 10)
    w.record(100, 10)
    expect(w.rate(1100, 1000).messagesPerSecond).toBeGreaterThan(0)
    expect(w.rate(1101, 1000)).toEqual({ messagesPerSecond: 0, bytesPerSecond: 0 })
    expect(w.size).toBe(0)
  })
})

describe('LatencyStats', () => {
  it('agrees with a naive computation', () => {
    const samples = [3.5, 1, 8, 2.25, 2.25, 40, 0.5]
    const l = new LatencyStats()
    for (const s of samples) l.record(s)
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length
    const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / samples.length
    expect(l.count).toBe(samples.length)
    expect(l.current).toBe(0.5)
    expect(l.minimum).toBe(0.5)
    expect(l.maximum).toBe(40)
    expect(l.average).toBeCloseTo(mean, 12)
    expect(l.standardDeviation).toBeCloseTo(Math.sqrt(variance), 12)
  })

  it('is all 0 before the first sample', () => {
    const l = new LatencyStats()
    expect([l.current, l.average, l.standardDeviation, l.minimum, l.maximum]).toEqual([0, 0, 0, 0, 0])
  })
})

describe('append latency probe', () => {
  const timeoutMs = 1000

  it('is ended by the response that acknowledges its last entry, not by an older one', () => {
    const p = new PeerCounters(2)
    p.appendWritten(append(1, 2, 10, 3), 100, timeoutMs) // probe: entries 11..13
    p.appendWritten(append(1, 2, 13, 1), 105, timeoutMs) // pipelined, no second probe
    p.appendAnswered(answer(2, 1, 12), 110) // answers something older
    expect(p.latency.count).toBe(0)
    p.appendAnswered(answer(2, 1, 13), 117)
    expect(p.latency.count).toBe(1)
    expect(p.latency.current).toBe(17)
    p.appendAnswered(answer(2, 1, 14), 130) // no probe out
    expect(p.latency.count).toBe(1)
    expect(p.appendsSent).toBe(2)
  })

  it('is ended by a rejection of the probe itself, not by a response from another term', () => {
    const p = new PeerCounters(2)
    p.appendWritten(append(1, 2, 10, 1), 0, timeoutMs)
    p.appendAnswered(answer(2, 1, 11, false, 3), 5)
    p.appendAnswered(answer(2, 1, 9, true), 6)
    expect(p.latency.count).toBe(0)
    p.appendAnswered(answer(2, 1, 10, true), 8)
    expect(p.latency.current).toBe(8)
  })

  it('is abandoned after the timeout and after a lost connection', () => {
    const p = new PeerCounters(2)
    p.appendWritten(append(1, 2, 10, 1), 0, timeoutMs)
    p.appendWritten(append(1, 2, 20, 1), timeoutMs, timeoutMs) // replaces the stale probe
    p.appendAnswered(answer(2, 1, 11), timeoutMs + 1)
    expect(p.latency.count).toBe(0)
    p.appendAnswered(answer(2, 1, 21), timeoutMs + 4)
    expect(p.latency.current).toBe(4)
    p.appendWritten(append(1, 2, 30, 1), 2000, timeoutMs)
    p.probeLost()
    p.appendAnswered(answer(2, 1, 31), 2001)
    expect(p.latency.count).toBe(1)
  })
})

describe('over loopback', () => {
  const running: Harness[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((h) => h.transport.stop()))
  })

  it('counts appends both ways, frame bytes per peer, and one round trip per answered probe', async () => {
    let clock = 1000
    const now = () => clock
    const a = await startHarness(1, { now })
    const b = await startHarness(2, { now })
    running.push(a, b)
    a.transport.setPeer(2, b.address)
    b.transport.setPeer(1, a.address)
    const sent: Message[] = [append(1, 2, 0, 2), heartbeat(1, 2), append(1, 2, 2, 1)]
    a.transport.send(sent)
    await waitFor(() => b.received.length === 3, 'the batch at b')
    const toB = a.transport.counters.peer(2)
    expect(a.transport.counters.appendsSent).toBe(2)
    expect(toB?.appendsSent).toBe(2)
    expect(toB?.messagesSent).toBe(3)
    expect(toB?.bytesSent).toBeGreaterThan(200) // two 100-byte entries plus one, in one frame
    expect(b.transport.counters.appendsReceived).toBe(2)
    const fromA = b.transport.counters.peer(1)
    expect(fromA?.messagesReceived).toBe(3)
    expect(fromA?.bytesReceived).toBe(toB?.bytesSent)

    clock += 12.5
    b.transport.send([answer(2, 1, 2)]) // acknowledges the probe's last entry (index 2)
    await waitFor(() => a.received.length === 1, 'the answer at a')
    expect(toB?.latency).toMatchObject({ count: 1, current: 12.5, minimum: 12.5, maximum: 12.5 })
    expect(a.transport.counters.appendRates().sendPkgRate).toBe(0) // both appends at one instant
  })

  it('counts appends to a peer that cannot be reached as fail, and forgets a removed peer', async () => {
    const a = await startHarness(1)
    const dead = await startHarness(2)
    running.push(a)
    const address = dead.address
    await dead.transport.stop()
    a.transport.setPeer(2, address)
    a.transport.send([append(1, 2, 0, 1)]) // queued while dialling, dropped when the dial fails
    await waitFor(() => (a.transport.counters.peer(2)?.connectionFailures ?? 0) >= 1, 'a failed dial')
    a.transport.send([append(1, 2, 1, 1), heartbeat(1, 2)]) // dropped in backoff (or queued again)
    await waitFor(() => (a.transport.counters.peer(2)?.appendsDropped ?? 0) >= 2, 'both appends failed')
    const toDead = a.transport.counters.peer(2)
    expect(toDead).toMatchObject({ appendsSent: 0, messagesSent: 0, bytesSent: 0 })
    // Nothing listens at a stopped transport's address: each failed dial was a refusal.
    expect(toDead?.connectionsRefused).toBeGreaterThanOrEqual(1)
    expect(toDead?.connectionsRefused).toBe(toDead?.connectionFailures)
    expect(toDead?.messagesDropped).toBeGreaterThanOrEqual(3)
    a.transport.removePeer(2)
    expect(a.transport.counters.peer(2)).toBeUndefined()
    expect([...a.transport.counters.peers()]).toEqual([])
  })
})
