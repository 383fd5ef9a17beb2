/**
 * HttpFront: the agent's HTTP server in front of fastify. It offers each request to its fast paths
 * first; a fast path answers the few hot requests it knows in full (plain key reads and writes:
 * etcd-v2/plain-reads.ts, plain-writes.ts) and declines everything else, which fastify then routes
 * as usual.
 *
 * Why: on a local read of one key, fastify's routing, hooks and reply object were about a fifth of
 * the member's CPU per request (leader CPU per read under 16 readers: 81-99 µs through fastify,
 * 64-74 µs answered here; docs/api-etcd-v2.md "Plain reads"); on a write, about a tenth of the
 * leader's.
 *
 * Invariants:
 * - A fast path either takes a request or declines it having written nothing, read no body and
 *   changed nothing, so fastify sees the request as it came. One that took a request answers it
 *   completely, possibly later (a quorum read waits for its barrier; a write for its body and its
 *   commit), or hands it to fastify through `fallback` having written and read nothing, or closes
 *   the connection when its client went away mid-body.
 * - A fast path answers exactly what fastify's route would (status, headers in the same order and
 *   case, body); test/api-etcd-v2-plain-reads.test.ts compares the two byte for byte.
 * - A fast path that throws never takes the server down: the request goes to fastify if nothing was
 *   written (else its connection is closed), and the error is logged.
 * - Once close() is called (the agent is stopping: fastify's preClose), every request goes to
 *   fastify, which answers 503 while it closes.
 * - The server is made as fastify makes its own (its keepAliveTimeout, requestTimeout,
 *   connectionTimeout and maxRequestsPerSocket), so only the request listener differs.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { FastifyServerFactory } from 'fastify'

/**
 * Takes the request and returns true, or returns false having touched nothing. A path that took a
 * request answers it in full, now or later, or calls `exits.fallback` once, having written
 * nothing, to hand it to fastify after all (a quorum read whose barrier failed in an unexpected
 * way); one that throws later (a bug) calls `exits.failed`.
 */
export type FastPath = (req: IncomingMessage, res: ServerResponse, exits: FastPathExits) => boolean

export interface FastPathExits {
  /** Hands the request to fastify (nothing may have been written). */
  fallback(): void
  /** A later throw: logged; to fastify if nothing was written, else the connection is closed. */
  failed(error: unknown): void
  /**
   * An unexpected error (a bug) met by a request the path answers itself (with the route's 500):
   * only logged, as the route logs its own.
   */
  unexpected(error: unknown): void
}

/** Where the front reports a fast path that threw (a bug): the agent's logger. */
export interface FrontLog {
  error(obj: object, msg: string): void
}

export class HttpFront {
  readonly #paths: FastPath[] = []
  readonly #log: FrontLog | undefined
  #closed = false
  #answered = 0

  constructor(log?: FrontLog) {
    this.#log = log
  }

  /** Requests a fast path took (tests check that the path was taken). */
  get answered(): number {
    return this.#answered
  }

  add(path: FastPath): void {
    this.#paths.push(path)
  }

  /** From now on every request goes to fastify. */
  close(): void {
    this.#closed = true
  }

  /**
   * A fast path threw (a bug; a path that takes a request later reports its own throws here too):
   * logged, and the request goes to fastify if nothing was written yet, else its connection is
   * closed. The server never fails on a request.
   */
  #failed(error: unknown, res: ServerResponse, fallback: () => void): void {
    this.#log?.error({ err: error }, 'http front: a fast path failed; the request goes to fastify')
    if (!res.headersSent) fallback()
    else res.destroy()
  }

  /** fastify's serverFactory option: an HTTP/1 server whose requests meet the fast paths first. */
  readonly serverFactory: FastifyServerFactory = (handler, options): Server => {
    const http = options.http
    // The same for every request: made once, not per request.
    const unexpected = (error: unknown): void =>
      this.#log?.error({ err: error }, 'http front: unexpected error')
    const server = createServer(typeof http === 'object' && http !== null ? http : {}, (req, res) => {
      if (!this.#closed) {
        const fallback = (): void => handler(req, res)
        const exits: FastPathExits = {
          fallback,
          failed: (error) => this.#failed(error, res, fallback),
          unexpected,
        }
        for (const path of this.#paths) {
          let taken: boolean
          try {
            taken = path(req, res, exits)
          } catch (error) {
            this.#failed(error, res, fallback)
            return
          }
          if (taken) {
            this.#answered++
            return
          }
        }
      }
      handler(req, res)
    })
    // fastify resolves its defaults into the options it hands over (keepAliveTimeout 72 s, ...).
    const keepAliveTimeout = numberOption(options, 'keepAliveTimeout')
    const requestTimeout = numberOption(options, 'requestTimeout')
    const connectionTimeout = numberOption(options, 'connectionTimeout')
    const maxRequestsPerSocket = numberOption(options, 'maxRequestsPerSocket')
    if (keepAliveTimeout !== undefined) server.keepAliveTimeout = keepAliveTimeout
    if (requestTimeout !== undefined) server.requestTimeout = requestTimeout
    if (connectionTimeout !== undefined) server.setTimeout(connectionTimeout)
    if (maxRequestsPerSocket !== undefined && maxRequestsPerSocket > 0) {
      server.maxRequestsPerSocket = maxRequestsPerSocket
    }
    return server
  }
}

function numberOption(options: Record<string, unknown>, name: string): number | undefined {
  const value = options[name]
  return typeof value === 'number' ? value : undefined
}
