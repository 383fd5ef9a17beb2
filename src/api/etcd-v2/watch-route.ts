/**
 * GET /v2/keys/<key>?wait=true: etcd's long-poll watch, one-shot or stream=true.
 *
 * The watcher is registered first, so a bad waitIndex (401 EventIndexCleared, with the oldest
 * index in the cause) or a full watcher table is an ordinary error reply. Then the head (200,
 * X-Etcd-Index = the index when the watch started) is written and flushed at once, and each event
 * is written as its shared JSON line (KvEvent.json() plus "\n", turned into bytes once for every
 * watcher it reaches: eventLine() below): a one-shot watch ends with its first event, body and end
 * in one write; a stream writes every event until the client goes.
 *
 * Ends, and what the client sees:
 *   - the client disconnects: the watcher is cancelled at once (nothing stays registered);
 *   - the hub cancels the watcher (too slow: KV_WATCHER_SLOW, history compacted, store closing):
 *     the response ends cleanly after the complete events it already had, as etcd closed a slow
 *     watcher's stream; the client re-syncs from X-Etcd-Index + 1 as etcd documents;
 *   - the API shuts down: 200 with what was written (an empty body for a one-shot), as etcd.
 * Back-pressure: while the socket does not drain, nothing is taken; the watcher's bounded buffer
 * fills and the hub cancels it as too slow, so a stuck client never grows memory.
 *
 * When: a watcher's listener runs inside apply and only schedules its pump; the pumps of every
 * watcher woken in one turn run together in one setImmediate callback, not as microtasks. On the
 * leader that matters: the commit of the entry was handed to the transport earlier in the same
 * Ready, and the transport sends such commit-only appends from a setImmediate callback too
 * (peer-connection.ts), scheduled first, so the followers learn the commit and start their own
 * fan-out before the leader spends its turn writing to thousands of sockets. With microtasks, the
 * followers' watchers waited for all of the leader's: 5,000 watchers spread over 3 members took
 * p99 304 ms against 126 ms when all were on the leader.
 *
 * Invariants: a watch is in ctx.openWatches exactly while its response is open; finish() runs at
 * most once and always cancels the watcher; the listener only schedules (it runs inside apply).
 */
import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { KvEvent } from '../../kv/events.ts'
import type { V2KeyRequest } from '../../kv/v2-request.ts'
import type { WatchRequest } from '../../kv/watch-hub.ts'
import type { Watcher } from '../../kv/watcher.ts'
import type { OpenWatch } from './context.ts'
import { V2LimitError } from './errors.ts'
import type { EtcdV2Limits } from './limits.ts'

const watchesBySocket = new WeakMap<Socket, number>()

/**
 * The newest event's JSON line as bytes. A fan-out hands one event to every matching watcher in a
 * row, so one cached entry encodes it once per event rather than once per watcher; the bytes are
 * not kept in the history (that would double what it holds).
 */
let lastLine: { event: KvEvent; bytes: Buffer } | undefined

/** Pumps woken since the last fan-out turn (see the header). */
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

function eventLine(event: KvEvent): Buffer {
  if (lastLine?.event !== event) lastLine = { event, bytes: Buffer.from(`${event.json()}\n`, 'utf8') }
  return lastLine.bytes
}

/**
 * What serving a watch needs from its surface: V2Context on a server; on a client agent, the
 * forwarding surface (forward.ts), whose watches come from the servers through RemoteKvStore.
 */
export interface WatchServing {
  readonly openWatches: Set<OpenWatch>
  readonly limits: Pick<EtcdV2Limits, 'watchesOpenMax' | 'watchesPerConnectionMax'>
  countGet(ok: boolean): void
  sendError(reply: FastifyReply, error: unknown): FastifyReply
  /** Registers the watcher; throws the store's typed error. */
  watch(req: WatchRequest): Watcher
  /**
   * When present, the head is written only after it resolves (a client agent waits for the
   * servers to accept the watch, so a compacted waitIndex is still an error reply); a rejection
   * is answered as the error.
   */
  confirm?(watcher: Watcher): Promise<void>
  /** The key headers of a watch that started at store revision `index`. */
  headersAt(index: number): Record<string, string>
}

export async function serveWatch(
  host: WatchServing,
  request: FastifyRequest,
  reply: FastifyReply,
  req: V2KeyRequest,
): Promise<FastifyReply | undefined> {
  const socket = request.raw.socket
  let watcher: Watcher
  try {
    if (host.openWatches.size >= host.limits.watchesOpenMax) {
      throw new V2LimitError('watchesOpenMax', `${host.openWatches.size} watches open`)
    }
    const onSocket = watchesBySocket.get(socket) ?? 0
    if (onSocket >= host.limits.watchesPerConnectionMax) {
      throw new V2LimitError('watchesPerConnectionMax', `${onSocket} watches on this connection`)
    }
    watcher = host.watch({
      key: req.key,
      recursive: req.recursive,
      stream: req.stream,
      sinceRevision: req.waitIndex,
    })
  } catch (error) {
    host.countGet(false)
    return host.sendError(reply, error)
  }
  if (host.confirm !== undefined) {
    try {
      await host.confirm(watcher)
    } catch (error) {
      watcher.cancel()
      host.countGet(false)
      return host.sendError(reply, error)
    }
    if (request.raw.destroyed || socket.destroyed) {
      watcher.cancel() // the client went while the servers confirmed
      return undefined
    }
  }
  host.countGet(true)
  watchesBySocket.set(socket, (watchesBySocket.get(socket) ?? 0) + 1)
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, host.headersAt(watcher.startRevision))
  res.flushHeaders()
  pumpWatch(host, watcher, res, socket)
  return undefined
}

function pumpWatch(ctx: WatchServing, watcher: Watcher, res: FastifyReply['raw'], socket: Socket): void {
  let finished = false
  let paused = false
  const open: OpenWatch = {
    finish() {
      if (finished) return
      finished = true
      ctx.openWatches.delete(open)
      watchesBySocket.set(socket, Math.max(0, (watchesBySocket.get(socket) ?? 1) - 1))
      watcher.setListener(undefined)
      watcher.cancel()
      if (!res.writableEnded) res.end()
    },
  }
  ctx.openWatches.add(open)
  const pump = (): void => {
    if (finished) return
    if (paused && watcher.status !== 'canceled') return
    if (paused) {
      // Cancelled while the socket is full (too slow): hand over the complete events it still
      // holds (at most watcherEventsMax) and end, so the client sees a clean end.
      for (const event of watcher.take()) res.write(eventLine(event))
      open.finish()
      return
    }
    for (let batch = watcher.take(); batch.length > 0; batch = watcher.take()) {
      if (!watcher.stream) {
        // One write for the event and the end of the response (end() corks them together).
        const last = batch.length - 1
        for (let i = 0; i < last; i++) res.write(eventLine(batch[i] as KvEvent))
        res.end(eventLine(batch[last] as KvEvent))
        open.finish()
        return
      }
      let drained = true
      for (const event of batch) drained = res.write(eventLine(event))
      if (!drained) {
        paused = true
        res.once('drain', () => {
          paused = false
          pump()
        })
        return
      }
    }
    if (watcher.status === 'done' || watcher.status === 'canceled') open.finish()
  }
  res.on('close', () => open.finish())
  watcher.setListener(() => schedulePump(pump))
  pump()
}
