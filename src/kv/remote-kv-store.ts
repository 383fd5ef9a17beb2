/**
 * RemoteKvStore: the store interface (kv-store.ts) of a client agent, served by the store servers
 * over their internal store API (/_cairn/store/v1/, docs/store-api.md; server side src/api/store).
 *
 * Connections: one undici Pool per server for calls (keep-alive, at most requestConnectionsMax
 * connections each), and one connection of its own per upstream watch stream (watchStreamsMax in
 * all; remote-watch.ts says why a stream does not borrow a pooled one). Request timeouts are
 * undici's (headersTimeout, bodyTimeout = requestTimeoutMs); the injected clock times retries,
 * reconnects and the watch resume window.
 *
 * Calls go to the current server. On a failure that another server may not have, the call moves
 * to the next server and retries, at most attemptsMax attempts in all (one round over the servers,
 * then retryDelayMs before the next round):
 *   - reads (range, leaseTimeToLive) and leaseKeepAlive (it only sets the deadline to now + TTL,
 *     so applying it twice is harmless) retry on any connection failure, timeout, non-catalogue
 *     5xx, and RAFT_STOPPED / RAFT_REQUEST_TIMEOUT / RAFT_NO_LEADER / RAFT_NOT_MEMBER /
 *     RAFT_LEADER_TRANSFER_IN_PROGRESS;
 *   - writes (put, delete, txn, leaseGrant, leaseRevoke) retry only when the request surely was not
 *     applied: the connection was never made (refused, connect timeout, unresolvable, unreachable)
 *     or the server answered that it did not propose it (RAFT_NO_LEADER, RAFT_NOT_MEMBER,
 *     RAFT_LEADER_TRANSFER_IN_PROGRESS). Once the request may have reached a server (connection
 *     reset or closed mid-request, no answer within requestTimeoutMs, RAFT_STOPPED or
 *     RAFT_REQUEST_TIMEOUT from the server), a retry could apply the write twice (a second put
 *     creates a second revision and fires watchers again, a txn's compares are judged again,
 *     leaseGrant with id 0 grants a second lease), so the caller gets RAFT_REQUEST_TIMEOUT ("a
 *     write may still be applied later") naming the server and what happened, and decides.
 * When every attempt failed, the last error is thrown (RAFT_NO_LEADER "no store server answered"
 * when no server could be reached at all). KvErrors (the store's answers) are never retried, nor
 * is a read whose answer is over responseBytesMax (KV_VALUE_TOO_LARGE: every server would answer
 * the same).
 *
 * Watches: watch() returns a real Watcher whose owner is this store, fed by an upstream NDJSON
 * stream (remote-watch.ts: resume without gap or repeat across server loss, heartbeats, slow
 * consumers). Live stream watches (no sinceRevision) with the same key, recursive and
 * includeHidden share one upstream; a watch from a revision, and a one-shot, has its own.
 * Differences from a local store, all forced by watch() being synchronous: errors the server
 * raises when the watch starts (KV_EVENT_INDEX_CLEARED for a compacted sinceRevision, a bad key
 * past the local checks, no room) cancel the watcher with that error instead of being thrown;
 * `startRevision` is the newest revision this client had seen (not the server's head), and a watch
 * without sinceRevision reports events from the server's next revision, never one at or before
 * that startRevision.
 *
 * Invariants: `#current` is a valid index; every local watcher is in #upstreamOf exactly while it
 * is syncing or live; an upstream is registered exactly while it has watchers; after close() no
 * call is made and no timer or socket is left.
 */
