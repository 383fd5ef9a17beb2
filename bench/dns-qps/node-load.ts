/**
 * bench/dns-qps/node-load: a closed-loop DNS load generator in Node, for machines without dnsperf
 * (or with --generator node). Same shape as dnsperf's run: `clients` UDP sockets or TCP
 * connections, `outstanding` queries in flight in all (spread evenly over the clients), the
 * mix's questions in turn, a new query as soon as an answer (or a timeout) frees a slot.
 *
 * Counts answers by rcode and their mean size, and keeps every latency in a histogram of
 * latencyBucketUs buckets (p50/p99 exact to one bucket; beyond latencyBucketsMax buckets all fall
 * in the last). The figure is answers received before the deadline / seconds; queries still in
 * flight at the deadline are awaited (at most queryTimeoutMs) and not counted. A query without an
 * answer after queryTimeoutMs is lost and replaced.
 *
 * The generator is one event loop: above a few tens of thousands of queries per second it is
 * itself the limit, which the figure cannot tell apart from the server's; dnsperf (C, one
 * thread) goes further.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import { encodeQuery, withLengthPrefix } from '../../src/dns/test-support.ts'
import { Rcode, RecordType } from '../../src/dns/wire.ts'
import type { LoadOptions, LoadResult } from './dnsperf.ts'
import type { Mix } from './mixes.ts'

const queryTimeoutMs = 2_000
const timeoutScanMs = 100
const latencyBucketUs = 10
/** 10 µs x 200,000 = 2 s, the query timeout: every answered latency has a bucket. */
const latencyBucketsMax = 200_000
const idSpace = 0x1_0000

const rcodeNames = new Map<number, string>(Object.entries(Rcode).map(([name, code]) => [code, name]))

/** The run's shared state: the question cursor and the tallies. */
class Tally {
  readonly histogram = new Uint32Array(latencyBucketsMax)
  readonly rcodes = new Map<string, number>()
  running = true
  sent = 0
  completed = 0
  completedInWindow = 0
  lost = 0
  responseBytes = 0
  #cursor = 0

  constructor(readonly queries: readonly Buffer[]) {}

  nextQuery(): Buffer {
    const query = this.queries[this.#cursor]!
    this.#cursor = (this.#cursor + 1) % this.queries.length
    return query
  }

  answered(bytes: Buffer, latencyMs: number): void {
    this.completed++
    if (this.running) this.completedInWindow++
    this.responseBytes += bytes.length
    const name = rcodeNames.get(bytes.readUInt16BE(2) & 0xf) ?? `RCODE${bytes.readUInt16BE(2) & 0xf}`
    this.rcodes.set(name, (this.rcodes.get(name) ?? 0) + 1)
    const bucket = Math.min(latencyBucketsMax - 1, Math.floor((latencyMs * 1000) / latencyBucketUs))
    this.histogram[bucket]!++
  }

  percentileMs(p: number): number {
    const rank = Math.ceil((p / 100) * this.completed)
    let seen = 0
    for (let bucket = 0; bucket < latencyBucketsMax; bucket++) {
      seen += this.histogram[bucket]!
      if (seen >= rank && seen > 0) return ((bucket + 0.5) * latencyBucketUs) / 1000
    }
    return Number.NaN
  }
}

/** One socket or connection with its own id space and at most `slots` queries in flight. */
class LoadClient {
  /** Query id → performance.now() at send. Size <= slots. */
  readonly inflight = new Map<number, number>()
  #nextId = 0
  #pending: Buffer = Buffer.alloc(0)

  constructor(
    readonly tally: Tally,
    readonly slots: number,
    readonly sendBytes: (query: Buffer) => void,
  ) {}

  fill(): void {
    while (this.tally.running && this.inflight.size < this.slots) this.#send()
  }

  onAnswer(bytes: Buffer): void {
    if (bytes.length < 12 || (bytes[2]! & 0x80) === 0) throw new Error('load: an answer without QR')
    const id = bytes.readUInt16BE(0)
    const sentAt = this.inflight.get(id)
    if (sentAt === undefined) return // late: already counted lost
    this.inflight.delete(id)
    this.tally.answered(bytes, performance.now() - sentAt)
    this.fill()
  }

