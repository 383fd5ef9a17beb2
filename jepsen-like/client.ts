/**
 * An etcd v2 keys client for the workloads, over undici, that turns every request into the
 * history's outcome: `ok` (it happened; the value), `fail` (it certainly did not happen), `info`
 * (unknown: it may have happened, even later).
 *
 * Definite (`fail`), for any operation:
 *   - the connection could not be opened (refused, unreachable, connect timeout): nothing was sent;
 *   - an etcd error body with a 4xx status: the request was refused by validation, or its command
 *     was applied and refused by the store (100 key not found on a cas, 101 compare failed, 105
 *     node exists, ...); an applied refusal changes nothing.
 * Unknown (`info`) for writes (write, cas, add): a timeout, a reset or cut connection after the
 * request may have been sent, any 5xx (300 Raft Internal Error: no leader, request timeout, ... —
 * the proposal may be in the log and commit later), or an answer that cannot be parsed.
 * Reads have no effect, so a read that did not answer `ok` is `fail`, never `info`.
 * A read of a missing key (100 on a plain GET) is `ok` with value null.
 *
 * Reads use `quorum=true` (linearizable: ReadIndex on the server). Each request has its own
 * deadline (`timeoutMs`, the whole request including the body). A client talks to one member at a
 * time and moves to another (drawn from its PRNG) after any outcome that is not `ok` or an etcd
 * 4xx answer (those say nothing about the member's health).
 */
import { Agent, request } from 'undici'
import type { WatchEvent } from './history.ts'

export interface Endpoint {
  name: string
  url: string
}

export type Outcome<T> =
  | { type: 'ok'; value: T; node: string }
  | { type: 'fail'; error: string; node: string }
  | { type: 'info'; error: string; node: string }

export interface ClientOptions {
  endpoints: Endpoint[]
  /** Index of the first endpoint this client talks to. */
  first: number
  timeoutMs: number
  /** Uniform in [0, 1): which member to move to after an error. */
  random(): number
  dispatcher: Agent
}

/** The etcd v2 node fields the workloads read. */
interface V2Node {
  key?: string
  value?: string
  dir?: boolean
  modifiedIndex?: number
  nodes?: V2Node[]
}

interface V2Answer {
  action?: string
  node?: V2Node
  errorCode?: number
  message?: string
  cause?: string
}

/** A raw answer, or why there was none (and whether a request may have reached the member). */
type Raw =
  | { answered: true; status: number; body: V2Answer | undefined; etcdIndex: number | undefined }
  | { answered: false; error: string; maybeSent: boolean }

/** Error codes of undici and Node that mean the connection was never opened. */
const notConnectedCodes = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** One shared connection pool for all clients of a run. */
export function createDispatcher(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 4_000, pipelining: 1 })
}

