/**
 * A fault-injecting TCP proxy in front of one member's peer port.
 *
 * Every member advertises the proxy's port as its peer URL, so every connection another member
 * dials to it passes through here. A member dials its own connections and each carries only its
 * own messages (docs/transport.md), so the first frame, `hello {from, to, ...}`, names the dialer:
 * a connection accepted by the proxy of member Y with `from` = X is the directed link X→Y. Faults
 * are set per directed link (per dialer name, on the receiver's proxy):
 *
 *   blocked           a partition: existing connections of the link are destroyed when the block
 *                     is set, a new one is closed as soon as its hello arrives (before the member
 *                     is even dialled), and a frame is checked again before it is written, so no
 *                     frame crosses a blocked link.
 *   latencyMs ± jitterMs   each frame dialer→member is held that long; order is preserved (a frame
 *                     is never released before the one ahead of it).
 *   dropProbability   whole `batch` frames (Raft messages, which Raft may lose) are dropped with
 *                     this probability. hello and the snapshot frames are never dropped: losing
 *                     a part of a snapshot stream would only fail that stream's checksum, which
 *                     tests nothing new, and a lost hello stalls the handshake until its timeout.
 *
 * Frames member→dialer (helloReply, snapshotAck) are relayed at once; they are part of the same
 * link and end with it when it is blocked. Draws (drop, jitter) come from the injected `random`,
 * a seeded PRNG in the harness.
 *
 * Invariants: a relay forwards nothing before its hello has been read and its link found open; a
 * relay's queued frames are written in arrival order; a destroyed relay writes nothing more and
 * is no longer in #relays. Memory per relay is bounded: reading from the dialer pauses while more
 * than relayQueuedBytesHigh bytes wait (delayed, or not yet accepted by the member's socket).
 */
import { createServer, type Server, Socket } from 'node:net'
import { FrameDecoder, FrameKind, frameHeader } from '../src/raft/transport/frame.ts'
import { validateHello } from '../src/raft/transport/handshake.ts'
import { decodeBody } from '../src/raft/transport/message-codec.ts'
import { peerTransportDefaults } from '../src/raft/transport/options.ts'

export interface LinkFaults {
  blocked: boolean
  latencyMs: number
  jitterMs: number
  /** 0..1, applied to batch frames only. */
  dropProbability: number
}

export const noLinkFaults: Readonly<LinkFaults> = Object.freeze({
  blocked: false,
  latencyMs: 0,
  jitterMs: 0,
  dropProbability: 0,
})

/** Unsent bytes a relay holds before it stops reading from the dialer. */
export const relayQueuedBytesHigh = 8 * 1024 * 1024
/** Largest latency or jitter the proxy accepts (a fault, not a hang). */
export const linkLatencyMsMax = 60_000

export interface ProxyOptions {
  /** The member behind this proxy: the receiving end of every link it carries. */
  member: string
  /** Where the proxy listens (port 0: any free port; start() answers the port). */
  listen: { host: string; port: number }
  /** The member's real peer listener. */
  target: { host: string; port: number }
  /** The member name of a hello's `from` id; undefined closes the connection (unknown dialer). */
  nameOf(id: number): string | undefined
  /** Uniform in [0, 1). */
  random(): number
}

export interface ProxyStats {
  connectionsAccepted: number
  /** Closed because the link was blocked when its hello arrived. */
  connectionsRefused: number
  /** Open connections destroyed by a new block. */
  connectionsCut: number
  /** Closed for a bad first frame, an unknown dialer or a framing error. */
  connectionsInvalid: number
  framesForwarded: number
  framesDropped: number
}

