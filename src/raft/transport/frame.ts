/**
 * Frames: the unit of the wire protocol.
 *
 *   ┌──────────────────────┬──────────┬───────────────────────┐
 *   │ length: uint32 BE    │ kind: u8 │ body: length - 1 bytes│
 *   └──────────────────────┴──────────┴───────────────────────┘
 *
 * `length` counts the kind byte and the body, so it is at least 1 and at most frameBytesMax; any
 * other value closes the connection before a byte of the body is buffered. Bodies are msgpackr
 * values except snapshot chunks, which are raw bytes.
 *
 * FrameDecoder invariants: it buffers at most one frame (frameBytesMax + 4 bytes plus the rest of
 * the socket chunk that completed it); a body handed to onFrame that is not `owned` is a view of a
 * socket chunk: a consumer that keeps bytes from it copies them, so that it does not pin the chunk. Once it has failed or been stopped it ignores all further input.
 */
import { TransportError } from './transport-error.ts'

export const frameLengthBytes = 4
/** Length prefix plus kind byte. */
export const frameHeaderBytes = frameLengthBytes + 1

export const FrameKind = {
  /** Dialer → acceptor, first frame of every connection. */
  hello: 1,
  /** Acceptor → dialer: handshake accepted or refused with a reason. */
  helloReply: 2,
  /** A msgpackr array of Raft messages. */
  batch: 3,
  /** A snapshot message without its data, plus the data's length. */
  snapshotHeader: 4,
  /** Raw snapshot bytes. */
  snapshotChunk: 5,
  /** Total length and SHA-256 of the snapshot data. */
  snapshotEnd: 6,
  /** Receiver → sender: the whole snapshot was delivered (or why not). */
  snapshotAck: 7,
} as const

export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]

export function isFrameKind(kind: number): kind is FrameKind {
  return kind >= FrameKind.hello && kind <= FrameKind.snapshotAck
}

/** The 5-byte header of a frame whose body is `bodyBytes` long. */
export function frameHeader(kind: FrameKind, bodyBytes: number): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderBytes)
  header.writeUInt32BE(bodyBytes + 1, 0)
  header[frameLengthBytes] = kind
  return header
}

/** A whole frame in one buffer (for small control frames; batches are written as header + body). */
export function encodeFrame(kind: FrameKind, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + body.length)
  frame.writeUInt32BE(body.length + 1, 0)
  frame[frameLengthBytes] = kind
  frame.set(body, frameHeaderBytes)
  return frame
}

/**
 * `owned` is true when the body is a fresh buffer that nothing else references (the frame spanned
 * socket chunks and was assembled), false when it is a view of a socket chunk.
 */
export type FrameHandler = (kind: number, body: Buffer, owned: boolean) => void

export class FrameDecoder {
  readonly #frameBytesMax: number
  /** Unconsumed input, oldest first; #chunks[0] starts at #offset. */
  #chunks: Buffer[] = []
  #offset = 0
  #buffered = 0
  /** Total bytes of the frame being assembled (prefix included), 0 while the prefix is incomplete. */
  #frameBytes = 0
  #stopped = false

  constructor(frameBytesMax: number) {
    this.#frameBytesMax = frameBytesMax
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#buffered
  }

  /** Drops buffered input; later push() calls do nothing. Safe to call from inside onFrame. */
  stop(): void {
    this.#stopped = true
    this.#chunks = []
    this.#buffered = 0
  }

  /** Feeds socket bytes; calls onFrame for each complete frame. Returns an error to close on. */
  push(chunk: Buffer, onFrame: FrameHandler): TransportError | undefined {
    if (this.#stopped || chunk.length === 0) return undefined
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    while (!this.#stopped) {
      if (this.#frameBytes === 0) {
        if (this.#buffered < frameLengthBytes) return undefined
        const length = this.#peekLength()
        if (length === 0 || length > this.#frameBytesMax) {
          this.stop()
          return length === 0
            ? new TransportError('TRANSPORT_FRAME_INVALID', 'zero-length frame')
            : new TransportError('TRANSPORT_FRAME_BYTES_MAX', `${length} > ${this.#frameBytesMax}`)
        }
        this.#frameBytes = frameLengthBytes + length
      }
      if (this.#buffered < this.#frameBytes) return undefined
      const first = this.#chunks[0] as Buffer
      const owned = first.length - this.#offset < this.#frameBytes
      const frame = this.#take(this.#frameBytes)
      this.#frameBytes = 0
      onFrame(frame[frameLengthBytes] as number, frame.subarray(frameHeaderBytes), owned)
    }
    return undefined
  }

  #peekLength(): number {
    const first = this.#chunks[0] as Buffer
    if (first.length - this.#offset >= frameLengthBytes) return first.readUInt32BE(this.#offset)
    let length = 0
    let read = 0
    for (let i = 0; read < frameLengthBytes; i++) {
      const chunk = this.#chunks[i] as Buffer
      for (let j = i === 0 ? this.#offset : 0; j < chunk.length && read < frameLengthBytes; j++, read++) {
        length = length * 256 + (chunk[j] as number)
      }
    }
    return length
  }

  /** Removes `bytes` from the front of the input: a view when contiguous, else one copy. */
  #take(bytes: number): Buffer {
    this.#buffered -= bytes
    const first = this.#chunks[0] as Buffer
    if (first.length - this.#offset >= bytes) {
      const frame = first.subarray(this.#offset, this.#offset + bytes)
      this.#offset += bytes
      if (this.#offset === first.length) this.#dropFirst()
      return frame
    }
    const frame = Buffer.allocUnsafe(bytes)
    let written = 0
    while (written < bytes) {
      const chunk = this.#chunks[0] as Buffer
      const n = Math.min(chunk.length - this.#offset, bytes - written)
      chunk.copy(frame, written, this.#offset, this.#offset + n)
      written += n
      this.#offset += n
      if (this.#offset === chunk.length) this.#dropFirst()
    }
    return frame
  }

  #dropFirst(): void {
    this.#chunks.shift()
    this.#offset = 0
  }
}
