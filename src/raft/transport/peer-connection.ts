/**
 * The outbound message stream to one peer: one persistent connection, opened on the first send,
 * redialled with backoff after every failure, until close().
 *
 *   idle ──send──► connecting ──handshake ok──► open ──error/close──► backoff ──timer──► connecting
 *                      └────────── error / refusal / timeout ──────────►┘
 *
 * Invariants:
 *   - A send() while open writes its messages at once (behind any queued ones, and with any
 *     deferred ones) as one batch: one frame, or several when the batch exceeds frameBytesMax;
 *     except a send of only deferrable messages (heartbeats, and appends without entries, which
 *     carry a commit index), which waits for the end of the event-loop turn (setImmediate) or for
 *     the next send, whichever comes first. A leader's Ready loop often sends a commit-only append
 *     and then, in the same turn, the next entries to a follower; on loopback each write is a
 *     syscall of tens of µs, so riding along saves one. Deferred messages whose connection fails
 *     before they are written are handled as if sent then. The v2 watch route relies on the
 *     deferral being a setImmediate: its fan-out runs in a later setImmediate of the same turn,
 *     so followers hear of a commit before the leader writes to its own watchers (watch-route.ts).
 *   - The queue only holds messages while connecting or while the socket holds more than
 *     peerWriteBufferBytesHigh unsent bytes; it never exceeds peerQueueMessagesMax messages nor
 *     peerQueueBytesMax estimated bytes. Messages past either limit are dropped and reported through
 *     unreachable(). So the memory held for one peer is bounded by the high-water mark plus one
 *     batch in the socket, plus the queue.
 *   - In backoff, messages are dropped at once (the peer is down; Raft retransmits) and reported.
 *   - A failure drops the queue, reports unreachable once (and peerDown once if the dial was
 *     refused), and schedules exactly one redial.
 *   - After close() nothing is written, no timer is pending, and no event is reported.
 */
import type { Message, NodeId } from '../core/types.ts'
import { reconnectDelayMs } from './backoff.ts'
import { type Dialing, dial } from './dial.ts'
import { FrameKind, frameHeaderBytes } from './frame.ts'
import type { FramedSocket } from './framed-socket.ts'
import { protocolVersion } from './handshake.ts'
import { encodeBatches, encodeBody, messageBytesEstimate } from './message-codec.ts'
import type { ResolvedOptions } from './options.ts'
import type { TransportStats } from './stats.ts'
import { TransportError } from './transport-error.ts'
import type { PeerCounters, TransportCounters } from './transport-stats.ts'

export interface PeerContext {
  readonly options: ResolvedOptions
  readonly stats: TransportStats
  readonly counters: TransportCounters
  /** Reports (deferred, coalesced by the transport) that messages to `peer` were lost. */
  unreachable(peer: NodeId): void
  /** Reports (deferred by the transport) that a dial to `peer` was refused. */
  peerDown(peer: NodeId): void
}

type State = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed'

export class PeerConnection {
  readonly peer: NodeId
  readonly #ctx: PeerContext
  readonly #counters: PeerCounters
  #address: { host: string; port: number }
  #state: State = 'idle'
  #dialing: Dialing | undefined
  #link: FramedSocket | undefined
  #timer: NodeJS.Timeout | undefined
  /** Consecutive failed attempts since the last successful handshake. */
  #failures = 0
  #queue: Message[] = []
  /** Deferrable messages sent while open, written with the next send or when the turn ends. */
  #turn: Message[] = []
  #turnFlush: NodeJS.Immediate | undefined
  #queueBytes = 0

  constructor(ctx: PeerContext, peer: NodeId, address: { host: string; port: number }) {
    this.#ctx = ctx
    this.peer = peer
    this.#address = address
    this.#counters = ctx.counters.forPeer(peer)
  }

  get state(): State {
    return this.#state
  }

  get queuedMessages(): number {
    return this.#queue.length
  }

  /** Unsent bytes in the socket's buffer (0 when not connected). */
  get writeBufferBytes(): number {
    return this.#link?.socket.writableLength ?? 0
  }

