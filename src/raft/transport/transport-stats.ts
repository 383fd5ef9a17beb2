/**
 * What etcd's /v2/stats/self and /v2/stats/leader report, and the per-peer traffic /metrics shows,
 * counted by the transport as messages cross it (stats.ts keeps the transport-wide drop, refusal and
 * failure counters).
 *
 *   - Appends (`app` messages) written to / delivered from a peer's message stream, with etcd's rate
 *     window: the last `statsRateWindowMessages` appends each way, as etcd's statsQueue (200).
 *   - Per peer: messages and frame bytes each way, messages dropped on the way out, connection
 *     failures, appends written (etcd's counts.success) and dropped (counts.fail), and the round
 *     trip of appends (etcd's latency), sampled by one probe at a time: the first append written
 *     while no probe is out starts one; the follower's `appResp` that answers it (same term; on
 *     success an index at or past the probe's last entry, on rejection the probe's index) ends it.
 *     A probe not answered within `statsLatencyProbeTimeoutMs`, or cut by a connection failure, is
 *     abandoned and the next append starts a new one.
 *
 * Cost: the hot path only adds to numbers and writes two slots of a preallocated ring per append;
 * nothing is allocated per message or per batch. A PeerCounters is created per peer set with
 * setPeer and dropped by removePeer, so the map is bounded by the membership; traffic from a peer
 * the transport does not know is counted in the totals only.
 *
 * Invariants: every counter only grows (until the transport is recreated); a RateWindow holds at
 * most `capacity` samples and `bytesTotal` is the sum of the sizes it holds; latency.count <=
 * appendsSent.
 */
import type { AppendMessage, AppendResponseMessage, NodeId } from '../core/types.ts'

