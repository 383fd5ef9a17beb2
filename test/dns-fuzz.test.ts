/**
 * Proves that hostile input never crashes the DNS server or gets an unbounded answer, over real
 * UDP and TCP sockets: random bytes, valid queries cut short or with random bytes changed,
 * names with hundreds of labels, compression pointers that loop, headers with every count at
 * 65535, broken TCP framing. Every reply must be a response (QR set) within its size limit, and
 * after each batch the server must still answer a good query. The same inputs are also thrown
 * straight at the responder, many more times, where a throw would fail the property at once.
 * Seeds are printed by fast-check on failure; replay with `{ seed, path }` in fc.assert.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveDnsOptions } from '../src/dns/limits.ts'
import { Responder } from '../src/dns/responder.ts'
import { DnsServer } from '../src/dns/server.ts'
import { encodeQuery, headerOf, sampleView, tcpExchange, withLengthPrefix } from '../src/dns/test-support.ts'
import { RecordType } from '../src/dns/wire.ts'

const validQueries = [
  encodeQuery('web.service.cairn', RecordType.A),
  encodeQuery('_web._tcp.service.cairn', RecordType.SRV, { ednsBytes: 1232 }),
  encodeQuery('big.service.cairn', RecordType.A, { ednsBytes: 4096 }),
  encodeQuery('n1.node.cairn', RecordType.TXT),
  encodeQuery('cairn', RecordType.SOA),
]

function header(counts: [number, number, number, number], flags = 0x0100): Buffer {
  const bytes = Buffer.alloc(12)
  bytes.writeUInt16BE(0x4242, 0)
  bytes.writeUInt16BE(flags, 2)
  counts.forEach((count, i) => {
    bytes.writeUInt16BE(count, 4 + 2 * i)
  })
  return bytes
}

const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 700 }).map((bytes) => Buffer.from(bytes)),
  fc
    .tuple(fc.constantFrom(...validQueries), fc.nat())
    .map(([query, cut]) => query.subarray(0, cut % (query.length + 1))),
  fc
    .tuple(
      fc.constantFrom(...validQueries),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1 }),
    )
    .map(([query, edits]) => {
      const bytes = Buffer.from(query)
      for (const [at, value] of edits) bytes[at % bytes.length] = value
      return bytes
    }),
  // Huge label counts: up to 340 one-byte labels (a name past 255 bytes, a packet past 512).
  fc.integer({ min: 100, max: 340 }).map((labels) => {
    const name = Buffer.concat([
      Buffer.alloc(labels * 2, Buffer.from([1, 0x61])),
      Buffer.from([0, 0, 1, 0, 1]),
    ])
    return Buffer.concat([header([1, 0, 0, 0]), name])
  }),
  // Compression pointers that loop: in the question, and in an additional record's name.
  fc.constantFrom(
    Buffer.concat([header([1, 0, 0, 0]), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]),
    Buffer.concat([header([1, 0, 0, 0]), Buffer.from([1, 0x61, 0xc0, 0x0c, 0, 1, 0, 1])]),
    Buffer.concat([
      header([1, 0, 0, 1]),
      Buffer.from([1, 0x61, 0, 0, 1, 0, 1]),
      Buffer.from([0xc0, 0x1d, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]),
    ]),
  ),
  // Every section count at its maximum, with and without a body.
  fc
    .uint8Array({ maxLength: 100 })
    .map((body) => Buffer.concat([header([0xffff, 0xffff, 0xffff, 0xffff]), body])),
)

function checkReply(reply: Buffer, sizeMax: number): void {
  expect(reply.length).toBeGreaterThanOrEqual(12)
  expect(reply.length).toBeLessThanOrEqual(sizeMax)
  expect(headerOf(reply).qr).toBe(true)
}

describe('the responder on hostile input', () => {
  it('never throws, and answers within 512 bytes over UDP or not at all', () => {
    const responder = new Responder(sampleView(), resolveDnsOptions())
    fc.assert(
      fc.property(hostile, (bytes) => {
        const reply = responder.respond(bytes, 'udp')
        if (reply !== null) {
          checkReply(reply, 4096)
          if (headerOf(reply).rcode !== 0) expect(reply.length).toBeLessThanOrEqual(512)
          expect(headerOf(reply).id).toBe(bytes.readUInt16BE(0))
        }
      }),
      { numRuns: 5000 },
    )
  })
})

describe('the server on hostile input over real sockets', () => {
  let server: DnsServer
  let port: number
  let client: UdpSocket
  const sentinel = encodeQuery('web.service.cairn', RecordType.A, { id: 0xbeef })
  const isSentinelReply = (reply: Buffer) =>
    reply.length > sentinel.length &&
    reply.readUInt16BE(0) === 0xbeef &&
    reply.subarray(12, 31).equals(sentinel.subarray(12, 31))

  beforeAll(async () => {
    server = new DnsServer(sampleView())
    port = await server.listen('127.0.0.1', 0)
    client = createSocket('udp4')
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  })

  afterAll(async () => {
    client.close()
    await server.close()
  })

  /** Sends the batch then the sentinel; resolves with every reply up to the sentinel's. */
  function udpBatch(batch: Buffer[]): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      const replies: Buffer[] = []
      const timer = setTimeout(() => {
        client.off('message', onMessage)
        reject(new Error('the server did not answer the good query within 10 s'))
      }, 10_000)
      const onMessage = (reply: Buffer) => {
        if (!isSentinelReply(reply)) return void replies.push(reply)
        clearTimeout(timer)
        client.off('message', onMessage)
        resolve(replies)
      }
      client.on('message', onMessage)
      for (const bytes of batch) client.send(bytes, port, '127.0.0.1')
      client.send(sentinel, port, '127.0.0.1')
    })
  }

  it('over UDP: replies are bounded responses, and a good query is answered after every batch', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostile, { minLength: 1, maxLength: 20 }), async (batch) => {
        const replies = await udpBatch(batch)
        expect(replies.length).toBeLessThanOrEqual(batch.length)
        for (const reply of replies) checkReply(reply, 4096)
      }),
      { numRuns: 150 },
    )
    expect(server.stats.socketErrors).toBe(0)
  })

  /** Writes raw bytes on a fresh connection, half-closes, resolves with what came back. */
  function tcpRaw(stream: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      const chunks: Buffer[] = []
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error('the server did not close the connection within 10 s'))
      }, 10_000)
      socket.on('data', (chunk) => chunks.push(chunk))
      socket.on('error', () => {})
      socket.on('close', () => {
        clearTimeout(timer)
        resolve(Buffer.concat(chunks))
      })
      socket.end(stream)
    })
  }

  it('over TCP: broken framing and hostile messages close or answer, and the server keeps serving', async () => {
    const stream = fc.oneof(
      fc.uint8Array({ maxLength: 1500 }).map((bytes) => Buffer.from(bytes)),
      fc
        .array(hostile, { minLength: 1, maxLength: 5 })
        .map((messages) => Buffer.concat(messages.map(withLengthPrefix))),
      fc
        .integer({ min: 513, max: 0xffff })
        .map((length) => withLengthPrefix(Buffer.alloc(length)).subarray(0, 600)),
    )
    await fc.assert(
      fc.asyncProperty(stream, async (bytes) => {
        const back = await tcpRaw(bytes)
        let at = 0
        while (at + 2 <= back.length) {
          const length = back.readUInt16BE(at)
          checkReply(back.subarray(at + 2, at + 2 + length), 65535)
          at += 2 + length
        }
        expect(at).toBe(back.length)
      }),
      { numRuns: 150 },
    )
    const [answer] = await tcpExchange(port, [sentinel])
    expect(headerOf(answer!)).toMatchObject({ id: 0xbeef, rcode: 0, ancount: 4 })
  })
})
