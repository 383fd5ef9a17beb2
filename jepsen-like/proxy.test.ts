/**
 * Proves the fault proxy over real loopback sockets, with a fake member behind it (decodes frames,
 * answers hellos) and fake dialers in front: frames pass unchanged and in order, the hello names
 * the directed link, a block cuts the link's open connections and closes new ones before the
 * member is dialled while other links keep working, latency with jitter keeps order, drop loses
 * only batch frames, a connection that does not open with a known hello is closed, and while its
 * member has no process the proxy refuses dials as the member's machine would.
 * No timing assertions: every wait is a poll on an observable event.
 */
import { createServer, type Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Prng } from '../src/raft/core/prng.ts'
import { encodeFrame, FrameDecoder, FrameKind } from '../src/raft/transport/frame.ts'
import { decodeBody, encodeBody } from '../src/raft/transport/message-codec.ts'
import { FaultProxy } from './proxy.ts'

interface Received {
  connection: number
  kind: number
  body: unknown
}

/** A stand-in member: records every frame with the connection it came on; answers hello. */
class FakeMember {
  readonly frames: Received[] = []
  connections = 0
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  port = 0

  constructor() {
    this.#server = createServer((socket) => {
      const connection = ++this.connections
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
      socket.on('error', () => {})
      const decoder = new FrameDecoder(1 << 20)
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk, (kind, body) => {
          this.frames.push({
            connection,
            kind,
            body: kind === FrameKind.snapshotChunk ? 'raw' : decodeBody(body),
          })
          if (kind === FrameKind.hello)
            socket.write(encodeFrame(FrameKind.helloReply, encodeBody({ ok: true })))
        })
      })
    })
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()))
    const address = this.#server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** A dialer: connects to the proxy, sends frames, collects what comes back, knows when it closed. */
class FakeDialer {
  readonly socket = new Socket()
  readonly replies: number[] = []
  closed = false

  static async connect(port: number): Promise<FakeDialer> {
    const d = new FakeDialer()
    d.socket.on('error', () => {})
    d.socket.on('close', () => {
      d.closed = true
    })
    const decoder = new FrameDecoder(1 << 20)
    d.socket.on('data', (chunk: Buffer) => decoder.push(chunk, (kind) => d.replies.push(kind)))
    await new Promise<void>((resolve) => d.socket.connect(port, '127.0.0.1', () => resolve()))
    return d
  }

  hello(from: number, to = 2): void {
    const body = { protocol: 1, clusterId: 'c', from, to, stream: 'messages' }
    this.socket.write(encodeFrame(FrameKind.hello, encodeBody(body)))
  }

  send(kind: FrameKind, body: unknown): void {
    const bytes = kind === FrameKind.snapshotChunk ? Buffer.from('chunk') : encodeBody(body)
    this.socket.write(encodeFrame(kind, bytes))
  }
}

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const names = new Map([
  [1, 'n1'],
  [3, 'n3'],
])

let member: FakeMember
let proxy: FaultProxy
const dialers: FakeDialer[] = []

async function setup(seed = 1): Promise<void> {
  member = new FakeMember()
  await member.start()
  const prng = new Prng(seed)
  proxy = new FaultProxy({
    member: 'n2',
    listen: { host: '127.0.0.1', port: 0 },
    target: { host: '127.0.0.1', port: member.port },
    nameOf: (id) => names.get(id),
    random: () => prng.float(),
  })
  await proxy.start()
}

async function dial(): Promise<FakeDialer> {
  const d = await FakeDialer.connect(proxy.port)
  dialers.push(d)
  return d
}

afterEach(async () => {
  for (const d of dialers.splice(0)) d.socket.destroy()
  await proxy?.stop()
  await member?.stop()
})

const batchesOf = (frames: Received[]) => frames.filter((f) => f.kind === FrameKind.batch).map((f) => f.body)

