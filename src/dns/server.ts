/**
 * The DNS server: one UDP socket and one TCP listener on the same address and port, both handing
 * queries to one Responder. Not yet started by the agent (issue 5 wires it to `--dns-addr`).
 *
 * Why not dns2's UDPServer/TCPServer: they decode every packet with dns2's Packet.parse before
 * our code sees it (about 2 s of CPU for one hostile 12-byte header, see query.ts), drop what it
 * cannot parse (no FORMERR), and cut an oversized UDP answer at a byte count, mid-record. The
 * sockets here are thin: framing, limits and lifecycle only.
 *
 * UDP: a datagram longer than queryBytesMax is dropped unread; the answer goes back to the sender.
 * TCP (RFC 7766): 2-byte length-prefixed messages, pipelined, answered in order. A message
 * longer than queryBytesMax, a zero length, or a query that must be dropped closes the
 * connection; so does tcpIdleMs without a byte, tcpWriteBytesMax unread answer bytes, or a
 * connection past tcpConnectionsMax. Buffered input per connection stays under
 * 2 + queryBytesMax plus one socket chunk.
 * Invariants: the server never throws on input (every handler is total, socket errors are
 * counted); close() releases both sockets and destroys every open connection.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer as createTcpServer, isIP, type Socket, type Server as TcpServer } from 'node:net'
import type { CatalogView } from '../catalog/view.ts'
import { CairnError } from '../errors.ts'
import {
  type DnsOptions,
  queryBytesMax,
  resolveDnsOptions,
  tcpConnectionsMax,
  tcpWriteBytesMax,
} from './limits.ts'
import { Responder, type ResponderStats } from './responder.ts'

export interface DnsServerStats extends ResponderStats {
  cacheHits: number
  cacheMisses: number
  cacheInvalidations: number
  tcpConnectionsRefused: number
  socketErrors: number
}

/** Tries to find a port free for both UDP and TCP when asked for port 0. */
const samePortAttemptsMax = 20

export class DnsServer {
  readonly #responder: Responder
  readonly #options: DnsOptions
  readonly #connections = new Set<Socket>()
  #udp: UdpSocket | null = null
  #tcp: TcpServer | null = null
  #tcpConnectionsRefused = 0
  #socketErrors = 0

  constructor(
    view: CatalogView,
    options: Parameters<typeof resolveDnsOptions>[0] = {},
    random?: () => number,
  ) {
    this.#options = resolveDnsOptions(options)
    this.#responder = new Responder(view, this.#options, random)
  }

  get options(): DnsOptions {
    return this.#options
  }

  get stats(): DnsServerStats {
    const cache = this.#responder.cache
    return {
      ...this.#responder.stats,
      cacheHits: cache.hits,
      cacheMisses: cache.misses,
      cacheInvalidations: cache.invalidations,
      tcpConnectionsRefused: this.#tcpConnectionsRefused,
      socketErrors: this.#socketErrors,
    }
  }

  /** Binds UDP and TCP on host:port (port 0: one free port for both). Returns the port. */
  async listen(host = '127.0.0.1', port = 8600): Promise<number> {
    if (this.#udp !== null) throw new Error('DnsServer.listen called twice')
    if (isIP(host) === 0) throw new CairnError('CONFIG_INVALID', `dns address: not an IP literal: ${host}`)
    for (let attempt = 0; ; attempt++) {
      const tcp = await this.#listenTcp(host, port)
      const tcpPort = (tcp.address() as { port: number }).port
      try {
        this.#udp = await this.#bindUdp(host, tcpPort)
        this.#tcp = tcp
        return tcpPort
      } catch (error) {
        await new Promise<void>((resolve) => tcp.close(() => resolve()))
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
        if (!inUse || port !== 0 || attempt + 1 >= samePortAttemptsMax) throw error
      }
    }
  }

  async close(): Promise<void> {
    const udp = this.#udp
    const tcp = this.#tcp
    this.#udp = null
    this.#tcp = null
    for (const connection of this.#connections) connection.destroy()
    this.#connections.clear()
    await Promise.all([
      udp === null ? undefined : new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp === null ? undefined : new Promise<void>((resolve) => tcp.close(() => resolve())),
    ])
  }

  #listenTcp(host: string, port: number): Promise<TcpServer> {
    return new Promise((resolve, reject) => {
      const server = createTcpServer((socket) => this.#accept(socket))
      server.once('error', reject)
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject)
        server.on('error', () => this.#socketErrors++)
        resolve(server)
      })
    })
  }

  #bindUdp(host: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4')
      socket.once('error', reject)
      socket.on('message', (message, remote) =>
        this.#onDatagram(socket, message, remote.address, remote.port),
      )
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off('error', reject)
        socket.on('error', () => this.#socketErrors++)
        resolve(socket)
      })
    })
  }

  #onDatagram(socket: UdpSocket, message: Buffer, address: string, port: number): void {
    if (message.length > queryBytesMax) {
      this.#responder.stats.dropped++
      return
    }
    const answer = this.#responder.respond(message, 'udp')
    if (answer === null) return
    socket.send(answer, port, address, (error) => {
      if (error) this.#socketErrors++
    })
  }

  #accept(socket: Socket): void {
    if (this.#connections.size >= tcpConnectionsMax || this.#tcp === null) {
      this.#tcpConnectionsRefused++
      socket.destroy()
      return
    }
    this.#connections.add(socket)
    socket.setTimeout(this.#options.tcpIdleMs, () => socket.destroy())
    socket.on('error', () => this.#socketErrors++)
    socket.on('close', () => this.#connections.delete(socket))
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      pending = this.#drainTcp(socket, pending)
    })
  }

  /** Answers every whole message in `pending`; returns the unconsumed rest (empty once closed). */
  #drainTcp(socket: Socket, input: Buffer): Buffer {
    let pending = input
    while (pending.length >= 2 && !socket.destroyed) {
      const length = pending.readUInt16BE(0)
      if (length === 0 || length > queryBytesMax) {
        this.#responder.stats.dropped++
        socket.destroy()
        return Buffer.alloc(0)
      }
      if (pending.length < 2 + length) break
      const answer = this.#responder.respond(pending.subarray(2, 2 + length), 'tcp')
      pending = pending.subarray(2 + length)
      if (answer === null) {
        socket.destroy()
        return Buffer.alloc(0)
      }
      const prefix = Buffer.alloc(2)
      prefix.writeUInt16BE(answer.length)
      socket.write(Buffer.concat([prefix, answer]))
      if (socket.writableLength > tcpWriteBytesMax) socket.destroy()
    }
    // Keep the rest in a buffer of its own so that it does not pin a large socket chunk.
    return pending.length === 0 ? pending : Buffer.from(pending)
  }
}
