/**
 * createPeerTransport: the PeerTransport over TCP (see transport.ts for the contract and
 * docs/transport.md for the wire format, limits and failure behaviour).
 *
 * Composition: a listener whose accepted sockets become InboundConnections; per known peer, one
 * PeerConnection (outbound message stream) and at most one SnapshotSender.
 *
 * Invariants:
 *   - send() never throws and never blocks: it groups messages by peer (keeping their order) and
 *     hands each group to that peer's connection as one batch; 'snap' messages go to a
 *     SnapshotSender instead.
 *   - onUnreachable and onSnapshotStatus never fire synchronously inside a call to this object:
 *     they are deferred to a microtask (onUnreachable coalesced per peer). onMessage fires from
 *     socket callbacks only.
 *   - After stop() begins, no event fires, no socket stays open and no timer is pending once the
 *     returned promise resolves.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { Message, NodeId, SnapshotMessage } from '../core/types.ts'
import { InboundConnection, type InboundContext } from './inbound-connection.ts'
import {
  type PeerTransportOptions,
  type ResolvedOptions,
  resolveOptions,
  tcpKeepAliveInitialDelayMs,
} from './options.ts'
import { PeerConnection, type PeerContext } from './peer-connection.ts'
import { SnapshotSender } from './snapshot-sender.ts'
import { emptyStats, type TransportStats } from './stats.ts'
import type { PeerTransport } from './transport.ts'
import { assertTransport, TransportError } from './transport-error.ts'
import { TransportCounters, type TransportCountersView } from './transport-stats.ts'

interface Peer {
  address: { host: string; port: number }
  messages: PeerConnection
  snapshot: SnapshotSender | undefined
}

export interface PeerStatus {
  state: PeerConnection['state']
  queuedMessages: number
  writeBufferBytes: number
  snapshotStreaming: boolean
}

export function createPeerTransport(options: PeerTransportOptions): TcpPeerTransport {
  return new TcpPeerTransport(options)
}

export class TcpPeerTransport implements PeerTransport {
  readonly #options: ResolvedOptions
  readonly #stats = emptyStats()
  readonly #counters: TransportCounters
  readonly #peers = new Map<NodeId, Peer>()
  readonly #inbound = new Set<InboundConnection>()
  readonly #messageStreams = new Map<NodeId, InboundConnection>()
  readonly #pendingUnreachable = new Set<NodeId>()
  readonly #peerContext: PeerContext
  readonly #inboundContext: InboundContext
  #server: Server | undefined
  #stopped = false

  constructor(options: PeerTransportOptions) {
    this.#options = resolveOptions(options)
    this.#counters = new TransportCounters(this.#options, this.#options.now)
    this.#peerContext = {
      options: this.#options,
      stats: this.#stats,
      counters: this.#counters,
      unreachable: (peer) => this.#emitUnreachable(peer),
      peerDown: (peer) => this.#emitPeerDown(peer),
    }
    this.#inboundContext = this.#makeInboundContext()
  }

  stats(): TransportStats {
    return { ...this.#stats }
  }

  /**
   * Append and per-peer counters, live (transport-stats.ts): what /v2/stats/self, /v2/stats/leader
   * and /metrics read. A peer's counters exist from setPeer to removePeer.
   */
  get counters(): TransportCountersView {
    return this.#counters
  }

  peerStatus(id: NodeId): PeerStatus | undefined {
    const peer = this.#peers.get(id)
    if (peer === undefined) return undefined
    return {
      state: peer.messages.state,
      queuedMessages: peer.messages.queuedMessages,
      writeBufferBytes: peer.messages.writeBufferBytes,
      snapshotStreaming: peer.snapshot !== undefined,
    }
  }

  start(): Promise<{ host: string; port: number }> {
    assertTransport(this.#server === undefined && !this.#stopped, 'start() called twice or after stop()')
    const { listen, inboundConnectionsMax } = this.#options
    const server = createServer(
      { noDelay: true, keepAlive: true, keepAliveInitialDelay: tcpKeepAliveInitialDelayMs },
      (socket) => this.#accept(socket),
    )
    server.maxConnections = inboundConnectionsMax
    this.#server = server
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject)
        server.on('error', (error) =>
          this.#options.log.warn({ reason: error.message }, 'peer listener error'),
        )
        const address = server.address()
        assertTransport(typeof address === 'object' && address !== null, 'listener has no address')
        resolve({ host: address.address, port: address.port })
      })
    })
  }

  send(messages: readonly Message[]): void {
    if (this.#stopped) return
    const byPeer = new Map<NodeId, Message[]>()
    for (const message of messages) {
      if (message.type === 'snap') {
        this.#sendSnapshot(message)
        continue
      }
      const group = byPeer.get(message.to)
      if (group === undefined) byPeer.set(message.to, [message])
      else group.push(message)
    }
    for (const [to, group] of byPeer) {
      const peer = this.#peers.get(to)
      if (peer === undefined) {
        this.#stats.messagesDroppedUnreachable += group.length
        this.#emitUnreachable(to)
      } else {
        peer.messages.send(group)
      }
    }
  }

  setPeer(id: NodeId, address: { host: string; port: number }): void {
    assertTransport(Number.isSafeInteger(id) && id > 0 && id !== this.#options.memberId, `bad peer id ${id}`)
    assertTransport(
      Number.isSafeInteger(address.port) && address.port > 0 && address.port < 65536,
      'bad port',
    )
    if (this.#stopped) return
    const copy = { host: address.host, port: address.port }
    const peer = this.#peers.get(id)
    if (peer === undefined) {
      this.#peers.set(id, {
        address: copy,
        messages: new PeerConnection(this.#peerContext, id, copy),
        snapshot: undefined,
      })
      return
    }
    peer.address = copy
    peer.messages.setAddress(copy)
  }

  removePeer(id: NodeId): void {
    const peer = this.#peers.get(id)
    if (peer === undefined) return
    this.#peers.delete(id)
    this.#counters.forget(id)
    void peer.messages.close()
    if (peer.snapshot !== undefined) {
      void peer.snapshot.cancel()
      this.#emitSnapshotStatus(id, false)
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    const closing: Promise<void>[] = []
    for (const peer of this.#peers.values()) {
      closing.push(peer.messages.close())
      if (peer.snapshot !== undefined) closing.push(peer.snapshot.cancel())
    }
    this.#peers.clear()
    for (const connection of this.#inbound) closing.push(connection.destroy())
    const server = this.#server
    if (server?.listening) closing.push(new Promise((resolve) => server.close(() => resolve())))
    await Promise.all(closing)
  }

  #sendSnapshot(message: SnapshotMessage): void {
    const peer = this.#peers.get(message.to)
    if (peer === undefined) {
      this.#stats.snapshotsSendFailed++
      this.#emitSnapshotStatus(message.to, false)
      return
    }
    if (peer.snapshot !== undefined) {
      this.#stats.snapshotsSendFailed++
      const error = new TransportError('TRANSPORT_SNAPSHOT_BUSY', `to ${message.to}`)
      this.#options.log.warn({ peer: message.to, reason: error.message }, 'snapshot not sent')
      this.#emitSnapshotStatus(message.to, false)
      return
    }
    const sender = new SnapshotSender(this.#peerContext, message, peer.address, (ok) => {
      if (peer.snapshot === sender) peer.snapshot = undefined
      this.#emitSnapshotStatus(message.to, ok)
    })
    peer.snapshot = sender
  }

  #accept(socket: Socket): void {
    if (this.#stopped) {
      socket.destroy()
      return
    }
    this.#inbound.add(new InboundConnection(this.#inboundContext, socket))
  }

  #makeInboundContext(): InboundContext {
    return {
      options: this.#options,
      stats: this.#stats,
      counters: this.#counters,
      deliver: (message) => {
        if (!this.#stopped) this.#options.events.onMessage(message)
      },
      snapshotStreamsActive: () => {
        let count = 0
        for (const connection of this.#inbound) if (connection.holdsSnapshotSlot) count++
        return count
      },
      messageStreamOpened: (from, connection) => {
        const previous = this.#messageStreams.get(from)
        this.#messageStreams.set(from, connection)
        if (previous !== undefined && previous !== connection) {
          this.#options.log.info({ from }, 'a new message stream from the peer replaces the old one')
          void previous.destroy()
        }
      },
      closed: (connection) => {
        this.#inbound.delete(connection)
        for (const [from, stream] of this.#messageStreams) {
          if (stream === connection) this.#messageStreams.delete(from)
        }
      },
    }
  }

  #emitUnreachable(peer: NodeId): void {
    if (this.#pendingUnreachable.has(peer)) return
    this.#pendingUnreachable.add(peer)
    queueMicrotask(() => {
      this.#pendingUnreachable.delete(peer)
      if (!this.#stopped) this.#options.events.onUnreachable(peer)
    })
  }

  #emitPeerDown(peer: NodeId): void {
    queueMicrotask(() => {
      if (!this.#stopped) this.#options.events.onPeerDown(peer)
    })
  }

  #emitSnapshotStatus(peer: NodeId, ok: boolean): void {
    queueMicrotask(() => {
      if (!this.#stopped) this.#options.events.onSnapshotStatus(peer, ok)
    })
  }
}
