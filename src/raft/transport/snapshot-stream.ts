/**
 * The snapshot stream's records and its receiving side's reassembly (pure: no sockets, no timers).
 *
 * On a connection whose hello says stream: 'snapshot', the dialer sends
 *   snapshotHeader { from, to, term, meta, dataBytes }   the 'snap' message without its data
 *   snapshotChunk  raw bytes, snapshotChunkBytes each (the last may be shorter), in order
 *   snapshotEnd    { dataBytes, checksum }               checksum = SHA-256 of the data
 * and the acceptor answers one snapshotAck Reply: ok once the whole snapshot was verified and
 * delivered, or a reason (possibly early, e.g. when dataBytes exceeds snapshotBytesMax). One
 * snapshot per connection; the dialer closes after the ack.
 *
 * SnapshotAssembly invariants: the buffer is allocated once, from the declared dataBytes, which is
 * at most snapshotBytesMax; received <= dataBytes at all times (a chunk past it is an error); the
 * message is produced only when received === dataBytes === end.dataBytes and the checksums match.
 */
import { createHash, type Hash } from 'node:crypto'
import type { NodeId, SnapshotMessage, SnapshotMeta } from '../core/types.ts'
import { TransportError } from './transport-error.ts'
import { isCount, isNodeId, validateSnapshotMeta } from './validate.ts'

export const checksumBytes = 32

export interface SnapshotHeader {
  from: NodeId
  to: NodeId
  term: number
  meta: SnapshotMeta
  dataBytes: number
}

export interface SnapshotEnd {
  dataBytes: number
  checksum: Uint8Array
}

export function newChecksum(): Hash {
  return createHash('sha256')
}

export function snapshotHeaderOf(message: SnapshotMessage): SnapshotHeader {
  const { from, to, term, snapshot } = message
  return { from, to, term, meta: snapshot.meta, dataBytes: snapshot.data.byteLength }
}

export function validateSnapshotHeader(x: unknown): SnapshotHeader | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const h = x as Record<string, unknown>
  if (!isNodeId(h.from) || !isNodeId(h.to) || !isCount(h.term) || !isCount(h.dataBytes)) return undefined
  const meta = validateSnapshotMeta(h.meta)
  if (meta === undefined) return undefined
  return { from: h.from, to: h.to, term: h.term, meta, dataBytes: h.dataBytes }
}

export function validateSnapshotEnd(x: unknown): SnapshotEnd | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const e = x as Record<string, unknown>
  if (!isCount(e.dataBytes) || !(e.checksum instanceof Uint8Array) || e.checksum.length !== checksumBytes) {
    return undefined
  }
  return { dataBytes: e.dataBytes, checksum: e.checksum }
}

export class SnapshotAssembly {
  readonly header: SnapshotHeader
  readonly #data: Buffer
  readonly #hash = newChecksum()
  #received = 0

  private constructor(header: SnapshotHeader, data: Buffer) {
    this.header = header
    this.#data = data
  }

  /** Allocates the snapshot's buffer, or says why not. */
  static start(header: SnapshotHeader, snapshotBytesMax: number): SnapshotAssembly | TransportError {
    if (header.dataBytes > snapshotBytesMax) {
      return new TransportError('TRANSPORT_SNAPSHOT_BYTES_MAX', `${header.dataBytes} > ${snapshotBytesMax}`)
    }
    try {
      // Unzeroed: finish() only succeeds when every byte was written by a chunk.
      return new SnapshotAssembly(header, Buffer.allocUnsafeSlow(header.dataBytes))
    } catch (error) {
      return new TransportError(
        'TRANSPORT_SNAPSHOT_BYTES_MAX',
        `cannot allocate ${header.dataBytes}: ${error}`,
      )
    }
  }

  get receivedBytes(): number {
    return this.#received
  }

  add(chunk: Uint8Array): TransportError | undefined {
    if (this.#received + chunk.length > this.header.dataBytes) {
      return new TransportError(
        'TRANSPORT_SNAPSHOT_INVALID',
        `data beyond the declared ${this.header.dataBytes} bytes`,
      )
    }
    this.#data.set(chunk, this.#received)
    this.#received += chunk.length
    this.#hash.update(chunk)
    return undefined
  }

  finish(end: SnapshotEnd): SnapshotMessage | TransportError {
    const { header } = this
    if (end.dataBytes !== header.dataBytes || this.#received !== header.dataBytes) {
      return new TransportError(
        'TRANSPORT_SNAPSHOT_CHECKSUM',
        `received ${this.#received} bytes, header said ${header.dataBytes}, end said ${end.dataBytes}`,
      )
    }
    if (!this.#hash.digest().equals(end.checksum)) {
      return new TransportError('TRANSPORT_SNAPSHOT_CHECKSUM', 'SHA-256 mismatch')
    }
    const { from, to, term, meta } = header
    return { type: 'snap', from, to, term, snapshot: { meta, data: this.#data } }
  }
}
