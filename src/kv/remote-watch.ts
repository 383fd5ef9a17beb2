/**
 * One upstream watch of a RemoteKvStore: a GET /_cairn/store/v1/watch NDJSON stream to a store
 * server, feeding the local Watchers attached to it (several, when RemoteKvStore shares one live
 * upstream among identical requests; one for a watch from a given revision or a one-shot).
 *
 * Resume point: `next` and `skip` say that every matching event with a revision below `next`, and
 * the first `skip` events at `next`, were delivered. Events move it forward; so do heartbeats (a
 * heartbeat R means every event up to R was written before it: next = R + 1, skip = 0), so a quiet
 * watch does not fall behind the server's history. When the stream breaks (connection lost or
 * refused, no byte for watchIdleMsMax, the server closing), it reconnects to the next server with
 * sinceRevision = next and drops the first `skip` events at `next` it sees again: no event lost,
 * (a live watch broken before its first stream opened has no `next` yet: it takes its watchers'
 * earliest sinceRevision, so it does not restart from the next server's head),
 * none repeated, a revision's events never split. If `next` is compacted there, the server answers
 * KV_EVENT_INDEX_CLEARED and every local watcher is cancelled with it, as a local one would be.
 *
 * Connections: each connection attempt has its own undici Client, destroyed when the stream ends.
 * Not a pooled one: aborting a streaming response on a pooled client makes undici 6 open a spare
 * connection that never sends a request (measured), and Node's closeIdleConnections() does not
 * close those, so a server's graceful close would wait for its headersTimeout (60 s). Destroying
 * the Client ends the connection and opens none. A stream silent for watchIdleMsMax (the
 * Client's bodyTimeout: time between two chunks) is broken; servers send a heartbeat every 5 s.
 *
 * Reconnects: the first at once (to the next server), then after retryDelayMs doubling up to
 * watchRetryDelayMsMax; after watchResumeMsMax without a server answering, the watchers are
 * cancelled with KV_WATCHER_CLEARED. A cancel line from the server other than KV_WATCHER_CLEARED
 * (too slow, compacted) cancels every local watcher with that same typed error.
 *
 * Local delivery: each watcher gets the events at or after its sinceRevision through
 * Watcher.push(); one whose consumer leaves watcherEventsMax events untaken is cancelled with
 * KV_WATCHER_SLOW (as the hub does) and the others go on. The stream is read as fast as it comes,
 * so memory is bounded by the watchers' buffers, one chunk's lines and one partial line
 * (watchLineBytesMax). One chunk may carry many revisions; before an event that would overflow a
 * consumer's buffer, the stream pauses for one event-loop turn so that consumer can take first.
 *
 * Invariants: at most one connection attempt or stream per upstream at a time (`#gen` names the
 * current one; callbacks of an older one do nothing); `next` never decreases; after close() nothing
 * is delivered and no timer is left.
 */
import { Client, type Dispatcher } from 'undici'
import type { KvEvent } from './events.ts'
import { isKvError, KvError } from './kv-error.ts'
import {
  errorOfBody,
  readWatchLine,
  storeApiPrefix,
  type WatchLine,
  watchSinceRevisionHeader,
  watchStartRevisionHeader,
} from './store-wire.ts'
import type { Watcher } from './watcher.ts'

/** Time, injectable so tests can drive timers. */
export interface RemoteClock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemRemoteClock: RemoteClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface RemoteWatchLimits {
  watcherEventsMax: number
  requestTimeoutMs: number
  connectTimeoutMs: number
  retryDelayMs: number
  watchRetryDelayMsMax: number
  watchIdleMsMax: number
  watchResumeMsMax: number
  watchLineBytesMax: number
  errorBodyBytesMax: number
}

/** What the upstream needs from its RemoteKvStore. */
export interface RemoteWatchHost {
  readonly clock: RemoteClock
  readonly limits: RemoteWatchLimits
  /** The server to use now. */
  server(): { index: number; url: string }
  /** That server failed: later requests go to the next one. */
  failed(index: number): void
  /** A revision the cluster has reached (the store's newest known revision). */
  observed(revision: number): void
  knownRevision(): number
  /** Cancels a local watcher (detaching it from its upstream). */
  cancel(watcher: Watcher, error: KvError): void
  /** A one-shot watcher got its event. */
  completed(watcher: Watcher): void
  /** The upstream closed for good. */
  ended(upstream: RemoteWatch): void
}