import { type Dispatcher, Pool } from 'undici'
import { CairnError, type ErrorCode, isCairnError } from '../errors.ts'
import type { KvEvent } from './events.ts'
import { normalizeKey } from './key-path.ts'
import { isKvError, KvError } from './kv-error.ts'
import type { KvStore, ReadOptions } from './kv-store.ts'
import type { LeaseGrantRequest, LeaseRevokeResult, LeaseState } from './lease-ops.ts'
import type { LeaseInfo } from './leases.ts'
import { defaultKvConfig } from './limits.ts'
import type {
  DeleteRequest,
  DeleteResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  TxnRequest,
  TxnResult,
} from './mvcc.ts'
import {
  AnswerTooLargeError,
  type RemoteClock,
  RemoteWatch,
  type RemoteWatchHost,
  readJson,
  systemRemoteClock,
} from './remote-watch.ts'
import { errorCodeHeader, errorOfBody, storeApiPrefix } from './store-wire.ts'
import type { WatchRequest } from './watch-hub.ts'
import type { LastChange, WatchSpec } from './watch-match.ts'
import { Watcher, type WatcherOwner } from './watcher.ts'

export { type RemoteClock, systemRemoteClock } from './remote-watch.ts'

export interface RemoteKvLimits {
  /** Keep-alive connections per server for calls (watch streams have their own, below). */
  requestConnectionsMax: number
  /** Upstream watch streams open at once (each holds one connection); past it watch() throws KV_WATCHERS_MAX. */
  watchStreamsMax: number
  /** Local watchers at once; past it watch() throws KV_WATCHERS_MAX. */
  watchersMax: number
  /** Events a local watcher's consumer may leave untaken; past it the watcher is cancelled (KV_WATCHER_SLOW). */
  watcherEventsMax: number
  /** Attempts of one call across servers (first try included). */
  attemptsMax: number
  /** Wait before another round over the servers (calls), and the first watch reconnect backoff. */
  retryDelayMs: number
  /** Longest wait between two watch reconnect attempts (the backoff doubles up to it). */
  watchRetryDelayMsMax: number
  /** A TCP connect that takes longer failed (and surely sent nothing). */
  connectTimeoutMs: number
  /** Largest answer body of a call (a big range); past it the call fails. */
  responseBytesMax: number
  /** Largest error body read (of a call or a refused watch). */
  errorBodyBytesMax: number
  /** A watch stream silent this long is dead (servers send a heartbeat every 5 s by default). */
  watchIdleMsMax: number
  /** A broken watch that no server resumed for this long is cancelled (KV_WATCHER_CLEARED). */
  watchResumeMsMax: number
  /** Longest line of a watch stream (an event carries at most two values of 1.5 MiB, JSON-escaped). */
  watchLineBytesMax: number
}

export const remoteKvLimitsDefault: Readonly<RemoteKvLimits> = {
  requestConnectionsMax: 8,
  watchStreamsMax: 64,
  watchersMax: 10_000,
  watcherEventsMax: defaultKvConfig.watcherEventsMax,
  attemptsMax: 6,
  retryDelayMs: 100,
  watchRetryDelayMsMax: 2_000,
  connectTimeoutMs: 3_000,
  responseBytesMax: 256 * 1024 * 1024,
  errorBodyBytesMax: 64 * 1024,
  watchIdleMsMax: 15_000,
  watchResumeMsMax: 30_000,
  watchLineBytesMax: 32 * 1024 * 1024,
}

/** Longer than a server's own Raft request timeout (5 s), so its typed answer normally comes first. */
export const requestTimeoutMsDefault = 10_000

export interface RemoteKvStoreOptions {
  /** Base URLs of the store servers, `http://host:port`. */
  servers: readonly string[]
  /** One attempt of one call gets no answer within this: it failed (a write: maybe applied). */
  requestTimeoutMs?: number
  clock?: RemoteClock
  limits?: Partial<RemoteKvLimits>
}

type CallKind = 'read' | 'write'

/** One HTTP request of another surface, sent to the servers as is (RemoteKvStore.forward). */
export interface ForwardRequest {
  method: string
  /** Path and query, as the client sent them: `/v2/keys/a?recursive=true`. */
  path: string
  headers?: Record<string, string>
  body?: string | Buffer | undefined
  /** Sending it twice is harmless (GET, HEAD): any failure may move it to another server. */
  idempotent: boolean
}

export interface ForwardAnswer {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  /** The server that answered. */
  server: string
}

