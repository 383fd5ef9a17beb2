/**
 * A TCP socket that speaks frames: decodes inbound bytes into frames for a replaceable handler,
 * writes frames, and reports its end exactly once.
 *
 * Invariants:
 *   - handler.closed(error) is called at most once, and never after destroy() (a close the owner
 *     asked for is not news to the owner). After it, no frame is delivered.
 *   - Frames are delivered in order to whichever handler is current when each frame completes, so
 *     an owner may swap handlers inside frame() (the handshake hands the socket over that way).
 *   - Writes after the end are ignored.
 */
import type { Socket } from 'node:net'
import { encodeFrame, FrameDecoder, type FrameKind, frameHeader } from './frame.ts'
import { encodeBody } from './message-codec.ts'
import { TransportError } from './transport-error.ts'

export interface FramedSocketHandler {
  /** See FrameHandler for `owned`. */
  frame(kind: number, body: Buffer, owned: boolean): void
  closed(error: TransportError): void
}

/** Bodies up to this size are copied next to their header and written as one buffer. */
const coalesceBytesMax = 4096

export class FramedSocket {
  readonly socket: Socket
  readonly #decoder: FrameDecoder
  #handler: FramedSocketHandler
  #ended = false
  readonly #closedPromise: Promise<void>

  constructor(socket: Socket, frameBytesMax: number, handler: FramedSocketHandler) {
    this.socket = socket
    this.#decoder = new FrameDecoder(frameBytesMax)
    this.#handler = handler
    this.#closedPromise = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (error) => {
      const code = isRefused(error) ? 'TRANSPORT_CONNECTION_REFUSED' : 'TRANSPORT_CONNECTION_LOST'
      this.fail(new TransportError(code, error.message))
    })
    socket.on('close', () => this.fail(new TransportError('TRANSPORT_CONNECTION_LOST', 'closed')))
  }

  get ended(): boolean {
    return this.#ended
  }

  get remote(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`
  }

  setHandler(handler: FramedSocketHandler): void {
    this.#handler = handler
  }

  /** Writes one frame. Returns false when the socket's buffer is past its high-water mark. */
  writeFrame(kind: FrameKind, body: Uint8Array): boolean {
    if (this.#ended) return false
    if (body.length <= coalesceBytesMax) {
      return this.socket.write(encodeFrame(kind, body))
    }
    this.socket.cork()
    this.socket.write(frameHeader(kind, body.length))
    const ok = this.socket.write(body)
    this.socket.uncork()
    return ok
  }

  /** Writes frames of one kind as one batch (corked: one writev). */
  writeFrames(kind: FrameKind, bodies: readonly Uint8Array[]): boolean {
    if (this.#ended) return false
    this.socket.cork()
    for (const body of bodies) this.writeFrame(kind, body)
    this.socket.uncork()
    return this.socket.writableLength < this.socket.writableHighWaterMark
  }

  writeRecord(kind: FrameKind, record: unknown): boolean {
    return this.writeFrame(kind, encodeBody(record))
  }

  /** Ends the connection because of `error` and tells the handler (once; after end() it only destroys). */
  fail(error: TransportError): void {
    if (this.#ended) {
      this.socket.destroy()
      return
    }
    this.#ended = true
    this.#decoder.stop()
    this.socket.destroy()
    this.#handler.closed(error)
  }

  /** Sends what is buffered, then FIN; no handler call. Resolves when the socket is closed. */
  end(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true
      this.#decoder.stop()
      this.socket.end()
    }
    return this.#closedPromise
  }

  /** Closes now, without telling the handler. Resolves when the socket is closed. */
  destroy(): Promise<void> {
    this.#ended = true
    this.#decoder.stop()
    this.socket.destroy()
    return this.#closedPromise
  }

  #onData(chunk: Buffer): void {
    const error = this.#decoder.push(chunk, (kind, body, owned) => {
      if (!this.#ended) this.#handler.frame(kind, body, owned)
    })
    if (error !== undefined) this.fail(error)
  }
}

/**
 * Whether a connect failed because nothing listens at the address: ECONNREFUSED, or, when a host
 * name resolved to several addresses and Node tried each (autoSelectFamily), ECONNREFUSED from
 * every one of them.
 */
export function isRefused(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.length > 0 && error.errors.every(isRefused)
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED'
}