export class EtcdClient {
  readonly #endpoints: Endpoint[]
  readonly #options: ClientOptions
  #current: number

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new Error('EtcdClient: no endpoints')
    this.#endpoints = options.endpoints
    this.#options = options
    this.#current = options.first % options.endpoints.length
  }

  /** The member the next request goes to. */
  get node(): string {
    return this.#endpoint().name
  }

  /** Moves to another member (any other, drawn from the PRNG). */
  switchNode(): void {
    const n = this.#endpoints.length
    if (n > 1) this.#current = (this.#current + 1 + Math.floor(this.#options.random() * (n - 1))) % n
  }

  /** Linearizable read of one key: its value, or null when absent. */
  async read(key: string): Promise<Outcome<string | null>> {
    const raw = await this.#call('GET', `${keyPath(key)}?quorum=true`)
    return this.#outcome(raw, false, (r) => {
      if (r.status === 200 && typeof r.body?.node?.value === 'string') return { value: r.body.node.value }
      if (r.status === 404 && r.body?.errorCode === 100) return { value: null }
      return undefined
    })
  }

  /** Sets a key; ok with the write's revision (modifiedIndex). */
  async write(key: string, value: string): Promise<Outcome<number>> {
    const raw = await this.#call('PUT', keyPath(key), form({ value }))
    return this.#outcome(raw, true, (r) =>
      r.status === 200 || r.status === 201 ? { value: r.body?.node?.modifiedIndex ?? 0 } : undefined,
    )
  }

  /** Compare-and-swap on the value (prevValue); `fail` with the etcd code when the compare fails. */
  async cas(key: string, expected: string, value: string): Promise<Outcome<null>> {
    const raw = await this.#call('PUT', keyPath(key), form({ value, prevValue: expected }))
    return this.#outcome(raw, true, (r) => (r.status === 200 ? { value: null } : undefined))
  }

  /** Creates an in-order key under `dir` (POST) holding `value`; ok with its revision. */
  async add(dir: string, value: string): Promise<Outcome<number>> {
    const raw = await this.#call('POST', keyPath(dir), form({ value }))
    return this.#outcome(raw, true, (r) => {
      const index = r.body?.node?.modifiedIndex
      return r.status === 201 && typeof index === 'number' ? { value: index } : undefined
    })
  }

  /** Linearizable read of every value under a directory (recursive), sorted by key. */
  async list(dir: string): Promise<Outcome<string[]>> {
    const raw = await this.#call('GET', `${keyPath(dir)}?quorum=true&recursive=true&sorted=true`)
    return this.#outcome(raw, false, (r) => {
      if (r.status === 404 && r.body?.errorCode === 100) return { value: [] }
      if (r.status !== 200 || r.body?.node === undefined) return undefined
      return { value: leafValues(r.body.node) }
    })
  }

  /**
   * One long poll: the first event under `dir` (recursive) at or after `waitIndex`. `timeoutMs`
   * bounds the poll (a quiet key is not an error for the caller: it gets `fail` 'timeout' and polls
   * again). A watch changes nothing, so it is never `info`.
   */
  async watchOnce(dir: string, waitIndex: number, timeoutMs: number): Promise<Outcome<WatchEvent>> {
    const raw = await this.#call(
      'GET',
      `${keyPath(dir)}?wait=true&recursive=true&waitIndex=${waitIndex}`,
      undefined,
      {
        timeoutMs,
      },
    )
    return this.#outcome(raw, false, (r) => {
      const event = r.status === 200 ? watchEventOf(r.body) : undefined
      return event === undefined ? undefined : { value: event }
    })
  }

  /**
   * A stream watch (`stream=true`) under `dir` from `waitIndex`: hands each event to `onEvent`
   * until it answers true (done), the stream ends, or it is idle for `idleMs`. Answers why it
   * stopped: 'done', 'ended' (the server closed it: resume from the next revision), or an error.
   */
  async watchStream(
    dir: string,
    waitIndex: number,
    onEvent: (event: WatchEvent) => boolean,
    idleMs: number,
  ): Promise<string> {
    const controller = new AbortController()
    const url = `${this.#endpoint().url}${keyPath(dir)}?wait=true&recursive=true&stream=true&waitIndex=${waitIndex}`
    try {
      const res = await request(url, {
        signal: controller.signal,
        headersTimeout: idleMs,
        bodyTimeout: idleMs,
        dispatcher: this.#options.dispatcher,
      })
      if (res.statusCode !== 200) {
        const body = parseJson(await res.body.text())
        this.switchNode()
        return `${body?.errorCode ?? `http ${res.statusCode}`} ${body?.cause ?? ''}`.trim()
      }
      let pending = ''
      for await (const chunk of res.body) {
        pending += (chunk as Buffer).toString('utf8')
        let newline = pending.indexOf('\n')
        while (newline >= 0) {
          const line = pending.slice(0, newline).trim()
          pending = pending.slice(newline + 1)
          newline = pending.indexOf('\n')
          if (line === '') continue
          const event = watchEventOf(parseJson(line))
          if (event === undefined) throw new Error(`unreadable stream line: ${line.slice(0, 200)}`)
          if (onEvent(event)) {
            controller.abort()
            return 'done'
          }
        }
      }
      return 'ended'
    } catch (error) {
      this.switchNode()
      return errorCode(error)
    }
  }

  /** The store index a member reports (X-Etcd-Index of a quorum read of `dir`). */
  async index(dir: string): Promise<Outcome<number>> {
    const raw = await this.#call('GET', `${keyPath(dir)}?quorum=true`)
    return this.#outcome(raw, false, (r) =>
      (r.status === 200 || r.status === 404) && r.etcdIndex !== undefined
        ? { value: r.etcdIndex }
        : undefined,
    )
  }

  #endpoint(): Endpoint {
    return this.#endpoints[this.#current] as Endpoint
  }

  /**
   * Classifies a raw answer. `accept` recognises success (and a read's "absent"); any other 4xx
   * with an etcd error code is definite; the rest is unknown for a write and a failure for a read.
   */
  #outcome<T>(
    raw: Raw,
    isWrite: boolean,
    accept: (r: Raw & { answered: true }) => { value: T } | undefined,
  ): Outcome<T> {
    const node = this.node
    let outcome: Outcome<T>
    if (!raw.answered) {
      outcome = { type: isWrite && raw.maybeSent ? 'info' : 'fail', error: raw.error, node }
    } else {
      const ok = accept(raw)
      if (ok !== undefined) return { type: 'ok', value: ok.value, node }
      const code = raw.body?.errorCode
      const definite = raw.status >= 400 && raw.status < 500 && typeof code === 'number'
      const error =
        typeof code === 'number'
          ? `${code} ${raw.body?.cause ?? raw.body?.message ?? ''}`
          : `http ${raw.status}`
      outcome = { type: definite || !isWrite ? 'fail' : 'info', error: error.trim(), node }
      if (definite) return outcome
    }
    this.switchNode()
    return outcome
  }

  async #call(
    method: 'GET' | 'PUT' | 'POST',
    pathAndQuery: string,
    body?: string,
    options: { timeoutMs?: number } = {},
  ): Promise<Raw> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs
    let sent = false
    try {
      const res = await request(`${this.#endpoint().url}${pathAndQuery}`, {
        method,
        body,
        headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' },
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.#options.dispatcher,
      })
      sent = true
      const text = await res.body.text()
      const index = Number(res.headers['x-etcd-index'])
      return {
        answered: true,
        status: res.statusCode,
        body: parseJson(text),
        etcdIndex: Number.isSafeInteger(index) ? index : undefined,
      }
    } catch (error) {
      const code = errorCode(error)
      return { answered: false, error: code, maybeSent: sent || !notConnectedCodes.has(code) }
    }
  }
}

function keyPath(key: string): string {
  const clean = key.startsWith('/') ? key : `/${key}`
  return `/v2/keys${clean.split('/').map(encodeURIComponent).join('/')}`
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

function parseJson(text: string): V2Answer | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? (value as V2Answer) : undefined
  } catch {
    return undefined
  }
}

/** The most specific code of an undici / Node error (the cause's code when wrapped). */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | undefined
  if (typeof e?.cause?.code === 'string') return e.cause.code
  if (typeof e?.code === 'string') return e.code
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout'
  return typeof e?.name === 'string' ? e.name : 'error'
}

function leafValues(node: V2Node): string[] {
  if (node.dir !== true) return typeof node.value === 'string' ? [node.value] : []
  return (node.nodes ?? []).flatMap(leafValues)
}

export function watchEventOf(body: V2Answer | undefined): WatchEvent | undefined {
  const node = body?.node
  if (typeof body?.action !== 'string' || typeof node?.key !== 'string') return undefined
  if (typeof node.modifiedIndex !== 'number') return undefined
  return { revision: node.modifiedIndex, key: node.key, action: body.action, value: node.value ?? null }
}
