/**
 * Options of the TCP peer transport: identity, address, events, and every limit with its default.
 *
 * Every queue, buffer and timer of the transport is bounded by one of the limits below; the
 * defaults are documented in docs/transport.md. resolveOptions() asserts that a configuration is
 * coherent (a snapshot chunk fits in a frame, backoff min <= max, ...): a bad configuration is a
 * programmer error and stops the caller.
 */
import { constants as bufferConstants } from 'node:buffer'
import pino from 'pino'
import type { NodeId } from '../core/types.ts'
import { frameHeaderBytes } from './frame.ts'
import type { PeerTransportEvents } from './transport.ts'
import { assertTransport } from './transport-error.ts'

/** What the transport logs with; a pino Logger fits. */
export interface TransportLog {
  warn(fields: object, message: string): void
  info(fields: object, message: string): void
  debug(fields: object, message: string): void
}

export interface PeerTransportLimits {
  /** Largest frame (kind byte plus body) sent or accepted; a longer length prefix closes the connection. */
  frameBytesMax: number
  /** Bytes of snapshot data per chunk frame. */
  snapshotChunkBytes: number
  /** Largest snapshot sent or accepted (the receiver holds one whole snapshot in memory). */
  snapshotBytesMax: number
  /** A snapshot stream with no socket activity for this long fails (both sides). */
  snapshotIdleTimeoutMs: number
  /** Snapshot streams received at the same time; more are refused at the handshake. */
  inboundSnapshotStreamsMax: number
  /** Messages queued for one peer while it is connecting or slow; past it, new messages are dropped. */
  peerQueueMessagesMax: number
  /** Estimated bytes of the messages queued for one peer; past it, new messages are dropped. */
  peerQueueBytesMax: number
  /** A peer whose socket holds more unsent bytes than this is slow: new messages queue. */
  peerWriteBufferBytesHigh: number
  /** Reconnect delay after the first failure; it doubles per failure up to reconnectBackoffMaxMs. */
  reconnectBackoffMinMs: number
  reconnectBackoffMaxMs: number
  /** Connect plus handshake answer, on the dialing side. */
  dialTimeoutMs: number
  /** An accepted connection must complete its handshake within this. */
  handshakeTimeoutMs: number
  /** Accepted connections open at the same time (server maxConnections). */
  inboundConnectionsMax: number
  /** Appends kept each way for the send/receive rates of /v2/stats/self (etcd's statsQueue: 200). */
  statsRateWindowMessages: number
  /** The rates are 0 once the newest append in the window is older than this (etcd: 1 s). */
  statsRateIdleMs: number
  /** An append latency probe unanswered for this long is abandoned (transport-stats.ts). */
  statsLatencyProbeTimeoutMs: number
}

export interface PeerTransportOptions extends Partial<PeerTransportLimits> {
  /** Every member of one cluster uses the same id; connections with another id are refused. */
  clusterId: string
  memberId: NodeId
  /** Port 0 binds a free port; start() resolves it. */
  listen: { host: string; port: number }
  events: PeerTransportEvents
  /** Default: a pino logger at level info on stdout. */
  log?: TransportLog
  /** Uniform in [0, 1): the jitter of reconnect delays. Default Math.random. */
  random?: () => number
  /** Monotonic milliseconds for the stats' rates and latencies. Default performance.now. */
  now?: () => number
}

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export const clusterIdBytesMax = 256

/** Largest rate window: two windows of two Float64Arrays each, 1 MiB in all at this size. */
export const statsRateWindowMessagesMax = 32_768

/**
 * TCP keepalive probes start after this much silence on any peer connection, so a peer host that
 * vanished without a reset is noticed on an idle connection too (the OS default is two hours).
 */
export const tcpKeepAliveInitialDelayMs = 10_000

export const peerTransportDefaults: PeerTransportLimits = {
  frameBytesMax: 4 * MiB,
  snapshotChunkBytes: 1 * MiB,
  // One snapshot is one buffer on the receiver: Node 20 caps a buffer at 4 GiB.
  snapshotBytesMax: Math.min(8 * GiB, bufferConstants.MAX_LENGTH),
  snapshotIdleTimeoutMs: 10_000,
  inboundSnapshotStreamsMax: 2,
  peerQueueMessagesMax: 1024,
  peerQueueBytesMax: 64 * MiB,
  peerWriteBufferBytesHigh: 4 * MiB,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 2_000,
  dialTimeoutMs: 2_000,
  handshakeTimeoutMs: 2_000,
  inboundConnectionsMax: 256,
  statsRateWindowMessages: 200,
  statsRateIdleMs: 1_000,
  statsLatencyProbeTimeoutMs: 10_000,
}

export interface ResolvedOptions extends PeerTransportLimits {
  clusterId: string
  memberId: NodeId
  listen: { host: string; port: number }
  events: PeerTransportEvents
  log: TransportLog
  random: () => number
  now: () => number
}

export function resolveOptions(options: PeerTransportOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    ...peerTransportDefaults,
    ...withoutUndefined(options),
    clusterId: options.clusterId,
    memberId: options.memberId,
    listen: { host: options.listen.host, port: options.listen.port },
    events: options.events,
    log: options.log ?? pino({ name: 'cairn-transport' }),
    random: options.random ?? Math.random,
    now: options.now ?? (() => performance.now()),
  }
  assertResolved(resolved)
  return resolved
}

function assertResolved(o: ResolvedOptions): void {
  assertTransport(Number.isSafeInteger(o.memberId) && o.memberId > 0, `bad memberId ${o.memberId}`)
  const idBytes = Buffer.byteLength(o.clusterId)
  assertTransport(idBytes > 0 && idBytes <= clusterIdBytesMax, 'clusterId must be 1..256 bytes')
  assertTransport(
    Number.isSafeInteger(o.listen.port) && o.listen.port >= 0 && o.listen.port < 65536,
    'bad port',
  )
  for (const key of Object.keys(peerTransportDefaults) as (keyof PeerTransportLimits)[]) {
    const value = o[key]
    assertTransport(
      Number.isSafeInteger(value) && value > 0,
      `${key} must be a positive integer, got ${value}`,
    )
  }
  assertTransport(o.frameBytesMax < 2 ** 32, 'frameBytesMax must fit the 32-bit length prefix')
  assertTransport(o.frameBytesMax >= 64 * KiB, 'frameBytesMax must be at least 64 KiB')
  assertTransport(
    o.snapshotChunkBytes + frameHeaderBytes <= o.frameBytesMax,
    'snapshotChunkBytes must fit in one frame',
  )
  assertTransport(
    o.snapshotBytesMax <= bufferConstants.MAX_LENGTH,
    'snapshotBytesMax exceeds the largest buffer',
  )
  assertTransport(o.reconnectBackoffMinMs <= o.reconnectBackoffMaxMs, 'reconnect backoff min > max')
  assertTransport(
    o.statsRateWindowMessages <= statsRateWindowMessagesMax,
    `statsRateWindowMessages must be at most ${statsRateWindowMessagesMax}`,
  )
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