interface Server {
  readonly url: string
  readonly pool: Pool
}

/** Errors of a connection that was never made: nothing reached the server. */
const notSentCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
])

/** Server answers meaning "not proposed, nothing done": any call may go elsewhere. */
const notProposedCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'RAFT_NO_LEADER',
  'RAFT_NOT_MEMBER',
  'RAFT_LEADER_TRANSFER_IN_PROGRESS',
])

/** Server answers after which a read may go elsewhere, but a write may have been applied. */
const unavailableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['RAFT_STOPPED', 'RAFT_REQUEST_TIMEOUT'])

type Attempt =
  | { kind: 'ok'; value: unknown }
  /** The server answered an error; `retry` says which calls may try another server. */
  | { kind: 'answered'; error: Error; retry: 'any' | 'reads' | 'none' }
  /** No connection was made. */
  | { kind: 'notSent'; error: Error }
  /** The request may have reached the server; `final`: another server would answer the same. */
  | { kind: 'lost'; error: Error; why: string; final?: true }

export class RemoteKvStore implements KvStore, WatcherOwner {
  readonly #servers: Server[]
  readonly #clock: RemoteClock
  readonly #limits: RemoteKvLimits
  readonly #requestTimeoutMs: number
  readonly #upstreamOf = new Map<Watcher, RemoteWatch>()
  readonly #shared = new Map<string, RemoteWatch>()
  readonly #upstreams = new Set<RemoteWatch>()
  readonly #host: RemoteWatchHost
  #current = 0
  #known = 0
  #nextWatcherId = 1
  #closed = false