  /** TCP: splits the stream into length-prefixed messages. */
  onTcpData(chunk: Buffer): void {
    let pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const length = pending.readUInt16BE(0)
      this.onAnswer(pending.subarray(2, 2 + length))
      pending = pending.subarray(2 + length)
    }
    this.#pending = Buffer.from(pending)
  }

  expire(now: number): void {
    for (const [id, sentAt] of this.inflight) {
      if (now - sentAt < queryTimeoutMs) continue
      this.inflight.delete(id)
      this.tally.lost++
    }
    this.fill()
  }

  #send(): void {
    let id = this.#nextId
    while (this.inflight.has(id)) id = (id + 1) % idSpace
    this.#nextId = (id + 1) % idSpace
    const query = Buffer.from(this.tally.nextQuery())
    query.writeUInt16BE(id, 0)
    this.inflight.set(id, performance.now())
    this.tally.sent++
    this.sendBytes(query)
  }
}

export async function runNodeLoad(port: number, mix: Mix, o: LoadOptions): Promise<LoadResult> {
  const tally = new Tally(mix.questions.map((q) => encodeQuery(q.name, RecordType[q.type])))
  const clients: LoadClient[] = []
  const closers: (() => void)[] = []
  let failure: Error | undefined
  const fail = (error: Error) => {
    failure ??= error
    tally.running = false
  }
  try {
    for (let i = 0; i < o.clients; i++) {
      const slots = Math.floor(o.outstanding / o.clients) + (i < o.outstanding % o.clients ? 1 : 0)
      if (slots === 0) continue
      const open = mix.transport === 'udp' ? openUdp : openTcp
      const { client, close } = await open(port, tally, slots, fail)
      clients.push(client)
      closers.push(close)
    }
    const start = performance.now()
    for (const client of clients) client.fill()
    const scan = setInterval(() => {
      for (const client of clients) client.expire(performance.now())
    }, timeoutScanMs)
    await new Promise((resolve) => setTimeout(resolve, o.seconds * 1000))
    tally.running = false
    const seconds = (performance.now() - start) / 1000
    const drainUntil = performance.now() + queryTimeoutMs
    while (clients.some((c) => c.inflight.size > 0) && performance.now() < drainUntil && !failure)
      await new Promise((resolve) => setTimeout(resolve, 10))
    clearInterval(scan)
    if (failure !== undefined) throw failure
    return {
      queriesPerSecond: tally.completedInWindow / seconds,
      sent: tally.sent,
      completed: tally.completed,
      lost: tally.lost + clients.reduce((n, c) => n + c.inflight.size, 0),
      rcodes: tally.rcodes,
      responseBytesMean: tally.completed === 0 ? 0 : tally.responseBytes / tally.completed,
      latency: { kind: 'p50/p99', first: tally.percentileMs(50), second: tally.percentileMs(99) },
    }
  } finally {
    for (const close of closers) close()
  }
}

type Opened = { client: LoadClient; close: () => void }

async function openUdp(port: number, tally: Tally, slots: number, fail: (e: Error) => void): Promise<Opened> {
  const socket: UdpSocket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()))
  socket.connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  const client = new LoadClient(tally, slots, (query) => socket.send(query))
  socket.on('message', (message) => guard(() => client.onAnswer(message), fail))
  socket.on('error', fail)
  return { client, close: () => socket.close() }
}

async function openTcp(port: number, tally: Tally, slots: number, fail: (e: Error) => void): Promise<Opened> {
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  socket.setNoDelay(true)
  const client = new LoadClient(tally, slots, (query) => socket.write(withLengthPrefix(query)))
  socket.on('data', (chunk: Buffer) => guard(() => client.onTcpData(chunk), fail))
  socket.on('error', fail)
  socket.on('close', () => {
    if (tally.running) fail(new Error('load: the server closed a TCP connection during the run'))
  })
  return { client, close: () => socket.destroy() }
}

function guard(body: () => void, fail: (e: Error) => void): void {
  try {
    body()
  } catch (error) {
    fail(error as Error)
  }
}
