/**
 * The watch workload: writers set unique values on a few keys under one directory (the traffic),
 * while watchers follow the directory with etcd v2 long polls (`wait=true&recursive=true&
 * waitIndex=N`, one event per poll, the next poll from that event's revision + 1), moving to
 * another member when a poll fails or stays quiet for a client timeout.
 *
 * Each watcher starts at a seeded random time in the first half of the run, from a seeded random
 * revision in [1, highest revision acknowledged so far + 1], and is one `watch` operation from its
 * start to the end: after the heal the final reader writes an end marker (`<dir>/end`, recorded as
 * a write) and every watcher follows until it has passed the marker's revision (`ok`, the events
 * as delivered) or the final deadline passes or the history it asks for is gone (`info`, the
 * events it had). Then the final reader reads the whole event history, from the
 * lowest revision any watcher started at up to the marker (`final`), with stream watches
 * (`stream=true`: the server replays its history, then goes live), so the final history comes
 * through the other watch path of the server.
 *
 * Processes: writers 0..w-1, watchers w..concurrency-1 (at least one of each, so concurrency >= 2),
 * the final reader `concurrency`.
 */
import type { Prng } from '../../src/raft/core/prng.ts'
import type { EtcdClient } from '../client.ts'
import type { WatchEvent } from '../history.ts'
import {
  clientLoop,
  finalRead,
  finalReadsMs,
  makeClient,
  recordOp,
  sleep,
  UniqueValues,
  type Workload,
  type WorkloadContext,
} from './workload.ts'

export const watchDir = '/jepsen/watch'
/** Keys under watchDir the writers set. */
export const watchKeysCount = 5
/** Events one watcher keeps (a watcher past it stops: its op ends `info`). */
export const watcherEventsMax = 1_000_000
/** Pause after a failed poll before the next (the client has moved to another member). */
const pollRetryMs = 50

interface FollowResult {
  complete: boolean
  error?: string
}

export class WatchWorkload implements Workload {
  readonly name = 'watch'
  readonly #ctx: WorkloadContext
  readonly #writers: number
  #highestRevision = 0
  #endRevision: number | undefined
  #followDeadline = Number.POSITIVE_INFINITY
  readonly #fromRevisions: number[] = []
  readonly #watchers: Promise<void>[] = []

  constructor(ctx: WorkloadContext) {
    if (ctx.concurrency < 2) throw new Error('the watch workload needs --concurrency 2 or more')
    this.#ctx = ctx
    this.#writers = Math.ceil(ctx.concurrency / 2)
  }

  async run(signal: AbortSignal): Promise<void> {
    const writers: Promise<void>[] = []
    for (let process = 0; process < this.#ctx.concurrency; process++) {
      const prng = this.#ctx.prng.fork()
      const client = makeClient(this.#ctx, process, prng)
      if (process < this.#writers) writers.push(this.#writer(process, client, prng, signal))
      else this.#watchers.push(this.#watcher(process, client, prng, signal))
    }
    await Promise.all(writers)
  }

  async final(): Promise<void> {
    const process = this.#ctx.concurrency
    const client = makeClient(this.#ctx, process, this.#ctx.prng.fork())
    const key = `${watchDir}/end`
    const marker = await finalRead(this.#ctx, client, { process, f: 'write', key, value: 'end' }, () =>
      client.write(key, 'end'),
    )
    this.#followDeadline = performance.now() + finalReadsMs
    if (marker.type !== 'ok') {
      this.#ctx.log('watch: the end marker could not be written; watchers stop at the deadline')
      this.#endRevision = Number.POSITIVE_INFINITY
    } else this.#endRevision = marker.value
    await Promise.all(this.#watchers)
    if (marker.type !== 'ok') return
    const fromRevision = Math.min(1 + this.#highestRevision, ...this.#fromRevisions)
    const events: WatchEvent[] = []
    const base = { process, f: 'final', key: watchDir }
    this.#ctx.recorder.record({ ...base, type: 'invoke', value: { fromRevision }, node: client.node })
    const result = await this.#readHistory(client, fromRevision, events)
    this.#record(base, client, events, result)
  }

  /** The final read: stream watches from `from` up to the end marker, resumed after a cut. */
  async #readHistory(client: EtcdClient, from: number, events: WatchEvent[]): Promise<FollowResult> {
    const end = this.#endRevision ?? Number.POSITIVE_INFINITY
    let next = from
    const deadline = performance.now() + finalReadsMs
    while (next <= end) {
      if (performance.now() > deadline) return { complete: false, error: 'final deadline passed' }
      const why = await client.watchStream(
        watchDir,
        next,
        (event) => {
          events.push(event)
          next = Math.max(next, event.revision + 1)
          return next > end
        },
        this.#ctx.clientTimeoutMs,
      )
      if (why.startsWith('401')) return { complete: false, error: why }
      if (why !== 'done' && why !== 'ended') await sleep(pollRetryMs)
    }
    return { complete: true }
  }

  async #writer(process: number, client: EtcdClient, prng: Prng, signal: AbortSignal): Promise<void> {
    const values = new UniqueValues(process)
    await clientLoop(this.#ctx, prng, signal, async () => {
      const key = `${watchDir}/k${prng.int(0, watchKeysCount)}`
      const value = values.next()
      const outcome = await recordOp(this.#ctx, client, { process, f: 'write', key, value }, () =>
        client.write(key, value),
      )
      if (outcome.type === 'ok') this.#highestRevision = Math.max(this.#highestRevision, outcome.value)
    })
  }

  async #watcher(process: number, client: EtcdClient, prng: Prng, signal: AbortSignal): Promise<void> {
    await sleep(prng.float() * (this.#ctx.timeMs / 2), signal)
    const fromRevision = prng.int(1, this.#highestRevision + 2)
    this.#fromRevisions.push(fromRevision)
    const base = { process, f: 'watch', key: watchDir }
    this.#ctx.recorder.record({ ...base, type: 'invoke', value: { fromRevision }, node: client.node })
    const events: WatchEvent[] = []
    const result = await this.#follow(client, fromRevision, events)
    this.#record(base, client, events, result)
  }

  #record(
    base: { process: number; f: string; key: string },
    client: EtcdClient,
    events: WatchEvent[],
    result: FollowResult,
  ): void {
    if (result.complete) this.#ctx.recorder.record({ ...base, type: 'ok', value: events, node: client.node })
    else
      this.#ctx.recorder.record({
        ...base,
        type: 'info',
        value: events,
        error: result.error,
        node: client.node,
      })
  }

  /** Long polls from `from` until past the end marker, the deadline, or a definite refusal. */
  async #follow(client: EtcdClient, from: number, events: WatchEvent[]): Promise<FollowResult> {
    let next = from
    for (;;) {
      if (this.#endRevision !== undefined && next > this.#endRevision) return { complete: true }
      if (performance.now() > this.#followDeadline) return { complete: false, error: 'final deadline passed' }
      if (events.length >= watcherEventsMax) return { complete: false, error: 'watcherEventsMax' }
      const outcome = await client.watchOnce(watchDir, next, this.#ctx.clientTimeoutMs)
      if (outcome.type === 'ok') {
        events.push(outcome.value)
        // A revision at or below the previous one is the server's bug; the checker sees it in
        // `events`, and `next` never goes back, so the watcher cannot loop on it.
        next = Math.max(next, outcome.value.revision + 1)
        continue
      }
      if (outcome.error.startsWith('401')) return { complete: false, error: outcome.error }
      if (outcome.error !== 'timeout') await sleep(pollRetryMs)
    }
  }
}
