/**
 * Counters of the peer transport: what was sent and received, and every drop, refusal and closed
 * connection by reason. They only grow (until the transport is recreated); a metrics endpoint reads
 * a copy through TcpPeerTransport.stats().
 */

export interface TransportStats {
  /** Messages written to a socket (snapshots excluded). */
  messagesSent: number
  /** Batch frames written. messagesSent / batchesSent is the mean batch size. */
  batchesSent: number
  /** Well-formed, well-addressed messages handed to onMessage (snapshots included). */
  messagesReceived: number
  /** Dropped because the peer is unknown, in reconnect backoff, or its connection broke. */
  messagesDroppedUnreachable: number
  /** Dropped because the peer's queue was full (peerQueueMessagesMax / peerQueueBytesMax). */
  messagesDroppedQueueFull: number
  /** Dropped because one message alone encodes to more than frameBytesMax. */
  messagesDroppedOversized: number
  /** Inbound batch frames that are not one msgpack array. */
  framesUndecodable: number
  /** Inbound messages that are not well-formed Raft messages (validateMessage). */
  messagesInvalid: number
  /** Inbound messages whose from/to do not match the connection's handshake. */
  messagesMisaddressed: number
  /** Connections closed for breaking the protocol (frame length, frame kind, handshake shape). */
  connectionsClosedProtocol: number
  /** Inbound handshakes this member refused. */
  handshakesRejected: number
  /** Outbound handshakes a peer refused. */
  handshakesRefused: number
  /** Outbound connections that failed to connect, timed out or broke. */
  connectionFailures: number
  /** Of those: dials refused because nothing listened at the peer's address (onPeerDown). */
  connectionsRefused: number
  snapshotsSent: number
  snapshotsSendFailed: number
  snapshotsReceived: number
  /** Inbound snapshot streams that failed (size, checksum, malformed, cut, timeout). */
  snapshotsReceiveFailed: number
}

export function emptyStats(): TransportStats {
  return {
    messagesSent: 0,
    batchesSent: 0,
    messagesReceived: 0,
    messagesDroppedUnreachable: 0,
    messagesDroppedQueueFull: 0,
    messagesDroppedOversized: 0,
    framesUndecodable: 0,
    messagesInvalid: 0,
    messagesMisaddressed: 0,
    connectionsClosedProtocol: 0,
    handshakesRejected: 0,
    handshakesRefused: 0,
    connectionFailures: 0,
    connectionsRefused: 0,
    snapshotsSent: 0,
    snapshotsSendFailed: 0,
    snapshotsReceived: 0,
    snapshotsReceiveFailed: 0,
  }
}
