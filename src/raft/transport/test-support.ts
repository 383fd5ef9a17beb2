/**
 * Helpers shared by the transport's tests: transports on loopback port 0 with recorded events, a
 * log that remembers what it was told, a sample of every message type, a raw-socket client that
 * speaks (or breaks) the wire protocol, and waitFor, which polls with setImmediate up to a
 * deadline instead of sleeping.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Message, NodeId } from '../core/types.ts'
import { encodeFrame, FrameDecoder, FrameKind } from './frame.ts'
import type { Hello } from './handshake.ts'
import { decodeBody, encodeBody } from './message-codec.ts'
import type { PeerTransportOptions, TransportLog } from './options.ts'
import { createPeerTransport, type TcpPeerTransport } from './tcp-transport.ts'

export async function waitFor(predicate: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const deadline = performance.now() + deadlineMs
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

export interface LogRecord {
  level: 'warn' | 'info' | 'debug'
  message: string
  fields: Record<string, unknown>
}

export function recordingLog(): TransportLog & { records: LogRecord[] } {
  const records: LogRecord[] = []
  const at = (level: LogRecord['level']) => (fields: object, message: string) => {
    records.push({ level, message, fields: fields as Record<string, unknown> })
  }
  return { records, warn: at('warn'), info: at('info'), debug: at('debug') }
}

export interface Harness {
  id: NodeId
  transport: TcpPeerTransport
  address: { host: string; port: number }
  received: Message[]
  unreachable: NodeId[]
  snapshotStatus: { peer: NodeId; ok: boolean }[]
  /** onPeerDown reports, in order. */
  peersDown: NodeId[]
  log: ReturnType<typeof recordingLog>
}

export const testClusterId = 'cairn-test'

/** Fast reconnects so tests do not wait seconds for a restarted peer. */
export const fastLimits = {
  reconnectBackoffMinMs: 5,
  reconnectBackoffMaxMs: 20,
  dialTimeoutMs: 2_000,
  handshakeTimeoutMs: 2_000,
} as const

export async function startHarness(
  id: NodeId,
  options: Partial<Omit<PeerTransportOptions, 'memberId' | 'events'>> = {},
): Promise<Harness> {
  const log = recordingLog()
  const harness = {
    id,
    received: [] as Message[],
    unreachable: [] as NodeId[],
    snapshotStatus: [] as { peer: NodeId; ok: boolean }[],
    peersDown: [] as NodeId[],
    log,
  } as Harness
  harness.transport = createPeerTransport({
    clusterId: testClusterId,
    listen: { host: '127.0.0.1', port: 0 },
    log,
    ...fastLimits,
    ...options,
    memberId: id,
    events: {
      onMessage: (m) => harness.received.push(m),
      onUnreachable: (peer) => harness.unreachable.push(peer),
      onSnapshotStatus: (peer, ok) => harness.snapshotStatus.push({ peer, ok }),
      onPeerDown: (peer) => harness.peersDown.push(peer),
    },
  })
  harness.address = await harness.transport.start()
  return harness
}

/** Makes every harness know every other one. */
export function connectAll(harnesses: readonly Harness[]): void {
  for (const a of harnesses) for (const b of harnesses) if (a !== b) a.transport.setPeer(b.id, b.address)
}

const bytes = (n: number, seed = 1): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