export interface RemoteWatchSpec {
  key: string
  recursive: boolean
  includeHidden: boolean
  stream: boolean
}

export class RemoteWatch {
  readonly spec: RemoteWatchSpec
  /** Set when live watchers with this spec share it (RemoteKvStore's map key). */
  readonly shareKey: string | undefined
  readonly #host: RemoteWatchHost
  readonly #watchers = new Set<Watcher>()
  #next: number
  #skip = 0
  #dropAt = 0
  #dropCount = 0
  #live = false
  #gen = 0
  #client: Client | undefined
  #timer: unknown
  #brokenSinceMs: number | undefined
  #failures = 0
  #partial: Buffer[] = []
  #partialBytes = 0
  /** Whole lines of the current stream not handled yet (at most one chunk's). */
  #lines: WatchLine[] = []
  /** The first queued line already waited one turn for full consumers. */
  #yielded = false
  #body: Dispatcher.ResponseData['body'] | undefined
  #closed = false
  readonly #startedFrom: number

  constructor(host: RemoteWatchHost, spec: RemoteWatchSpec, sinceRevision: number, shareKey?: string) {
    this.#host = host
    this.spec = spec
    this.shareKey = shareKey
    this.#next = sinceRevision
    this.#startedFrom = sinceRevision
  }

  /** The revision it was asked to start from (0: the server's next one). */
  get startedFrom(): number {
    return this.#startedFrom
  }

  /** The current stream caught up with the server's head (its watchers are live). */
  get live(): boolean {
    return this.#live
  }

  /** The first revision a watcher joining now is sure to get whole (0: not known yet). */
  get joinRevision(): number {
    return this.#skip > 0 ? this.#next + 1 : this.#next
  }

  get watcherCount(): number {
    return this.#watchers.size
  }

  start(): void {
    void this.#connect()
  }

