/**
 * A prefix feed: keeps a consumer equal to the keys under one prefix of a store, in revision order.
 * It reads every key under the prefix at one revision, then watches the prefix from the next
 * revision on; if the watch is cancelled (it fell behind, or the history was compacted past it),
 * it reads everything again and starts a new watch, so the consumer never has a silent gap. The
 * catalog copy (catalog/feed.ts), the scheduler engine and the unit runner are its consumers.
 *
 * Events are taken in a microtask queued by the watcher's listener (which runs inside apply), so
 * by the time a write to this member resolves, the consumer has applied it.
 *
 * The store's reads are serializable (local): the feed follows this member's applied state, which
 * is what a watch on this member reports anyway.
 *
 * A load that fails (a client agent whose servers are all unreachable, at start or after its
 * watch gave up) is tried again, from feedRetryMsMin doubling to feedRetryMsMax, until it works or
 * the feed stops: the consumer is never left without a watch for good. Each failure goes to onError.
 *
 * Invariants: load() is called before any apply(); after a load at revision R, apply() sees every
 * event above R exactly once, in order, and flush() after each batch taken from the watcher.
 */
import type { KvEvent } from './events.ts'
import type { KvStore } from './kv-store.ts'
import type { KeyValue } from './mvcc.ts'
import type { Watcher } from './watcher.ts'

/** First wait before loading again after a failed load; it doubles up to feedRetryMsMax. */
export const feedRetryMsMin = 100
export const feedRetryMsMax = 2_000

export interface FeedSink {
  /** Everything under the prefix at `revision`; replaces what the sink held. */
  load(revision: number, kvs: readonly KeyValue[]): void
  apply(event: KvEvent): void
  /** After each batch of events (a place to coalesce work). */
  flush(): void
}

export interface PrefixFeed {
  /** Resolves after the first load (retried until it succeeds), or at stop(). Never rejects. */
  readonly ready: Promise<void>
  /** Times the feed had to read everything again after its watch was cancelled. */
  readonly reloads: number
  stop(): void
}

/** The range of every key that starts with `prefix` (which ends in `/`). */
export function prefixRange(prefix: string): { key: string; rangeEnd: string } {
  return {
    key: prefix,
    rangeEnd: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1),
  }
}

export function startPrefixFeed(
  store: Pick<KvStore, 'range' | 'watch'>,
  prefix: string,
  sink: FeedSink,
  onError: (error: unknown) => void = () => {},
): PrefixFeed {
  let watcher: Watcher | undefined
  let stopped = false
  let reloads = 0
  let scheduled = false
  let retry: { timer: NodeJS.Timeout; resolve: () => void } | undefined

  const drain = (): void => {
    scheduled = false
    const current = watcher
    if (current === undefined || stopped) return
    for (let events = current.take(); events.length > 0; events = current.take()) {
      for (const event of events) sink.apply(event)
      sink.flush()
    }
    if (current.status === 'canceled' && !stopped) {
      reloads++
      void loadUntilDone()
    }
  }

  const loadUntilDone = async (): Promise<void> => {
    for (let delayMs = feedRetryMsMin; !stopped; delayMs = Math.min(delayMs * 2, feedRetryMsMax)) {
      try {
        await load()
        return
      } catch (error) {
        onError(error)
      }
      if (stopped) return
      await new Promise<void>((resolve) => {
        retry = { timer: setTimeout(resolve, delayMs), resolve }
      })
      retry = undefined
    }
  }

  const load = async (): Promise<void> => {
    watcher?.cancel()
    watcher = undefined
    const result = await store.range(prefixRange(prefix), { serializable: true })
    if (stopped) return
    sink.load(result.revision, result.kvs)
    const next = store.watch({
      key: prefix.slice(0, -1),
      recursive: true,
      stream: true,
      includeHidden: true,
      sinceRevision: result.revision + 1,
    })
    watcher = next
    next.setListener(() => {
      if (scheduled) return
      scheduled = true
      queueMicrotask(drain)
    })
    drain()
  }

  const ready = loadUntilDone()
  return {
    ready,
    get reloads() {
      return reloads
    },
    stop() {
      stopped = true
      if (retry !== undefined) {
        clearTimeout(retry.timer)
        retry.resolve()
      }
      watcher?.cancel()
      watcher = undefined
    },
  }
}