  send(messages: readonly Message[]): void {
    if (this.#state === 'open' && messages.every(isDeferrable)) {
      for (const message of messages) this.#turn.push(message)
      this.#turnFlush ??= setImmediate(() => this.#flushTurn())
      return
    }
    if (this.#turn.length > 0) {
      const deferred = this.#turn
      this.#turn = []
      this.#sendNow(deferred.concat(messages))
      return
    }
    this.#sendNow(messages)
  }

  /** Writes what this turn's send() calls gave (see the header). */
  #flushTurn(): void {
    this.#turnFlush = undefined
    const messages = this.#turn
    this.#turn = []
    if (messages.length > 0) this.#sendNow(messages)
  }

  #sendNow(messages: readonly Message[]): void {
    switch (this.#state) {
      case 'closed':
        return
      case 'backoff':
        this.#ctx.stats.messagesDroppedUnreachable += messages.length
        for (const message of messages) this.#countDropped(message)
        this.#ctx.unreachable(this.peer)
        return
      case 'idle':
        this.#enqueue(messages)
        this.#dial()
        return
      case 'connecting':
        this.#enqueue(messages)
        return
      case 'open':
        if (this.writeBufferBytes >= this.#ctx.options.peerWriteBufferBytesHigh) {
          this.#enqueue(messages)
          return
        }
        this.#write(this.#queue.length === 0 ? messages : this.#takeQueue().concat(messages))
    }
  }

  /** A new address closes the current connection (if any) and dials the new one. */
  setAddress(address: { host: string; port: number }): void {
    if (address.host === this.#address.host && address.port === this.#address.port) return
    this.#address = address
    if (this.#state === 'closed' || this.#state === 'idle') return
    void this.#teardown()
    this.#failures = 0
    this.#dial()
  }

  /** Stops for good: no writes, no timers, no events. Resolves once the socket is closed. */
  close(): Promise<void> {
    this.#state = 'closed'
    if (this.#turnFlush !== undefined) clearImmediate(this.#turnFlush)
    this.#turnFlush = undefined
    for (const message of this.#turn) this.#queue.push(message) // never written: counted as dropped
    this.#turn = []
    this.#dropQueue()
    return this.#teardown()
  }

  #teardown(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const closing = [this.#dialing?.cancel(), this.#link?.destroy()]
    this.#dialing = undefined
    this.#link = undefined
    return Promise.all(closing).then(() => undefined)
  }

  #dial(): void {
    this.#state = 'connecting'
    const { options } = this.#ctx
    const hello = {
      protocol: protocolVersion,
      clusterId: options.clusterId,
      from: options.memberId,
      to: this.peer,
      stream: 'messages' as const,
    }
    const dialing = dial(this.#address, hello, options, (result) => {
      if (this.#dialing !== dialing) return
      this.#dialing = undefined
      if (result.ok) this.#opened(result.link)
      else this.#failed(result.error)
    })
    this.#dialing = dialing
  }

  #opened(link: FramedSocket): void {
    if (this.#failures > 0) {
      this.#ctx.options.log.info({ peer: this.peer, address: this.#address }, 'peer reachable again')
    }
    this.#state = 'open'
    this.#failures = 0
    this.#link = link
    link.setHandler({
      frame: (kind) => {
        link.fail(
          new TransportError('TRANSPORT_FRAME_INVALID', `unexpected frame kind ${kind} on a message stream`),
        )
      },
      closed: (error) => {
        if (this.#link === link) this.#failed(error)
      },
    })
    link.socket.on('drain', () => {
      if (this.#link === link && this.#queue.length > 0) this.#write(this.#takeQueue())
    })
    if (this.#queue.length > 0) this.#write(this.#takeQueue())
  }

  #failed(error: TransportError): void {
    const { stats, options } = this.#ctx
    this.#link = undefined
    stats.connectionFailures++
    this.#counters.connectionFailures++
    this.#counters.probeLost()
    const fields = { peer: this.peer, address: this.#address, code: error.code, reason: error.message }
    if (error.code === 'TRANSPORT_HANDSHAKE_REFUSED') {
      stats.handshakesRefused++
      options.log.warn(fields, 'peer refused the handshake')
    } else if (this.#failures === 0) {
      options.log.info(fields, 'peer connection failed; reconnecting with backoff')
    } else {
      options.log.debug(fields, 'peer connection attempt failed')
    }
    this.#dropQueue()
    this.#ctx.unreachable(this.peer)
    if (error.code === 'TRANSPORT_CONNECTION_REFUSED') {
      stats.connectionsRefused++
      this.#counters.connectionsRefused++
      this.#ctx.peerDown(this.peer)
    }
    this.#state = 'backoff'
    const delay = reconnectDelayMs(this.#failures, options, options.random)
    this.#failures++
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#dial()
    }, delay)
  }

  #enqueue(messages: readonly Message[]): void {
    const { options, stats } = this.#ctx
    let dropped = 0
    for (const message of messages) {
      const bytes = messageBytesEstimate(message)
      if (
        this.#queue.length >= options.peerQueueMessagesMax ||
        this.#queueBytes + bytes > options.peerQueueBytesMax
      ) {
        dropped++
        this.#countDropped(message)
        continue
      }
      this.#queue.push(message)
      this.#queueBytes += bytes
    }
    if (dropped === 0) return
    stats.messagesDroppedQueueFull += dropped
    this.#ctx.unreachable(this.peer)
  }

  #takeQueue(): Message[] {
    const queue = this.#queue
    this.#queue = []
    this.#queueBytes = 0
    return queue
  }

  #dropQueue(): void {
    if (this.#queue.length === 0) return
    this.#ctx.stats.messagesDroppedUnreachable += this.#queue.length
    for (const message of this.#takeQueue()) this.#countDropped(message)
  }

  #countDropped(message: Message): void {
    this.#counters.messagesDropped++
    if (message.type === 'app') this.#counters.appendsDropped++
  }

  #write(messages: readonly Message[]): void {
    const link = this.#link
    if (link === undefined || messages.length === 0) return
    const { options, stats } = this.#ctx
    const bodies: Buffer[] = []
    const oversized = encodeBatches(messages, options.frameBytesMax - 1, bodies)
    link.writeFrames(FrameKind.batch, bodies)
    stats.batchesSent += bodies.length
    stats.messagesSent += messages.length - oversized
    this.#countWritten(messages, bodies, oversized > 0)
    if (oversized > 0) {
      stats.messagesDroppedOversized += oversized
      options.log.warn({ peer: this.peer, count: oversized }, 'messages larger than frameBytesMax dropped')
      this.#ctx.unreachable(this.peer)
    }
  }

  /**
   * Per-peer and append counters of one written batch (transport-stats.ts). With oversized
   * messages left out (rare, logged), each message is encoded again to tell which they were.
   */
  #countWritten(messages: readonly Message[], bodies: readonly Buffer[], someOversized: boolean): void {
    const counters = this.#counters
    const all = this.#ctx.counters
    for (const body of bodies) counters.bytesSent += frameHeaderBytes + body.length
    const bodyBytesMax = this.#ctx.options.frameBytesMax - 1
    let nowMs = -1
    for (const message of messages) {
      if (someOversized && encodeBody([message]).length > bodyBytesMax) {
        this.#countDropped(message)
        continue
      }
      counters.messagesSent++
      if (message.type !== 'app') continue
      if (nowMs < 0) nowMs = this.#ctx.options.now()
      all.appendsSent++
      all.sendWindow.record(nowMs, messageBytesEstimate(message))
      counters.appendWritten(message, nowMs, all.latencyProbeTimeoutMs)
    }
  }
}

/** Messages that may wait for the end of the event-loop turn (see the header). */
function isDeferrable(message: Message): boolean {
  return message.type === 'heartbeat' || (message.type === 'app' && message.entries.length === 0)
}
