/**
 * GET /_cairn/store/v1/watch: one store watcher streamed as NDJSON (store-wire.ts has the lines).
 *
 * The watcher is registered first, so a bad key, a compacted sinceRevision (410 with oldestIndex)
 * or a full watcher table is an ordinary error reply. Then the head (200, the watcher's start and
 * since revisions as headers) is flushed at once, and what the watcher yields is written as lines:
 * each event (encoded once for every stream it reaches: lineOf() below), `{"status":"live"}` when
 * the watcher caught up with the head, a heartbeat every heartbeatMs, and a final `{"canceled"}`
 * line when the hub cancels the watcher (fell behind, compacted, store closing) or the server
 * closes. A one-shot watch (stream=false) ends right after its event.
 *
 * Heartbeats are progress marks: the store revision R is read first, then each stream takes every
 * event its watcher holds, then writes `{"heartbeat":{"revision":R}}`. Every event up to R was
 * dispatched before R was read, so a client may resume from R + 1 without a gap, even when its
 * watch saw no event for longer than the history keeps.
 *
 * Back-pressure: while the socket does not drain, nothing is taken; the watcher's bounded buffer
 * (watcherEventsMax) fills and the hub cancels it as too slow. A stream cancelled while paused gets
 * only the cancel line (its buffered events are dropped, the client learns why), so a stuck client
 * holds at most one batch plus that line in the socket's buffer, never an unbounded queue.
 *
 * Ends: the client disconnects (the watcher is cancelled at once), the hub cancels it (cancel line
 * with its error), close() (cancel line KV_WATCHER_CLEARED: clients resume on another server).
 *
 * When: a watcher's listener runs inside apply and only schedules; the pumps woken in one turn run
 * together in one setImmediate callback (the same reason as src/api/etcd-v2/watch-route.ts).
 *
 * Invariants: a stream is in #open exactly while its response is open; finish() runs at most once
 * and always cancels the watcher; lines are whole (an event line is never split by another).
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { KvEvent } from '../../kv/events.ts'
import { KvError } from '../../kv/kv-error.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import {
  canceledLine,
  heartbeatLine,
  liveLine,
  ndjsonContentType,
  watchLineOf,
  watchSinceRevisionHeader,
  watchStartRevisionHeader,
} from '../../kv/store-wire.ts'
import type { Watcher } from '../../kv/watcher.ts'
import { readWatchQuery } from './bodies.ts'
import type { StoreApiLimits } from './limits.ts'

interface OpenStream {
  pump(): void
  /** Writes a progress mark if the stream is live and not paused (after taking what is buffered). */
  beat(line: Buffer, revision: number): void
  finish(error?: KvError): void
}

/**
 * The newest event's line as bytes: a fan-out hands one event to every matching stream in a row,
 * so one cached entry encodes it once per event (the bytes are not kept with the history).
 */
let lastLine: { event: KvEvent; bytes: Buffer } | undefined

function lineOf(event: KvEvent): Buffer {
  if (lastLine?.event !== event) lastLine = { event, bytes: Buffer.from(`${watchLineOf(event)}\n`, 'utf8') }
  return lastLine.bytes
}

const liveBytes = Buffer.from(`${liveLine}\n`, 'utf8')

let pumpsDue: (() => void)[] = []

function schedulePump(pump: () => void): void {
  if (pumpsDue.length === 0) setImmediate(runPumpsDue)
  pumpsDue.push(pump)
}

function runPumpsDue(): void {
  const due = pumpsDue
  pumpsDue = []
  for (const pump of due) pump()
}

export class WatchStreams {
  readonly #store: KvStore
  readonly #limits: StoreApiLimits
  readonly #open = new Set<OpenStream>()
  #closed = false
  #timer: NodeJS.Timeout | undefined
  #beating = false
  /** Newest revision written to any stream (the index of the cancel line close() writes). */
  #revisionSeen = 0

  constructor(store: KvStore, limits: StoreApiLimits) {
    this.#store = store
    this.#limits = limits
    this.#timer = setInterval(() => void this.#beat(), limits.heartbeatMs)
    this.#timer.unref()
  }

  /** Watch streams open now. */
  get size(): number {
    return this.#open.size
  }

  /** The route handler: an error reply (thrown) or a hijacked streaming response. */
  serve(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const req = readWatchQuery(request.query)
    if (this.#closed) throw new KvError('KV_WATCHER_CLEARED', 'the server is closing', this.#revisionSeen)
    if (this.#open.size >= this.#limits.watchStreamsMax) {
      throw new KvError('KV_WATCHERS_MAX', `watchStreamsMax: ${this.#open.size} streams open`, 0)
    }
    const watcher = this.#store.watch(req)
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': ndjsonContentType,
      'cache-control': 'no-store',
      [watchStartRevisionHeader]: String(watcher.startRevision),
      [watchSinceRevisionHeader]: String(watcher.sinceRevision),
    })
    res.flushHeaders()
    this.#stream(watcher, res)
    return reply
  }

  /** Ends every stream with a KV_WATCHER_CLEARED cancel line and refuses new ones. Idempotent. */
  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    const error = new KvError('KV_WATCHER_CLEARED', 'the server is closing', this.#revisionSeen)
    for (const stream of [...this.#open]) stream.finish(error)
  }

  #stream(watcher: Watcher, res: ServerResponse): void {
    let finished = false
    let paused = false
    let liveSent = false
    const write = (bytes: Buffer): boolean => res.write(bytes)
    const stream: OpenStream = {
      finish: (error) => {
        if (finished) return
        finished = true
        this.#open.delete(stream)
        watcher.setListener(undefined)
        watcher.cancel()
        if (res.writableEnded || res.destroyed) return
        if (error === undefined) res.end()
        else res.end(`${canceledLine(error)}\n`)
      },
      pump: () => {
        if (finished) return
        if (paused) {
          // Cancelled while the socket is full (too slow): only the reason, not its buffered events.
          if (watcher.status === 'canceled') stream.finish(watcher.error)
          return
        }
        for (let batch = watcher.take(); batch.length > 0; batch = watcher.take()) {
          let drained = true
          for (const event of batch) drained = write(lineOf(event))
          this.#revisionSeen = Math.max(this.#revisionSeen, (batch[batch.length - 1] as KvEvent).revision)
          if (!drained) {
            paused = true
            res.once('drain', () => {
              paused = false
              stream.pump()
            })
            return
          }
        }
        if (!liveSent && watcher.status === 'live') {
          liveSent = true
          write(liveBytes)
        }
        if (watcher.status === 'done') stream.finish()
        else if (watcher.status === 'canceled') stream.finish(watcher.error)
      },
      beat: (line, revision) => {
        stream.pump()
        if (finished || paused || watcher.status !== 'live') return
        this.#revisionSeen = Math.max(this.#revisionSeen, revision)
        write(line)
      },
    }
    this.#open.add(stream)
    res.on('close', () => stream.finish())
    watcher.setListener(() => schedulePump(stream.pump))
    stream.pump()
  }

  async #beat(): Promise<void> {
    if (this.#open.size === 0 || this.#beating) return
    this.#beating = true
    try {
      // Read R first; every event up to R was dispatched to the watchers before this returns.
      const { revision } = await this.#store.range({ key: '/' }, { serializable: true })
      const line = Buffer.from(`${heartbeatLine(revision)}\n`, 'utf8')
      for (const stream of [...this.#open]) stream.beat(line, revision)
    } catch {
      // The store cannot answer a local read (stopping): no heartbeat this round.
    } finally {
      this.#beating = false
    }
  }
}