describe('FaultProxy', () => {
  it('relays frames unchanged and in order, and the hello reply back to the dialer', async () => {
    await setup()
    const d = await dial()
    d.hello(1)
    for (let i = 0; i < 50; i++) d.send(FrameKind.batch, [{ i }])
    await until('50 batches', () => batchesOf(member.frames).length === 50)
    expect(member.frames[0]?.kind).toBe(FrameKind.hello)
    expect(batchesOf(member.frames)).toEqual(Array.from({ length: 50 }, (_, i) => [{ i }]))
    await until('the hello reply', () => d.replies.includes(FrameKind.helloReply))
    expect(proxy.stats().framesForwarded).toBe(51)
  })

  it('a block cuts the link open connections, refuses new ones before dialling the member, and spares other links', async () => {
    await setup()
    const x = await dial()
    x.hello(1)
    x.send(FrameKind.batch, ['before'])
    const z = await dial()
    z.hello(3)
    await until('both links up', () => member.connections === 2 && batchesOf(member.frames).length === 1)

    proxy.setFaults('n1', { blocked: true })
    await until('the blocked connection is closed', () => x.closed)
    const x2 = await dial()
    x2.hello(1)
    x2.send(FrameKind.batch, ['while blocked'])
    await until('the new blocked connection is closed', () => x2.closed)
    z.send(FrameKind.batch, ['other link'])
    await until('the other link still delivers', () => batchesOf(member.frames).length === 2)
    expect(batchesOf(member.frames)).toEqual([['before'], ['other link']])
    expect(member.connections).toBe(2) // the refused connection never reached the member
    expect(proxy.stats().connectionsCut).toBe(1)
    expect(proxy.stats().connectionsRefused).toBe(1)

    proxy.setFaults('n1', { blocked: false })
    const x3 = await dial()
    x3.hello(1)
    x3.send(FrameKind.batch, ['healed'])
    await until('the healed link delivers', () => batchesOf(member.frames).length === 3)
    expect(member.connections).toBe(3)
  })

  it('while its member has no process it listens nowhere: dials are refused, open relays closed, then it listens again on the same port', async () => {
    await setup()
    const port = proxy.port
    const x = await dial()
    x.hello(1)
    x.send(FrameKind.batch, ['before'])
    await until('the link delivers', () => batchesOf(member.frames).length === 1)

    await proxy.setListening(false)
    await until('the open relay is closed', () => x.closed)
    const refused = await new Promise<string | undefined>((resolve) => {
      const socket = new Socket()
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code))
      socket.connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(undefined)
      })
    })
    expect(refused).toBe('ECONNREFUSED')

    await proxy.setListening(true)
    expect(proxy.port).toBe(port)
    const x2 = await dial()
    x2.hello(1)
    x2.send(FrameKind.batch, ['after'])
    await until('the link delivers again', () => batchesOf(member.frames).length === 2)
  })

  it('a failed listen (its port taken meanwhile) is reported to that call only: later calls and stop() still work', async () => {
    await setup()
    const port = proxy.port
    await proxy.setListening(false)
    const squatter = createServer()
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve))
    await expect(proxy.setListening(true)).rejects.toThrow(/EADDRINUSE/)
    await new Promise<void>((resolve) => squatter.close(() => resolve()))
    await proxy.setListening(true)
    const x = await dial()
    x.hello(1)
    x.send(FrameKind.batch, ['after the port came back'])
    await until('the link delivers', () => batchesOf(member.frames).length === 1)
  })

  it('latency with jitter delays frames but keeps their order', async () => {
    await setup(7)
    proxy.setFaults('n1', { latencyMs: 20, jitterMs: 15 })
    const d = await dial()
    d.hello(1)
    for (let i = 0; i < 30; i++) d.send(FrameKind.batch, [i])
    await until('30 batches', () => batchesOf(member.frames).length === 30)
    expect(batchesOf(member.frames)).toEqual(Array.from({ length: 30 }, (_, i) => [i]))
  })

  it('drop loses batch frames only: hello and snapshot frames always pass', async () => {
    await setup()
    proxy.setFaults('n1', { dropProbability: 1 })
    const d = await dial()
    d.hello(1)
    for (let i = 0; i < 10; i++) d.send(FrameKind.batch, [i])
    d.send(FrameKind.snapshotHeader, { dataBytes: 5 })
    d.send(FrameKind.snapshotChunk, undefined)
    d.send(FrameKind.snapshotEnd, { dataBytes: 5 })
    await until('the snapshot end', () => member.frames.some((f) => f.kind === FrameKind.snapshotEnd))
    expect(member.frames.map((f) => f.kind)).toEqual([
      FrameKind.hello,
      FrameKind.snapshotHeader,
      FrameKind.snapshotChunk,
      FrameKind.snapshotEnd,
    ])
    expect(proxy.stats().framesDropped).toBe(10)
  })

  it('drop with a probability loses some batches and delivers the rest in order', async () => {
    await setup(3)
    proxy.setFaults('n1', { dropProbability: 0.5 })
    const d = await dial()
    d.hello(1)
    for (let i = 0; i < 200; i++) d.send(FrameKind.batch, [i])
    d.send(FrameKind.snapshotHeader, { end: true })
    await until('the marker', () => member.frames.some((f) => f.kind === FrameKind.snapshotHeader))
    const delivered = batchesOf(member.frames).map((b) => (b as number[])[0] as number)
    expect(delivered.length + proxy.stats().framesDropped).toBe(200)
    expect(delivered.length).toBeGreaterThan(0)
    expect(delivered.length).toBeLessThan(200)
    expect([...delivered].sort((a, b) => a - b)).toEqual(delivered)
  })

  it('closes a connection whose first frame is not a hello from a known member', async () => {
    await setup()
    const unknown = await dial()
    unknown.hello(99)
    const notHello = await dial()
    notHello.send(FrameKind.batch, ['sneaky'])
    await until('both closed', () => unknown.closed && notHello.closed)
    expect(member.connections).toBe(0)
    expect(proxy.stats().connectionsInvalid).toBe(2)
  })
})