/** One message of every type from `from` to `to` (the snapshot is small; big ones are built apart). */
export function everyMessageType(from: NodeId, to: NodeId): Message[] {
  const base = { from, to, term: 7 }
  return [
    {
      ...base,
      type: 'app',
      index: 10,
      logTerm: 6,
      commit: 9,
      entries: [
        { index: 11, term: 7, type: 'normal', data: bytes(5) },
        { index: 12, term: 7, type: 'normal', data: new Uint8Array(0) },
        {
          index: 13,
          term: 7,
          type: 'conf',
          data: new Uint8Array(0),
          change: { type: 'addLearner', nodeId: 4, context: bytes(3, 9) },
        },
        {
          index: 14,
          term: 7,
          type: 'conf',
          data: new Uint8Array(0),
          change: { type: 'removeNode', nodeId: 2 },
        },
      ],
    },
    { ...base, type: 'appResp', index: 14, reject: true, rejectHint: 3, logTerm: 2 },
    { ...base, type: 'vote', lastLogIndex: 14, lastLogTerm: 7, force: false },
    { ...base, type: 'preVote', lastLogIndex: 14, lastLogTerm: 7, force: true },
    { ...base, type: 'voteResp', reject: false },
    { ...base, type: 'preVoteResp', reject: true },
    { ...base, type: 'heartbeat', commit: 14, readRound: 3 },
    { ...base, type: 'heartbeatResp', readRound: 3 },
    {
      ...base,
      type: 'snap',
      snapshot: {
        meta: { index: 20, term: 7, confState: { voters: [1, 2, 3], learners: [4] } },
        data: bytes(1000),
      },
    },
    { ...base, term: 0, type: 'prop', entries: [{ index: 0, term: 0, type: 'normal', data: bytes(8) }] },
    { ...base, term: 0, type: 'readIndex', ctx: 'read-1' },
    { ...base, type: 'readIndexResp', ctx: 'read-1', index: 14 },
    { ...base, type: 'timeoutNow' },
    { ...base, term: 0, type: 'transferLeader', transferee: 3 },
  ]
}

export function heartbeat(from: NodeId, to: NodeId, commit = 1): Message {
  return { type: 'heartbeat', from, to, term: 1, commit, readRound: 0 }
}

/** A raw TCP client for speaking to a transport byte by byte. */
export class RawPeer {
  readonly socket: Socket
  readonly frames: { kind: number; value: unknown }[] = []
  closed = false
  readonly #decoder = new FrameDecoder(64 * 1024 * 1024)

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk, (kind, body) => this.frames.push({ kind, value: decodeBody(body) }))
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
    })
  }

  static async connect(address: { host: string; port: number }): Promise<RawPeer> {
    const socket = connect(address)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawPeer(socket)
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  writeRecord(kind: number, record: unknown): void {
    this.socket.write(encodeFrame(kind as FrameKind, encodeBody(record)))
  }

  hello(hello: Partial<Hello> & Pick<Hello, 'from' | 'to'>): void {
    this.writeRecord(FrameKind.hello, { protocol: 1, clusterId: testClusterId, stream: 'messages', ...hello })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.socket.destroy()
    await waitFor(() => this.closed, 'raw socket closed')
  }
}

/** A raw TCP acceptor that accepts every handshake, then lets a test decide what to do. */
export class RawAcceptor {
  readonly server: Server
  readonly connections: RawAccepted[] = []
  address = { host: '127.0.0.1', port: 0 }
  /** false: take the hello and never answer it. */
  answerHello = true

  private constructor(onFrame: (connection: RawAccepted, kind: number, body: Buffer) => void) {
    this.server = createServer((socket) => {
      const connection = new RawAccepted(socket, onFrame, () => this.answerHello)
      this.connections.push(connection)
    })
  }

  static async start(
    onFrame: (connection: RawAccepted, kind: number, body: Buffer) => void,
  ): Promise<RawAcceptor> {
    const acceptor = new RawAcceptor(onFrame)
    await new Promise<void>((resolve) => acceptor.server.listen(0, '127.0.0.1', resolve))
    const address = acceptor.server.address()
    if (typeof address !== 'object' || address === null) throw new Error('no address')
    acceptor.address = { host: '127.0.0.1', port: address.port }
    return acceptor
  }

  async stop(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

export class RawAccepted {
  readonly socket: Socket
  hello: Hello | undefined
  bytesReceived = 0
  readonly kinds: number[] = []
  readonly #decoder = new FrameDecoder(64 * 1024 * 1024)

  constructor(
    socket: Socket,
    onFrame: (connection: RawAccepted, kind: number, body: Buffer) => void,
    answerHello: () => boolean,
  ) {
    this.socket = socket
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length
      this.#decoder.push(chunk, (kind, body) => {
        this.kinds.push(kind)
        if (kind === FrameKind.hello && this.hello === undefined) {
          this.hello = decodeBody(body) as Hello
          if (answerHello()) socket.write(encodeFrame(FrameKind.helloReply, encodeBody({ ok: true })))
          return
        }
        onFrame(this, kind, body)
      })
    })
  }
}
