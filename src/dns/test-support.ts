/**
 * Helpers for the DNS tests: queries built byte by byte (so tests control every field, including
 * malformed ones), answers read back with dns2's decoder (an independent reader of what we
 * wrote), a small catalog, and UDP/TCP exchanges with a deadline instead of sleeps.
 */
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import dns2 from 'dns2'
import { MemoryCatalogView } from '../catalog/view.ts'

const { Packet } = dns2

export interface QueryOptions {
  id?: number
  /** Adds an OPT record advertising this UDP payload size. */
  ednsBytes?: number
  ednsVersion?: number
  rd?: boolean
  qclass?: number
}

export function encodeQuery(name: string, qtype: number, options: QueryOptions = {}): Buffer {
  const labels = name
    .split('.')
    .filter((label) => label !== '')
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]))
  const header = Buffer.alloc(12)
  header.writeUInt16BE(options.id ?? 0x1234, 0)
  header.writeUInt16BE(options.rd === false ? 0 : 0x0100, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(options.ednsBytes === undefined ? 0 : 1, 10)
  const tail = Buffer.alloc(4)
  tail.writeUInt16BE(qtype, 0)
  tail.writeUInt16BE(options.qclass ?? 1, 2)
  const parts = [header, ...labels, Buffer.from([0]), tail]
  if (options.ednsBytes !== undefined) {
    const opt = Buffer.alloc(11)
    opt.writeUInt16BE(41, 1)
    opt.writeUInt16BE(options.ednsBytes, 3)
    opt[6] = options.ednsVersion ?? 0
    parts.push(opt)
  }
  return Buffer.concat(parts)
}

export type Decoded = ReturnType<typeof Packet.parse>

export function decodeAnswer(bytes: Buffer): Decoded {
  return Packet.parse(bytes)
}

/** Flags straight from the header, independent of any decoder. */
export function headerOf(bytes: Buffer) {
  const flags = bytes.readUInt16BE(2)
  return {
    id: bytes.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    rcode: flags & 0xf,
    qdcount: bytes.readUInt16BE(4),
    ancount: bytes.readUInt16BE(6),
    nscount: bytes.readUInt16BE(8),
    arcount: bytes.readUInt16BE(10),
  }
}

/**
 * The catalog every DNS test starts from: `web` (3 passing instances on n1..n3, one warning on
 * n4, one critical on n5; tag `v2` on web-2 only), `db` (one IPv6 instance), `big` (`bigCount`
 * passing instances, enough to overflow 512 bytes), and nodes n1..n5 with metadata on n1.
 */
export const bigCount = 300

export function sampleView(): MemoryCatalogView {
  const view = new MemoryCatalogView()
  for (let i = 1; i <= 5; i++) {
    const meta: Record<string, string> =
      i === 1 ? { zone: 'z1', region: 'r1', 'rfc1035-raw': 'just-value' } : {}
    view.setNode({ name: `n${i}`, address: `10.0.0.${i}`, meta })
  }
  view.setNode({ name: 'n6', address: 'fd00::6', meta: {} })
  const statuses = ['passing', 'passing', 'passing', 'warning', 'critical'] as const
  statuses.forEach((status, index) => {
    const i = index + 1
    const tags = i === 2 ? ['v2'] : ['v1']
    view.setInstance({
      id: `web-${i}`,
      service: 'web',
      node: `n${i}`,
      address: `10.0.0.${i}`,
      port: 8080 + i,
      tags,
      status,
    })
  })
  view.setInstance({
    id: 'db-1',
    service: 'db',
    node: 'n6',
    address: 'fd00::6',
    port: 5432,
    tags: [],
    status: 'passing',
  })
  for (let i = 1; i <= bigCount; i++) {
    const address = `10.1.${i >> 8}.${i & 0xff}`
    view.setInstance({
      id: `big-${i}`,
      service: 'big',
      node: `b${i}`,
      address,
      port: 9000,
      tags: [],
      status: 'passing',
    })
  }
  return view
}

/** Sends one datagram and waits for the first answer, or fails after `deadlineMs`. */
export function udpExchange(port: number, query: Buffer, deadlineMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no UDP answer within ${deadlineMs} ms`))
    }, deadlineMs)
    socket.on('message', (message) => {
      clearTimeout(timer)
      socket.close()
      resolve(message)
    })
    socket.send(query, port, '127.0.0.1')
  })
}

/** Sends length-prefixed queries on one TCP connection, half-closes, collects the answers. */
export function tcpExchange(port: number, queries: Buffer[], deadlineMs = 10_000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`TCP exchange did not finish within ${deadlineMs} ms`))
    }, deadlineMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(splitTcpMessages(Buffer.concat(chunks)))
    })
    socket.end(Buffer.concat(queries.map(withLengthPrefix)))
  })
}

export function withLengthPrefix(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(message.length)
  return Buffer.concat([prefix, message])
}

function splitTcpMessages(stream: Buffer): Buffer[] {
  const messages: Buffer[] = []
  let at = 0
  while (at + 2 <= stream.length) {
    const length = stream.readUInt16BE(at)
    messages.push(stream.subarray(at + 2, at + 2 + length))
    at += 2 + length
  }
  return messages
}
