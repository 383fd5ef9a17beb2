/**
 * One accepted connection: its handshake, then either a message stream or one snapshot stream.
 *
 *   hello ──refused──► reply { ok: false, reason }, end
 *     └──accepted──► reply { ok: true } ──► messages: batch frames until the dialer closes
 *                                       └─► snapshot: header, chunks, end ──► ack, wait for close
 *
 * Invariants:
 *   - Nothing reaches deliver() before the handshake is accepted, and only messages that pass
 *     validateMessage, carry the handshake's `from` and this member's id as `to`, and (on a message
 *     stream) are not snapshots. Everything else is dropped and counted; a frame of the wrong kind
 *     or length closes the connection.
 *   - The handshake timer runs until the handshake is accepted, and again after a refusal or a
 *     finished snapshot, so a peer that never speaks or never closes cannot hold a connection.
 *   - A snapshot stream holds one slot of inboundSnapshotStreamsMax from its acceptance to its close.
 */
import type { Socket } from 'node:net'
import type { Message, NodeId } from '../core/types.ts'
import { FrameKind, frameHeaderBytes } from './frame.ts'
import { FramedSocket } from './framed-socket.ts'
import { type Hello, helloRefusal, type Reply, validateHello } from './handshake.ts'
import { decodeBody, decodeOwnedBody, messageBytesEstimate } from './message-codec.ts'
import type { ResolvedOptions } from './options.ts'
import { SnapshotAssembly, validateSnapshotEnd, validateSnapshotHeader } from './snapshot-stream.ts'
import type { TransportStats } from './stats.ts'
import { TransportError, type TransportErrorCode } from './transport-error.ts'
import type { TransportCounters } from './transport-stats.ts'
import { validateMessage } from './validate.ts'

export interface InboundContext {
  readonly options: ResolvedOptions
  readonly stats: TransportStats
  readonly counters: TransportCounters
  deliver(message: Message): void
  snapshotStreamsActive(): number
  /** A message stream from `from` was accepted; the transport closes an older one from it. */
  messageStreamOpened(from: NodeId, connection: InboundConnection): void
  closed(connection: InboundConnection): void
}

type State = 'hello' | 'messages' | 'snapshot' | 'closing'

const protocolErrors: ReadonlySet<TransportErrorCode> = new Set<TransportErrorCode>([
  'TRANSPORT_FRAME_BYTES_MAX',
  'TRANSPORT_FRAME_INVALID',
  'TRANSPORT_HANDSHAKE_INVALID',
])

export class InboundConnection {
  readonly #ctx: InboundContext
  readonly link: FramedSocket
  #state: State = 'hello'
  #hello: Hello | undefined
  #timer: NodeJS.Timeout | undefined
  #assembly: SnapshotAssembly | undefined
  #snapshotDone = false

  constructor(ctx: InboundContext, socket: Socket) {
    this.#ctx = ctx
    const link = new FramedSocket(socket, ctx.options.frameBytesMax, {
      frame: (kind, body, owned) => this.#onFrame(kind, body, owned),
      closed: (error) => this.#onFailed(error),
    })
    this.link = link
    socket.once('close', () => {
      clearTimeout(this.#timer)
      this.#state = 'closing'
      this.#ctx.closed(this)
    })
    this.#armTimer()
  }

  /** Holds a slot of inboundSnapshotStreamsMax: from the accepted handshake to the socket's close. */
  get holdsSnapshotSlot(): boolean {
    return this.#hello?.stream === 'snapshot'
  }

  /** Closes now (stop(), or replaced by a newer stream from the same peer). */
  destroy(): Promise<void> {
    clearTimeout(this.#timer)
    this.#state = 'closing'
    return this.link.destroy()
  }

  #armTimer(): void {
    clearTimeout(this.#timer)
    const ms = this.#ctx.options.handshakeTimeoutMs
    this.#timer = setTimeout(() => {
      this.link.fail(new TransportError('TRANSPORT_HANDSHAKE_TIMEOUT', `idle for ${ms} ms`))
    }, ms)
  }