  constructor(options: RemoteKvStoreOptions) {
    if (options.servers.length === 0) throw new Error('remote kv store: no servers')
    this.#limits = { ...remoteKvLimitsDefault, ...options.limits }
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new Error(`remote kv store: ${name} must be positive`)
    }
    this.#clock = options.clock ?? systemRemoteClock
    this.#requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault
    this.#servers = options.servers.map((url) => ({ url: originOf(url), pool: this.#poolFor(originOf(url)) }))
    this.#host = this.#makeHost()
  }

  /** The server calls go to now. */
  get currentServer(): string {
    return (this.#servers[this.#current] as Server).url
  }

  /** The newest store revision this client has seen (results, errors, events, heartbeats). */
  get knownRevision(): number {
    return this.#known
  }

  /** Local watchers (syncing or live). */
  get watcherCount(): number {
    return this.#upstreamOf.size
  }

  /** Upstream watch streams (each one connection while open). */
  get upstreamCount(): number {
    return this.#upstreams.size
  }

  async range(req: RangeRequest, options?: ReadOptions): Promise<RangeResult> {
    const body = options?.serializable === undefined ? req : { ...req, serializable: options.serializable }
    return this.#observe(await this.#call<RangeResult>('range', body, 'read'))
  }

  async put(req: PutRequest): Promise<PutResult> {
    return this.#observe(await this.#call<PutResult>('put', req, 'write'))
  }

  async delete(req: DeleteRequest): Promise<DeleteResult> {
    return this.#observe(await this.#call<DeleteResult>('delete', req, 'write'))
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    return this.#observe(await this.#call<TxnResult>('txn', req, 'write'))
  }

  leaseGrant(req: LeaseGrantRequest): Promise<LeaseState> {
    return this.#call<LeaseState>('lease/grant', req, 'write')
  }

  leaseKeepAlive(id: number): Promise<LeaseState> {
    return this.#call<LeaseState>('lease/keepalive', { id }, 'read')
  }

  async leaseRevoke(id: number): Promise<LeaseRevokeResult> {
    return this.#observe(await this.#call<LeaseRevokeResult>('lease/revoke', { id }, 'write'))
  }

  async leaseTimeToLive(id: number, options?: ReadOptions): Promise<LeaseInfo | undefined> {
    const body = options?.serializable === undefined ? { id } : { id, serializable: options.serializable }
    const answer = await this.#call<{ lease: LeaseInfo | null }>('lease/ttl', body, 'read')
    return answer.lease ?? undefined
  }

  async lastChange(spec: WatchSpec, sinceRevision: number, options?: ReadOptions): Promise<LastChange> {
    const body = { ...spec, sinceRevision, ...(options?.serializable === undefined ? {} : options) }
    return this.#observe(await this.#call<LastChange>('changes', body, 'read'))
  }

  /**
   * Sends one HTTP request of another surface (a client agent's /v2 forwarding) to the servers,
   * over the same pooled connections as the store calls, and gives back the whole answer. It moves
   * to the next server on the same rules as a store call: always when nothing was sent or the
   * server says it did not propose it (the X-Cairn-Error-Code header), and for an idempotent
   * request also when the connection broke, no answer came in time, or the server answered 5xx.
   * When no server gave a usable answer, the last answer is returned, else the call's error.
   */
  async forward(req: ForwardRequest): Promise<ForwardAnswer> {
    const kind: CallKind = req.idempotent ? 'read' : 'write'
    let last: Error | undefined
    let fallback: ForwardAnswer | undefined
    let reached = false
    for (let attempt = 0; attempt < this.#limits.attemptsMax; attempt++) {
      if (this.#closed) throw new CairnError('RAFT_STOPPED', 'the remote store is closed')
      if (attempt > 0 && attempt % this.#servers.length === 0) await this.#delay(this.#limits.retryDelayMs)
      const index = this.#current
      const server = this.#servers[index] as Server
      let answer: ForwardAnswer
      try {
        answer = await this.#forwardOnce(server, req)
      } catch (error) {
        const outcome = this.#failureOf(error)
        this.#checkRetry(outcome, kind, server.url, req.path)
        reached ||= outcome.kind !== 'notSent'
        last = outcome.error
        this.#failed(index)
        continue
      }
      reached = true
      const code = String(answer.headers[errorCodeHeader] ?? '') as ErrorCode
      const retry =
        notProposedCodes.has(code) ||
        (req.idempotent && (answer.statusCode >= 500 || unavailableCodes.has(code)))
      if (!retry) return answer
      fallback = answer
      this.#failed(index)
    }
    if (fallback !== undefined) return fallback
    if (reached) throw last as Error
    const detail = `no store server answered (${this.#servers.map((s) => s.url).join(', ')}): ${last?.message}`
    throw new CairnError('RAFT_NO_LEADER', detail, { cause: last })
  }

  watch(req: WatchRequest): Watcher {
    const known = this.#known
    if (this.#closed) throw new KvError('KV_WATCHER_CLEARED', 'the remote store is closed', known)
    if (this.#upstreamOf.size >= this.#limits.watchersMax) {
      throw new KvError('KV_WATCHERS_MAX', `${this.#upstreamOf.size} watchers`, known)
    }
    const spec = {
      key: normalizeKey(req.key, known),
      recursive: req.recursive === true,
      includeHidden: req.includeHidden === true,
      stream: req.stream === true,
    }
    const from = req.sinceRevision !== undefined && req.sinceRevision > 0 ? req.sinceRevision : 0
    // Every watch with the same key, recursive and includeHidden may share one upstream stream
    // (one-shots end locally, with their first event): a live watch joins any; a watch from a
    // revision joins one that will surely deliver everything from there (joinRevision), and not one
    // still waiting for its first answer from a past revision, which may yet be refused as compacted.
    const shareKey = `${spec.key}\n${spec.recursive}\n${spec.includeHidden}`
    let upstream = this.#shared.get(shareKey)
    if (upstream !== undefined && !joinable(upstream, from)) upstream = undefined
    if (upstream === undefined) {
      if (this.#upstreams.size >= this.#limits.watchStreamsMax) {
        throw new KvError(
          'KV_WATCHERS_MAX',
          `watchStreamsMax: ${this.#upstreams.size} upstream watches`,
          known,
        )
      }
      const shared = !this.#shared.has(shareKey)
      upstream = new RemoteWatch(this.#host, { ...spec, stream: true }, from, shared ? shareKey : undefined)
      this.#upstreams.add(upstream)
      if (shared) this.#shared.set(shareKey, upstream)
      upstream.start()
    }
    const sinceRevision = from > 0 ? from : Math.max(known + 1, upstream.joinRevision)
    const watcher = new Watcher(this, this.#nextWatcherId++, { ...spec, sinceRevision, startRevision: known })
    this.#upstreamOf.set(watcher, upstream)
    upstream.add(watcher)
    return watcher
  }

  /** WatcherOwner: a remote watcher's events are all in its buffer. */
  take(watcher: Watcher): KvEvent[] {
    return watcher.drain()
  }

  /** WatcherOwner: detaches the watcher (its upstream closes with its last watcher). */
  cancel(watcher: Watcher, error: KvError | undefined): void {
    const upstream = this.#upstreamOf.get(watcher)
    this.#upstreamOf.delete(watcher)
    watcher.setStatus('canceled', error)
    upstream?.remove(watcher)
  }

  /** Cancels every watcher (KV_WATCHER_CLEARED), refuses new calls, and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const error = new KvError('KV_WATCHER_CLEARED', 'the remote store is closed', this.#known)
    for (const upstream of [...this.#upstreams]) upstream.cancelAll(error)
    await Promise.all(this.#servers.map((server) => server.pool.destroy().catch(() => {})))
  }

  #poolFor(url: string): Pool {
    return new Pool(url, {
      connections: this.#limits.requestConnectionsMax,
      connect: { timeout: this.#limits.connectTimeoutMs },
    })
  }

  #makeHost(): RemoteWatchHost {
    return {
      clock: this.#clock,
      limits: { ...this.#limits, requestTimeoutMs: this.#requestTimeoutMs },
      server: () => ({ index: this.#current, url: (this.#servers[this.#current] as Server).url }),
      failed: (index) => this.#failed(index),
      observed: (revision) => {
        if (revision > this.#known) this.#known = revision
      },
      knownRevision: () => this.#known,
      cancel: (watcher, error) => this.cancel(watcher, error),
      completed: (watcher) => {
        const upstream = this.#upstreamOf.get(watcher)
        this.#upstreamOf.delete(watcher)
        upstream?.remove(watcher)
      },
      ended: (upstream) => {
        this.#upstreams.delete(upstream)
        if (upstream.shareKey !== undefined && this.#shared.get(upstream.shareKey) === upstream)
          this.#shared.delete(upstream.shareKey)
      },
    }
  }

  #failed(index: number): void {
    if (this.#current === index) this.#current = (index + 1) % this.#servers.length
  }

  #observe<T extends { revision: number }>(result: T): T {
    if (result.revision > this.#known) this.#known = result.revision
    return result
  }

  async #call<T>(path: string, body: unknown, kind: CallKind): Promise<T> {
    let last: Error | undefined
    let reached = false
    for (let attempt = 0; attempt < this.#limits.attemptsMax; attempt++) {
      if (this.#closed) throw new CairnError('RAFT_STOPPED', 'the remote store is closed')
      if (attempt > 0 && attempt % this.#servers.length === 0) await this.#delay(this.#limits.retryDelayMs)
      const index = this.#current
      const server = this.#servers[index] as Server
      const outcome = await this.#attempt(server, path, body)
      if (outcome.kind === 'ok') return outcome.value as T
      this.#checkRetry(outcome, kind, server.url, path)
      reached ||= outcome.kind !== 'notSent'
      last = outcome.error
      this.#failed(index)
    }
    if (reached) throw last as Error
    const detail = `no store server answered (${this.#servers.map((s) => s.url).join(', ')}): ${last?.message}`
    throw new CairnError('RAFT_NO_LEADER', detail, { cause: last })
  }

  /** Throws what the caller gets when this failure may not be retried on another server. */
  #checkRetry(outcome: Exclude<Attempt, { kind: 'ok' }>, kind: CallKind, url: string, path: string): void {
    if (outcome.kind === 'answered') {
      if (isKvError(outcome.error)) this.#host.observed(outcome.error.index)
      if (outcome.retry === 'any' || (outcome.retry === 'reads' && kind === 'read')) return
      throw outcome.error
    }
    if (outcome.kind === 'notSent') return
    if (kind === 'write') {
      const detail = `${url} ${outcome.why} after the ${path} request was sent; it may or may not be applied`
      throw new CairnError('RAFT_REQUEST_TIMEOUT', detail, { cause: outcome.error })
    }
    if (outcome.final === true) throw new KvError('KV_VALUE_TOO_LARGE', `${url} ${outcome.why}`, this.#known)
  }

  async #forwardOnce(server: Server, req: ForwardRequest): Promise<ForwardAnswer> {
    const response = await server.pool.request({
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body: req.body,
      headersTimeout: this.#requestTimeoutMs,
      bodyTimeout: this.#requestTimeoutMs,
    })
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length
      if (size > this.#limits.responseBytesMax) throw new AnswerTooLargeError(this.#limits.responseBytesMax)
      chunks.push(chunk as Buffer)
    }
    const index = Number(response.headers['x-etcd-index'])
    if (Number.isSafeInteger(index)) this.#host.observed(index)
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: Buffer.concat(chunks),
      server: server.url,
    }
  }

  /** What a thrown request error means for a retry. */
  #failureOf(error: unknown): Exclude<Attempt, { kind: 'ok' }> {
    const cause = error as Error & { code?: string }
    if (cause instanceof AnswerTooLargeError) {
      const why = `answered more than responseBytesMax (${this.#limits.responseBytesMax} bytes)`
      return { kind: 'lost', error: cause, why, final: true }
    }
    if (cause.code === 'UND_ERR_HEADERS_TIMEOUT' || cause.code === 'UND_ERR_BODY_TIMEOUT')
      return { kind: 'lost', error: cause, why: `gave no answer within ${this.#requestTimeoutMs} ms` }
    if (cause.code !== undefined && notSentCodes.has(cause.code)) return { kind: 'notSent', error: cause }
    return { kind: 'lost', error: cause, why: `failed (${cause.code ?? cause.message})` }
  }

  async #attempt(server: Server, path: string, body: unknown): Promise<Attempt> {
    try {
      // undici's own timers, not an abort signal: aborting makes undici open a spare connection
      // (see remote-watch.ts); a timeout closes the connection and opens none.
      const response = await server.pool.request({
        path: `${storeApiPrefix}/${path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: this.#requestTimeoutMs,
        bodyTimeout: this.#requestTimeoutMs,
      })
      const status = response.statusCode
      if (status >= 200 && status < 300) {
        return { kind: 'ok', value: await readJson(response, this.#limits.responseBytesMax) }
      }
      const error = errorOfBody(
        await readJson(response, this.#limits.errorBodyBytesMax),
        `store server ${server.url}`,
      )
      return { kind: 'answered', error, retry: retryOf(error, status) }
    } catch (error) {
      return this.#failureOf(error)
    }
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.#clock.setTimeout(resolve, ms))
  }
}

function joinable(upstream: RemoteWatch, from: number): boolean {
  if (!upstream.live && upstream.startedFrom > 0) return false // its first answer may be "compacted"
  return from === 0 || (upstream.joinRevision > 0 && from >= upstream.joinRevision)
}

function retryOf(error: Error, status: number): 'any' | 'reads' | 'none' {
  if (isKvError(error)) return 'none'
  if (isCairnError(error)) {
    if (notProposedCodes.has(error.code)) return 'any'
    return unavailableCodes.has(error.code) ? 'reads' : 'none'
  }
  return status >= 500 ? 'reads' : 'none' // not a catalogue error: a proxy, or a server bug
}

/** `http://host:port` without a path or trailing slash. */
function originOf(url: string): string {
  const parsed = new URL(url)
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error(`remote kv store: ${url} is not an http(s) URL`)
  return parsed.origin
}
