/**
 * The contract between the node driver and the peer network.
 *
 * One persistent TCP connection per peer, length-prefixed msgpackr frames, reconnect with backoff.
 * Every connection starts with a handshake carrying the cluster id, the sender's member id and the
 * id it believes it is talking to; a mismatch closes the connection with a logged reason, so a
 * stray node cannot join the wrong cluster. Messages from the network are untrusted input: frames
 * beyond frameBytesMax and messages that do not have the shape of a Raft message are dropped (and
 * counted), never handed to the core.
 *
 * Snapshot ('snap') messages are streamed in chunks and delivered whole to the receiver; the sender
 * learns the outcome through onSnapshotStatus. Other messages to an unreachable peer are dropped
 * (Raft tolerates loss) and reported through onUnreachable; a refused dial is also reported through
 * onPeerDown.
 */
import type { Message, NodeId } from '../core/types.ts'

export interface PeerTransportEvents {
  /** A well-formed message addressed to this member. */
  onMessage(message: Message): void
  /** A message to `peer` could not be delivered (no connection, or it broke). */
  onUnreachable(peer: NodeId): void
  /**
   * A dial to `peer` was refused: nothing listens at its address, so its process is down (or has
   * not started). A partition or a slow or stopped peer never causes this; they time out.
   */
  onPeerDown(peer: NodeId): void
  /** A snapshot streamed to `peer` arrived whole (ok) or failed. */
  onSnapshotStatus(peer: NodeId, ok: boolean): void
}

export interface PeerTransport {
  /** Starts listening on the peer address; resolves with the bound port (useful with port 0). */
  start(): Promise<{ host: string; port: number }>
  /** Queues messages; each peer's queue is flushed as one batch. Never throws, never blocks. */
  send(messages: readonly Message[]): void
  /** Adds or updates a peer's address. */
  setPeer(id: NodeId, address: { host: string; port: number }): void
  removePeer(id: NodeId): void
  stop(): Promise<void>
}