export class FaultProxy {
  readonly member: string
  readonly #options: ProxyOptions
  readonly #faults = new Map<string, LinkFaults>()
  readonly #relays = new Set<Relay>()
  readonly #stats: ProxyStats = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsCut: 0,
    connectionsInvalid: 0,
    framesForwarded: 0,
    framesDropped: 0,
  }
  #server: Server | undefined
  #port = 0
  /** The last setListening call, settled either way: calls run one after another. */
  #listening: Promise<void> = Promise.resolve()

  constructor(options: ProxyOptions) {
    this.member = options.member
    this.#options = options
  }

  get port(): number {
    return this.#port
  }

  stats(): ProxyStats {
    return { ...this.#stats }
  }

  /** The faults of link from→member (none unless set). */
  faultsOf(from: string): LinkFaults {
    return this.#faults.get(from) ?? noLinkFaults
  }

  /** Changes some faults of link from→member; a new block cuts the link's open connections. */
  setFaults(from: string, change: Partial<LinkFaults>): void {
    const next = { ...this.faultsOf(from), ...change }
    assertLinkFaults(next)
    this.#faults.set(from, next)
    if (next.blocked) this.#cut(from)
  }

  /** Every link of this proxy back to no faults. */
  healAll(): void {
    this.#faults.clear()
  }

  async start(): Promise<number> {
    await this.#listen(this.#options.listen.port)
    return this.#port
  }

  /**
   * Mirrors the member's process. While it has none (killed, crashed, removed) nothing listens at
   * the member's advertised address, so a dial there is refused (ECONNREFUSED), as by the member's
   * own machine, and the open relays are closed; members learn from that that its process is down
   * (transport.md, onPeerDown). `true` listens again on the same port, before the process starts.
   * One simplification: a dialer whose link is blocked is refused too, where a real partition would
   * let its dial time out.
   */
  setListening(on: boolean): Promise<void> {
    // Each call waits for the one before, whatever became of it: a listen that failed (the caller
    // got that rejection) must not fail every later call, nor stop().
    const next = this.#listening
      .catch(() => {})
      .then(async () => {
        if (on && this.#server === undefined) await this.#listen(this.#port)
        if (!on && this.#server !== undefined) await this.#close()
      })
    this.#listening = next.catch(() => {})
    return next
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((socket) => this.#accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, this.#options.listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#server = server
    const address = server.address()
    this.#port = typeof address === 'object' && address !== null ? address.port : 0
  }

  async #close(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const relay of [...this.#relays]) relay.destroy()
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Closes the listener and every connection. */
  async stop(): Promise<void> {
    await this.#listening
    await this.#close()
  }

  #accept(dialer: Socket): void {
    if (this.#server === undefined) {
      dialer.destroy()
      return
    }
    this.#stats.connectionsAccepted++
    const relay = new Relay(dialer, {
      target: this.#options.target,
      nameOf: this.#options.nameOf,
      random: this.#options.random,
      faultsOf: (from) => this.faultsOf(from),
      stats: this.#stats,
      onClose: () => this.#relays.delete(relay),
    })
    this.#relays.add(relay)
  }

  #cut(from: string): void {
    for (const relay of [...this.#relays]) {
      if (relay.from !== from) continue
      this.#stats.connectionsCut++
      relay.destroy()
    }
  }
}

function assertLinkFaults(f: LinkFaults): void {
  const ok =
    f.latencyMs >= 0 &&
    f.latencyMs <= linkLatencyMsMax &&
    f.jitterMs >= 0 &&
    f.jitterMs <= linkLatencyMsMax &&
    f.dropProbability >= 0 &&
    f.dropProbability <= 1
  if (!ok) throw new Error(`link faults out of range: ${JSON.stringify(f)}`)
}

interface RelayDeps {
  target: { host: string; port: number }
  nameOf(id: number): string | undefined
  random(): number
  faultsOf(from: string): LinkFaults
  stats: ProxyStats
  onClose(): void
}

interface QueuedFrame {
  /** performance.now() time at which it may be written. */
  releaseAt: number
  bytes: Buffer
}

/** One accepted connection and the connection it opens to the member. */
class Relay {
  /** The dialer's member name, once its hello was read. */
  from: string | undefined
  readonly #dialer: Socket
  readonly #deps: RelayDeps
  readonly #decoder = new FrameDecoder(peerTransportDefaults.frameBytesMax)
  #member: Socket | undefined
  #memberReady = false
  readonly #queue: QueuedFrame[] = []
  #queuedBytes = 0
  #lastReleaseAt = 0
  #timer: NodeJS.Timeout | undefined
  #waitingDrain = false
  #destroyed = false

  constructor(dialer: Socket, deps: RelayDeps) {
    this.#dialer = dialer
    this.#deps = deps
    dialer.setNoDelay(true)
    dialer.on('data', (chunk: Buffer) => this.#onDialerData(chunk))
    dialer.on('error', () => this.destroy())
    dialer.on('close', () => this.destroy())
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.#decoder.stop()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#queue.length = 0
    this.#queuedBytes = 0
    this.#dialer.destroy()
    this.#member?.destroy()
    this.#deps.onClose()
  }

  #onDialerData(chunk: Buffer): void {
    const error = this.#decoder.push(chunk, (kind, body) => this.#onFrame(kind, body))
    if (error !== undefined && !this.#destroyed) {
      this.#deps.stats.connectionsInvalid++
      this.destroy()
    }
  }

  #onFrame(kind: number, body: Buffer): void {
    if (this.#destroyed) return
    if (this.from === undefined) {
      this.#onHello(kind, body)
      return
    }
    const faults = this.#deps.faultsOf(this.from)
    if (faults.blocked) {
      this.destroy()
      return
    }
    if (
      kind === FrameKind.batch &&
      faults.dropProbability > 0 &&
      this.#deps.random() < faults.dropProbability
    ) {
      this.#deps.stats.framesDropped++
      return
    }
    this.#enqueue(kind, body, faults)
  }

  #onHello(kind: number, body: Buffer): void {
    const hello = kind === FrameKind.hello ? validateHello(decodeBody(body)) : undefined
    const from = hello === undefined ? undefined : this.#deps.nameOf(hello.from)
    if (from === undefined) {
      this.#deps.stats.connectionsInvalid++
      this.destroy()
      return
    }
    const faults = this.#deps.faultsOf(from)
    if (faults.blocked) {
      this.#deps.stats.connectionsRefused++
      this.destroy()
      return
    }
    this.from = from
    this.#connectMember()
    this.#enqueue(kind, body, faults)
  }

  #connectMember(): void {
    const member = new Socket()
    this.#member = member
    member.setNoDelay(true)
    member.on('data', (chunk: Buffer) => {
      if (this.#destroyed) return
      if (this.from !== undefined && this.#deps.faultsOf(this.from).blocked) {
        this.destroy()
        return
      }
      this.#dialer.write(chunk)
    })
    member.on('drain', () => {
      this.#waitingDrain = false
      this.#pump()
    })
    member.on('error', () => this.destroy())
    member.on('close', () => this.destroy())
    member.connect(this.#deps.target.port, this.#deps.target.host, () => {
      this.#memberReady = true
      this.#pump()
    })
  }

  #enqueue(kind: number, body: Buffer, faults: LinkFaults): void {
    const bytes = Buffer.concat([frameHeader(kind as FrameKind, body.length), body])
    const now = performance.now()
    const jitter = faults.jitterMs === 0 ? 0 : (this.#deps.random() * 2 - 1) * faults.jitterMs
    const releaseAt = Math.max(now + Math.max(0, faults.latencyMs + jitter), this.#lastReleaseAt)
    this.#lastReleaseAt = releaseAt
    this.#queue.push({ releaseAt, bytes })
    this.#queuedBytes += bytes.length
    if (this.#queuedBytes > relayQueuedBytesHigh) this.#dialer.pause()
    this.#pump()
  }

  /** Writes every frame whose time has come, in order, while the member's socket accepts them. */
  #pump(): void {
    if (this.#destroyed || !this.#memberReady || this.#waitingDrain || this.#timer !== undefined) return
    const member = this.#member as Socket
    for (;;) {
      const head = this.#queue[0]
      if (head === undefined) break
      const wait = head.releaseAt - performance.now()
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined
          this.#pump()
        }, Math.ceil(wait))
        break
      }
      if (this.from === undefined || this.#deps.faultsOf(this.from).blocked) {
        this.destroy()
        return
      }
      this.#queue.shift()
      this.#queuedBytes -= head.bytes.length
      this.#deps.stats.framesForwarded++
      if (!member.write(head.bytes)) {
        this.#waitingDrain = true
        break
      }
    }
    if (this.#queuedBytes <= relayQueuedBytesHigh / 2 && this.#dialer.isPaused()) this.#dialer.resume()
  }
}