/** The most recent append messages one way, as etcd's v2stats statsQueue. */
export class RateWindow {
  readonly capacity: number
  readonly #atMs: Float64Array
  readonly #bytes: Float64Array
  /** Slot of the newest sample; the oldest is `size - 1` slots before it (mod capacity). */
  #newest = -1
  #size = 0
  #bytesTotal = 0

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error(`bad rate window ${capacity}`)
    this.capacity = capacity
    this.#atMs = new Float64Array(capacity)
    this.#bytes = new Float64Array(capacity)
  }

  get size(): number {
    return this.#size
  }

  record(atMs: number, bytes: number): void {
    const slot = this.#newest + 1 === this.capacity ? 0 : this.#newest + 1
    if (this.#size === this.capacity) this.#bytesTotal -= this.#bytes[slot] as number
    else this.#size++
    this.#atMs[slot] = atMs
    this.#bytes[slot] = bytes
    this.#bytesTotal += bytes
    this.#newest = slot
  }

  /**
   * etcd's statsQueue.Rate(): messages and bytes in the window divided by the time between its
   * oldest and newest sample. 0 when the newest sample is older than `idleMs` (the window is then
   * emptied, as etcd's), and when the window spans no time (fewer than two samples, or all in the
   * same instant; etcd would divide by zero).
   */
  rate(nowMs: number, idleMs: number): { messagesPerSecond: number; bytesPerSecond: number } {
    if (this.#size === 0) return { messagesPerSecond: 0, bytesPerSecond: 0 }
    const newestMs = this.#atMs[this.#newest] as number
    if (nowMs - newestMs > idleMs) {
      this.clear()
      return { messagesPerSecond: 0, bytesPerSecond: 0 }
    }
    const oldest = (this.#newest - this.#size + 1 + this.capacity) % this.capacity
    const spanMs = newestMs - (this.#atMs[oldest] as number)
    if (spanMs <= 0) return { messagesPerSecond: 0, bytesPerSecond: 0 }
    return {
      messagesPerSecond: (this.#size * 1000) / spanMs,
      bytesPerSecond: (this.#bytesTotal * 1000) / spanMs,
    }
  }

  clear(): void {
    this.#newest = -1
    this.#size = 0
    this.#bytesTotal = 0
  }
}

/** Read-only view of a LatencyStats. */
export interface LatencyView {
  readonly current: number
  readonly count: number
  readonly minimum: number
  readonly maximum: number
  readonly average: number
  readonly standardDeviation: number
  readonly sumMs: number
}

/** etcd's LatencyStats, in milliseconds: current, mean, population standard deviation, min, max. */
export class LatencyStats implements LatencyView {
  /** The most recent sample; 0 before the first. */
  current = 0
  count = 0
  /** 0 before the first sample (etcd shows 2^63 there). */
  minimum = 0
  maximum = 0
  #sum = 0
  #sumSquares = 0

  record(ms: number): void {
    this.current = ms
    this.minimum = this.count === 0 ? ms : Math.min(this.minimum, ms)
    this.maximum = this.count === 0 ? ms : Math.max(this.maximum, ms)
    this.count++
    this.#sum += ms
    this.#sumSquares += ms * ms
  }

  get sumMs(): number {
    return this.#sum
  }

  get average(): number {
    return this.count === 0 ? 0 : this.#sum / this.count
  }

  /** sqrt(mean of squares - square of mean), as etcd; clamped at 0 against rounding. */
  get standardDeviation(): number {
    if (this.count === 0) return 0
    const mean = this.#sum / this.count
    return Math.sqrt(Math.max(0, this.#sumSquares / this.count - mean * mean))
  }
}

/** Read-only view of one peer's counters. */
export interface PeerCountersView {
  readonly peer: NodeId
  /** Messages written to the peer's message stream (snapshots excluded). */
  readonly messagesSent: number
  /** Frame bytes (header and body) written to the peer's message stream. */
  readonly bytesSent: number
  /** Messages from the peer delivered to Raft (valid, well-addressed; snapshots excluded). */
  readonly messagesReceived: number
  /** Frame bytes (header and body) of batch frames received on the peer's message stream. */
  readonly bytesReceived: number
  /** Messages to the peer dropped: backoff, full queue, connection failure, oversized. */
  readonly messagesDropped: number
  /** Outbound connection attempts that failed, timed out, were refused, or broke later. */
  readonly connectionFailures: number
  /** Of those: dials refused because nothing listened at the peer's address (its process is down). */
  readonly connectionsRefused: number
  /** Append messages written to the peer (etcd's followers[id].counts.success). */
  readonly appendsSent: number
  /** Append messages to the peer dropped (etcd's followers[id].counts.fail). */
  readonly appendsDropped: number
  /** Round trips of append probes to the peer (etcd's followers[id].latency). */
  readonly latency: LatencyView
}

export class PeerCounters implements PeerCountersView {
  readonly peer: NodeId
  messagesSent = 0
  bytesSent = 0
  messagesReceived = 0
  bytesReceived = 0
  messagesDropped = 0
  connectionFailures = 0
  connectionsRefused = 0
  appendsSent = 0
  appendsDropped = 0
  readonly latency = new LatencyStats()
  /** When the outstanding probe was written; -1: none outstanding. */
  #probeAtMs = -1
  #probeTerm = 0
  #probeIndex = 0
  #probeLastIndex = 0

  constructor(peer: NodeId) {
    this.peer = peer
  }

  /** One append written to the peer's socket; starts a latency probe if none is out. */
  appendWritten(message: AppendMessage, nowMs: number, probeTimeoutMs: number): void {
    this.appendsSent++
    if (this.#probeAtMs >= 0 && nowMs - this.#probeAtMs < probeTimeoutMs) return
    this.#probeAtMs = nowMs
    this.#probeTerm = message.term
    this.#probeIndex = message.index
    this.#probeLastIndex = message.index + message.entries.length
  }

  /** An append response from the peer; ends the probe it answers. */
  appendAnswered(message: AppendResponseMessage, nowMs: number): void {
    if (this.#probeAtMs < 0 || message.term !== this.#probeTerm) return
    const answers = message.reject
      ? message.index === this.#probeIndex
      : message.index >= this.#probeLastIndex
    if (!answers) return
    this.latency.record(Math.max(0, nowMs - this.#probeAtMs))
    this.#probeAtMs = -1
  }

  /** The connection broke: an outstanding probe will not be answered. */
  probeLost(): void {
    this.#probeAtMs = -1
  }
}

/** What the stats endpoints read; every field is a live number, read at call time. */
export interface TransportCountersView {
  /** Append messages written to any peer (etcd's sendAppendRequestCnt). */
  readonly appendsSent: number
  /** Append messages delivered to Raft from any peer (etcd's recvAppendRequestCnt). */
  readonly appendsReceived: number
  /** Rates over the last appends each way (etcd's sendPkgRate, sendBandwidthRate, recv...). */
  appendRates(): AppendRates
  /** The counters of every peer currently set (setPeer), in insertion order. */
  peers(): Iterable<PeerCountersView>
  peer(id: NodeId): PeerCountersView | undefined
}

export interface AppendRates {
  sendPkgRate: number
  sendBandwidthRate: number
  recvPkgRate: number
  recvBandwidthRate: number
}

export interface TransportCountersLimits {
  statsRateWindowMessages: number
  statsRateIdleMs: number
  statsLatencyProbeTimeoutMs: number
}

export class TransportCounters implements TransportCountersView {
  appendsSent = 0
  appendsReceived = 0
  readonly sendWindow: RateWindow
  readonly recvWindow: RateWindow
  readonly #limits: TransportCountersLimits
  readonly #now: () => number
  readonly #peers = new Map<NodeId, PeerCounters>()

  constructor(limits: TransportCountersLimits, now: () => number) {
    this.#limits = limits
    this.#now = now
    this.sendWindow = new RateWindow(limits.statsRateWindowMessages)
    this.recvWindow = new RateWindow(limits.statsRateWindowMessages)
  }

  get latencyProbeTimeoutMs(): number {
    return this.#limits.statsLatencyProbeTimeoutMs
  }

  /** The counters of a peer set with setPeer (created on first use). */
  forPeer(id: NodeId): PeerCounters {
    let counters = this.#peers.get(id)
    if (counters === undefined) {
      counters = new PeerCounters(id)
      this.#peers.set(id, counters)
    }
    return counters
  }

  forget(id: NodeId): void {
    this.#peers.delete(id)
  }

  peer(id: NodeId): PeerCounters | undefined {
    return this.#peers.get(id)
  }

  peers(): Iterable<PeerCountersView> {
    return this.#peers.values()
  }

  appendRates(): AppendRates {
    const now = this.#now()
    const idleMs = this.#limits.statsRateIdleMs
    const send = this.sendWindow.rate(now, idleMs)
    const recv = this.recvWindow.rate(now, idleMs)
    return {
      sendPkgRate: send.messagesPerSecond,
      sendBandwidthRate: send.bytesPerSecond,
      recvPkgRate: recv.messagesPerSecond,
      recvBandwidthRate: recv.bytesPerSecond,
    }
  }
}