  add(watcher: Watcher): void {
    this.#watchers.add(watcher)
    if (this.#live) watcher.setStatus('live')
  }

  /** Detaches a watcher; the upstream closes with its last one. */
  remove(watcher: Watcher): void {
    if (!this.#watchers.delete(watcher)) return
    if (this.#watchers.size === 0) this.close()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#stop()
    this.#host.ended(this)
  }

  /** Cancels every watcher with `error` (which closes the upstream). */
  cancelAll(error: KvError): void {
    for (const watcher of [...this.#watchers]) this.#host.cancel(watcher, error)
    this.close()
  }

  #stop(): void {
    this.#gen++
    void this.#client?.destroy().catch(() => {})
    this.#client = undefined
    if (this.#timer !== undefined) this.#host.clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#partial = []
    this.#partialBytes = 0
    this.#lines = []
    this.#yielded = false
    this.#body = undefined
  }

  async #connect(): Promise<void> {
    if (this.#closed) return
    const gen = ++this.#gen
    const { index, url } = this.#host.server()
    const { limits } = this.#host
    const where = `store server ${url}`
    const client = new Client(url, {
      connect: { timeout: limits.connectTimeoutMs },
      headersTimeout: limits.requestTimeoutMs,
      bodyTimeout: limits.watchIdleMsMax,
    })
    this.#client = client
    this.#dropAt = this.#next
    this.#dropCount = this.#skip
    let response: Dispatcher.ResponseData
    try {
      response = await client.request({ path: this.#path(), method: 'GET' })
    } catch (error) {
      if (gen === this.#gen) this.#broken(index, error)
      return
    }
    if (gen !== this.#gen) {
      response.body.on('error', () => {}) // the abort is reported on the body: expected here
      response.body.destroy()
      return
    }
    if (response.statusCode !== 200) {
      await this.#refused(gen, index, where, response)
      return
    }
    this.#opened(gen, index, where, response)
  }

  #path(): string {
    const query = new URLSearchParams({ key: this.spec.key, stream: String(this.spec.stream) })
    if (this.spec.recursive) query.set('recursive', 'true')
    if (this.spec.includeHidden) query.set('includeHidden', 'true')
    if (this.#next > 0) query.set('sinceRevision', String(this.#next))
    return `${storeApiPrefix}/watch?${query}`
  }

  async #refused(
    gen: number,
    index: number,
    where: string,
    response: Dispatcher.ResponseData,
  ): Promise<void> {
    let error: Error
    try {
      error = errorOfBody(await readJson(response, this.#host.limits.errorBodyBytesMax), where)
    } catch (readError) {
      error = readError as Error
    }
    if (gen !== this.#gen) return
    if (isKvError(error) && error.code !== 'KV_WATCHER_CLEARED') {
      // An answer about the watch itself (compacted, bad key, no room): as a local watch would.
      this.#host.observed(error.index)
      this.cancelAll(error)
      return
    }
    this.#broken(index, error) // the server cannot serve it now (closing, Raft, a proxy): next one
  }

  #opened(gen: number, index: number, where: string, response: Dispatcher.ResponseData): void {
    const start = Number(response.headers[watchStartRevisionHeader])
    const since = Number(response.headers[watchSinceRevisionHeader])
    if (Number.isSafeInteger(start)) this.#host.observed(start)
    if (this.#next === 0 && Number.isSafeInteger(since) && since > 0) this.#next = since
    const body = response.body
    this.#body = body
    body.on('data', (chunk: Buffer) => {
      if (gen === this.#gen) this.#onData(gen, index, where, chunk)
    })
    body.on('error', (error) => {
      if (gen === this.#gen) this.#broken(index, error)
    })
    body.on('end', () => {
      if (gen === this.#gen) this.#broken(index, new Error(`${where}: the watch stream ended`))
    })
  }

  /** Splits a chunk into lines (a partial one waits for the next chunk), then handles them. */
  #onData(gen: number, index: number, where: string, chunk: Buffer): void {
    let from = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      let bytes = chunk.subarray(from, nl)
      if (this.#partialBytes > 0) {
        bytes = Buffer.concat([...this.#partial, bytes])
        this.#partial = []
        this.#partialBytes = 0
      }
      from = nl + 1
      if (bytes.length === 0) continue
      try {
        this.#lines.push(readWatchLine(bytes.toString('utf8'), where))
      } catch (error) {
        this.#broken(index, error)
        return
      }
    }
    if (from < chunk.length) {
      this.#partial.push(chunk.subarray(from))
      this.#partialBytes += chunk.length - from
      if (this.#partialBytes > this.#host.limits.watchLineBytesMax) {
        const detail = `a watch line from ${where} is longer than watchLineBytesMax`
        this.cancelAll(new KvError('KV_WATCHER_CLEARED', detail, this.#host.knownRevision()))
        return
      }
    }
    this.#handleLines(gen, index)
  }

  /**
   * Handles the queued lines in order. One chunk may carry many revisions that the server applied
   * one by one; before an event that would find a consumer's buffer full, the stream pauses for one
   * turn of the event loop so that consumer can take (as it could between two applies on a local
   * store). A buffer still full after that turn is a slow consumer.
   */
  #handleLines(gen: number, index: number): void {
    for (let line = this.#lines[0]; line !== undefined; line = this.#lines[0]) {
      if (line.kind === 'event' && !this.#yielded && this.#wouldOverflow(line.event)) {
        this.#yielded = true
        this.#body?.pause()
        setImmediate(() => {
          if (gen !== this.#gen) return
          this.#handleLines(gen, index)
          if (gen === this.#gen && this.#lines.length === 0) this.#body?.resume()
        })
        return
      }
      this.#lines.shift()
      this.#yielded = false
      // A stream that delivers a line works: the outage (and its backoff) is over. Not on the head
      // alone, so a server that answers 200 and hangs up at once cannot make a tight loop.
      this.#brokenSinceMs = undefined
      this.#failures = 0
      this.#onLine(index, line)
      if (gen !== this.#gen) return // the line ended this stream
    }
  }

  #wouldOverflow(event: KvEvent): boolean {
    const eventsMax = this.#host.limits.watcherEventsMax
    for (const watcher of this.#watchers) {
      if (watcher.stream && event.revision >= watcher.sinceRevision && watcher.buffered >= eventsMax)
        return true
    }
    return false
  }

  #onLine(index: number, line: WatchLine): void {
    switch (line.kind) {
      case 'event':
        this.#onEvent(line.event)
        return
      case 'live':
        this.#live = true
        for (const watcher of [...this.#watchers]) {
          if (watcher.status !== 'syncing') continue
          watcher.setStatus('live')
          watcher.notify() // a consumer may wait for the upstream's confirmation (etcd-v2 forwarding)
        }
        return
      case 'heartbeat':
        this.#host.observed(line.revision)
        if (line.revision >= this.#next) {
          this.#next = line.revision + 1
          this.#skip = 0
        }
        return
      case 'canceled':
        if (isKvError(line.error) && line.error.code !== 'KV_WATCHER_CLEARED') this.cancelAll(line.error)
        else this.#broken(index, line.error) // the server is closing: resume on another
    }
  }

  #onEvent(event: KvEvent): void {
    const revision = event.revision
    this.#host.observed(revision)
    if (revision < this.#dropAt) return
    if (revision === this.#dropAt && this.#dropCount > 0) {
      this.#dropCount-- // delivered before the reconnect
      return
    }
    if (revision > this.#next) {
      this.#next = revision
      this.#skip = 1
    } else {
      this.#skip++
    }
    for (const watcher of [...this.#watchers]) {
      if (revision < watcher.sinceRevision) continue
      if (!watcher.stream) {
        watcher.complete(event)
        this.#host.completed(watcher)
      } else if (!watcher.push(event, this.#host.limits.watcherEventsMax)) {
        const detail = `${watcher.buffered} events not taken`
        this.#host.cancel(watcher, new KvError('KV_WATCHER_SLOW', detail, this.#host.knownRevision()))
      }
    }
  }

  /** The stream failed or was refused by the server at `index`: resume on another, or give up. */
  /** The lowest sinceRevision of the local watchers (0 with none). */
  #earliestSince(): number {
    let earliest = 0
    for (const watcher of this.#watchers) {
      if (earliest === 0 || watcher.sinceRevision < earliest) earliest = watcher.sinceRevision
    }
    return earliest
  }

  #broken(index: number, reason: unknown): void {
    if (this.#closed) return
    this.#stop()
    this.#host.failed(index)
    this.#live = false
    for (const watcher of this.#watchers) if (watcher.status === 'live') watcher.setStatus('syncing')
    // A live watch broken before any stream said where it starts resumes from where its watchers
    // start: from the next server's head it would miss what was written in between (a write
    // retried onto a new leader while the first server died, say).
    if (this.#next === 0) this.#next = this.#earliestSince()
    const { clock, limits } = this.#host
    const now = clock.now()
    this.#brokenSinceMs ??= now
    if (now - this.#brokenSinceMs >= limits.watchResumeMsMax) {
      const why = reason instanceof Error ? reason.message : String(reason)
      const detail = `no store server served the watch for ${limits.watchResumeMsMax} ms (${why})`
      this.cancelAll(new KvError('KV_WATCHER_CLEARED', detail, this.#host.knownRevision()))
      return
    }
    const failures = this.#failures++ // reset by the first line a stream delivers
    const delayMs =
      failures === 0 ? 0 : Math.min(limits.retryDelayMs * 2 ** (failures - 1), limits.watchRetryDelayMsMax)
    const gen = this.#gen
    this.#timer = clock.setTimeout(() => {
      if (gen === this.#gen) void this.#connect()
    }, delayMs)
  }
}

/** An answer longer than the reader's limit (the rest of it is not read). */
export class AnswerTooLargeError extends Error {
  constructor(bytesMax: number) {
    super(`an answer of more than ${bytesMax} bytes`)
    this.name = 'AnswerTooLargeError'
  }
}

/** Reads a JSON answer of at most bytesMax bytes (leaving the loop early destroys the body). */
export async function readJson(response: Dispatcher.ResponseData, bytesMax: number): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length
    if (size > bytesMax) throw new AnswerTooLargeError(bytesMax)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(`an answer that is not JSON (status ${response.statusCode})`)
  }
}