  #onFrame(kind: number, body: Buffer, owned: boolean): void {
    switch (this.#state) {
      case 'hello':
        if (kind === FrameKind.hello) this.#onHello(body)
        else this.#protocolError(`frame kind ${kind} before the handshake`)
        return
      case 'messages':
        if (kind === FrameKind.batch) this.#onBatch(body, owned)
        else this.#protocolError(`frame kind ${kind} on a message stream`)
        return
      case 'snapshot':
        this.#onSnapshotFrame(kind, body)
        return
      case 'closing':
        return
    }
  }

  #onHello(body: Buffer): void {
    const { options, stats } = this.#ctx
    const hello = validateHello(decodeBody(body))
    if (hello === undefined) {
      this.#protocolError('malformed handshake', 'TRANSPORT_HANDSHAKE_INVALID')
      return
    }
    let reason = helloRefusal(hello, options)
    if (reason === undefined && hello.stream === 'snapshot') {
      if (this.#ctx.snapshotStreamsActive() >= options.inboundSnapshotStreamsMax) {
        reason = `busy: ${options.inboundSnapshotStreamsMax} snapshot streams are already being received`
      }
    }
    if (reason !== undefined) {
      stats.handshakesRejected++
      options.log.warn({ remote: this.link.remote, from: hello.from, reason }, 'refused a peer handshake')
      this.#replyAndClose(FrameKind.helloReply, { ok: false, reason })
      return
    }
    clearTimeout(this.#timer)
    this.#hello = hello
    this.link.writeRecord(FrameKind.helloReply, { ok: true } satisfies Reply)
    if (hello.stream === 'messages') {
      this.#state = 'messages'
      this.#ctx.messageStreamOpened(hello.from, this)
      return
    }
    this.#state = 'snapshot'
    const idleMs = options.snapshotIdleTimeoutMs
    this.link.socket.setTimeout(idleMs, () => {
      // After the ack (or a refusal) the handshake timer reaps the connection instead.
      if (this.#state !== 'snapshot' || this.#snapshotDone) return
      this.#snapshotFailed(new TransportError('TRANSPORT_SNAPSHOT_TIMEOUT', `no progress for ${idleMs} ms`))
    })
  }

  #onBatch(body: Buffer, owned: boolean): void {
    const { stats, options, counters } = this.#ctx
    const from = (this.#hello as Hello).from
    const peer = counters.peer(from)
    if (peer !== undefined) peer.bytesReceived += frameHeaderBytes + body.length
    const batch = decodeOwnedBody(body, owned)
    if (!Array.isArray(batch)) {
      stats.framesUndecodable++
      return
    }
    let nowMs = -1
    for (const item of batch) {
      const message = validateMessage(item)
      if (message === undefined || message.type === 'snap') {
        stats.messagesInvalid++
        continue
      }
      if (message.from !== from || message.to !== options.memberId) {
        stats.messagesMisaddressed++
        continue
      }
      stats.messagesReceived++
      if (peer !== undefined) peer.messagesReceived++
      if (message.type === 'app') {
        if (nowMs < 0) nowMs = options.now()
        counters.appendsReceived++
        counters.recvWindow.record(nowMs, messageBytesEstimate(message))
      } else if (message.type === 'appResp' && peer !== undefined) {
        if (nowMs < 0) nowMs = options.now()
        peer.appendAnswered(message, nowMs)
      }
      this.#ctx.deliver(message)
      if (this.#state !== 'messages') return // deliver() may have stopped the transport
    }
  }

  #onSnapshotFrame(kind: number, body: Buffer): void {
    if (this.#snapshotDone) {
      this.#protocolError(`frame kind ${kind} after the snapshot's end`)
      return
    }
    if (kind === FrameKind.snapshotHeader && this.#assembly === undefined) this.#onSnapshotHeader(body)
    else if (kind === FrameKind.snapshotChunk && this.#assembly !== undefined) {
      const error = this.#assembly.add(body)
      if (error !== undefined) this.#snapshotFailed(error)
    } else if (kind === FrameKind.snapshotEnd && this.#assembly !== undefined) this.#onSnapshotEnd(body)
    else this.#protocolError(`frame kind ${kind} out of order on a snapshot stream`)
  }

  #onSnapshotHeader(body: Buffer): void {
    const { options } = this.#ctx
    const header = validateSnapshotHeader(decodeBody(body))
    if (header === undefined) {
      this.#snapshotFailed(new TransportError('TRANSPORT_SNAPSHOT_INVALID', 'malformed header'))
      return
    }
    if (header.from !== (this.#hello as Hello).from || header.to !== options.memberId) {
      this.#ctx.stats.messagesMisaddressed++
      this.#snapshotFailed(new TransportError('TRANSPORT_SNAPSHOT_INVALID', 'misaddressed header'))
      return
    }
    const assembly = SnapshotAssembly.start(header, options.snapshotBytesMax)
    if (assembly instanceof TransportError) this.#snapshotFailed(assembly)
    else this.#assembly = assembly
  }

  #onSnapshotEnd(body: Buffer): void {
    const end = validateSnapshotEnd(decodeBody(body))
    const assembly = this.#assembly as SnapshotAssembly
    const result =
      end === undefined
        ? new TransportError('TRANSPORT_SNAPSHOT_INVALID', 'malformed end')
        : assembly.finish(end)
    if (result instanceof TransportError) {
      this.#snapshotFailed(result)
      return
    }
    const { stats, options } = this.#ctx
    this.#assembly = undefined
    this.#snapshotDone = true
    stats.snapshotsReceived++
    stats.messagesReceived++
    options.log.info(
      { from: result.from, index: result.snapshot.meta.index, bytes: result.snapshot.data.byteLength },
      'snapshot received',
    )
    this.#ctx.deliver(result)
    if (this.#state !== 'snapshot') return
    this.link.writeRecord(FrameKind.snapshotAck, { ok: true } satisfies Reply)
    this.#armTimer() // the sender closes after the ack; reap the connection if it does not
  }

  #snapshotFailed(error: TransportError): void {
    const { stats, options } = this.#ctx
    stats.snapshotsReceiveFailed++
    this.#assembly = undefined
    options.log.warn(
      { remote: this.link.remote, code: error.code, reason: error.message },
      'snapshot refused',
    )
    this.#replyAndClose(FrameKind.snapshotAck, { ok: false, reason: error.message })
  }

  /** Counted and logged by #onFailed. */
  #protocolError(
    detail: string,
    code: 'TRANSPORT_FRAME_INVALID' | 'TRANSPORT_HANDSHAKE_INVALID' = 'TRANSPORT_FRAME_INVALID',
  ): void {
    this.link.fail(new TransportError(code, detail))
  }

  /** Sends a last reply, then FIN; the handshake timer destroys the socket if the peer lingers. */
  #replyAndClose(kind: FrameKind, reply: Reply): void {
    this.link.writeRecord(kind, reply)
    this.#state = 'closing'
    void this.link.end()
    this.#armTimer()
  }

  /** The connection broke or was closed by the peer or by a timer (not by destroy()). */
  #onFailed(error: TransportError): void {
    const { stats, options } = this.#ctx
    const fields = { remote: this.link.remote, code: error.code, reason: error.message }
    if (this.#state === 'snapshot' && !this.#snapshotDone) {
      stats.snapshotsReceiveFailed++
      options.log.warn(fields, 'snapshot stream cut')
    }
    if (protocolErrors.has(error.code)) {
      stats.connectionsClosedProtocol++
      options.log.warn(fields, 'closed a peer connection that broke the protocol')
    }
    this.#state = 'closing'
  }
}
