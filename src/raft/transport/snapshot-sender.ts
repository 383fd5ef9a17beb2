/**
 * Streams one 'snap' message to one peer on its own connection, so a large snapshot never holds up
 * heartbeats and appends on the message stream.
 *
 * dial (stream: 'snapshot') → header → chunks (paced by the socket's 'drain') → end → wait for ack.
 *
 * Invariants:
 *   - done(ok) is called exactly once unless cancel() came first: true only after the receiver's
 *     ok ack for the whole snapshot; false on any failure (dial, refusal, connection loss, a
 *     receiver's refusal or checksum mismatch, snapshotIdleTimeoutMs without socket activity).
 *   - The snapshot's data is read, never copied or modified; the caller must not mutate it while
 *     the stream runs (the core's snapshots are immutable). Data stored in a file is read one
 *     chunk at a time; a read that fails (file pruned, checksum mismatch) fails the send.
 *   - At most one chunk beyond the socket's high-water mark is buffered: memory stays flat however
 *     large the snapshot is.
 */
import type { SnapshotData, SnapshotMessage } from '../core/types.ts'
import { type Dialing, dial } from './dial.ts'
import { FrameKind } from './frame.ts'
import type { FramedSocket } from './framed-socket.ts'
import { protocolVersion, validateReply } from './handshake.ts'
import { decodeBody } from './message-codec.ts'
import type { PeerContext } from './peer-connection.ts'
import { newChecksum, snapshotHeaderOf } from './snapshot-stream.ts'
import { TransportError } from './transport-error.ts'

export class SnapshotSender {
  readonly #ctx: PeerContext
  readonly #message: SnapshotMessage
  readonly #done: (ok: boolean) => void
  #dialing: Dialing | undefined
  #link: FramedSocket | undefined
  #offset = 0
  #ended = false
  #finished = false
  readonly #hash = newChecksum()

  constructor(
    ctx: PeerContext,
    message: SnapshotMessage,
    address: { host: string; port: number },
    done: (ok: boolean) => void,
  ) {
    this.#ctx = ctx
    this.#message = message
    this.#done = done
    const { options } = ctx
    if (message.snapshot.data.byteLength > options.snapshotBytesMax) {
      const error = new TransportError(
        'TRANSPORT_SNAPSHOT_BYTES_MAX',
        `${message.snapshot.data.byteLength} bytes`,
      )
      queueMicrotask(() => this.#finish(false, error))
      return
    }
    const hello = {
      protocol: protocolVersion,
      clusterId: options.clusterId,
      from: options.memberId,
      to: message.to,
      stream: 'snapshot' as const,
    }
    this.#dialing = dial(address, hello, options, (result) => {
      this.#dialing = undefined
      if (result.ok) this.#opened(result.link)
      else this.#finish(false, result.error)
    })
  }

  /** Stops without calling done(). */
  cancel(): Promise<void> {
    this.#finished = true
    const closing = [this.#dialing?.cancel(), this.#link?.destroy()]
    return Promise.all(closing).then(() => undefined)
  }

  #opened(link: FramedSocket): void {
    if (this.#finished) {
      void link.destroy()
      return
    }
    this.#link = link
    link.setHandler({
      frame: (kind, body) => this.#onFrame(kind, body),
      closed: (error) => this.#finish(false, error),
    })
    const idleMs = this.#ctx.options.snapshotIdleTimeoutMs
    link.socket.setTimeout(idleMs, () => {
      link.fail(new TransportError('TRANSPORT_SNAPSHOT_TIMEOUT', `no progress for ${idleMs} ms`))
    })
    link.socket.on('drain', () => this.#pump())
    link.writeRecord(FrameKind.snapshotHeader, snapshotHeaderOf(this.#message))
    this.#pump()
  }

  /** Writes chunks until the socket's buffer is full, then the end marker once all are written. */
  #pump(): void {
    const link = this.#link
    if (link === undefined || this.#finished || this.#ended) return
    const data = this.#message.snapshot.data
    const chunkBytes = this.#ctx.options.snapshotChunkBytes
    while (this.#offset < data.byteLength) {
      let chunk: Uint8Array
      try {
        chunk = readChunk(data, this.#offset, chunkBytes)
      } catch (error) {
        link.fail(
          new TransportError(
            'TRANSPORT_SNAPSHOT_INVALID',
            `reading the snapshot: ${(error as Error).message}`,
          ),
        )
        return
      }
      this.#offset += chunk.length
      this.#hash.update(chunk)
      if (!link.writeFrame(FrameKind.snapshotChunk, chunk)) return
    }
    this.#ended = true
    link.writeRecord(FrameKind.snapshotEnd, { dataBytes: data.byteLength, checksum: this.#hash.digest() })
  }

  #onFrame(kind: number, body: Buffer): void {
    const link = this.#link as FramedSocket
    if (kind !== FrameKind.snapshotAck) {
      link.fail(new TransportError('TRANSPORT_FRAME_INVALID', `frame kind ${kind} on a snapshot stream`))
      return
    }
    const ack = validateReply(decodeBody(body))
    if (ack === undefined) link.fail(new TransportError('TRANSPORT_SNAPSHOT_INVALID', 'malformed ack'))
    else if (!ack.ok) link.fail(new TransportError('TRANSPORT_SNAPSHOT_INVALID', `refused: ${ack.reason}`))
    else if (!this.#ended) link.fail(new TransportError('TRANSPORT_SNAPSHOT_INVALID', 'ack before the end'))
    else {
      this.#finish(true, undefined)
      void link.end()
    }
  }

  #finish(ok: boolean, error: TransportError | undefined): void {
    if (this.#finished) return
    this.#finished = true
    const { stats, options } = this.#ctx
    const { to, snapshot } = this.#message
    if (ok) {
      stats.snapshotsSent++
      options.log.info(
        { peer: to, index: snapshot.meta.index, bytes: snapshot.data.byteLength },
        'snapshot sent',
      )
    } else {
      stats.snapshotsSendFailed++
      options.log.warn(
        { peer: to, index: snapshot.meta.index, code: error?.code, reason: error?.message },
        'snapshot failed',
      )
    }
    this.#done(ok)
  }
}

/** One chunk of the data: a view of bytes in memory, or read from the snapshot's file. */
function readChunk(data: SnapshotData, offset: number, length: number): Uint8Array {
  if (data instanceof Uint8Array) return data.subarray(offset, offset + length)
  const chunk = data.read(offset, length)
  if (chunk.length === 0) throw new Error(`no data at offset ${offset} of ${data.byteLength}`)
  return chunk
}
