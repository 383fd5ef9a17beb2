/**
 * The catalog feed: keeps a CatalogState equal to the catalog records of one store, in revision
 * order. It reads every record under /_cairn/catalog/ at one revision, then watches the prefix from
 * the next revision on; if the watch is cancelled (it fell behind, or the history was compacted
 * past it), it reads everything again and starts a new watch, so the state never has a silent gap.
 *
 * Events are taken in a microtask queued by the watcher's listener (which runs inside apply), so
 * by the time a write to this member resolves, the state has applied it: an API handler that
 * awaited a catalog write reads its own write.
 *
 * The store's reads are serializable (local): the feed follows this member's applied state, which
 * is what a watch on this member reports anyway.
 *
 * A load that fails (a client agent whose servers are all unreachable, at start or after its
 * watch gave up) is tried again, from feedRetryMsMin doubling to feedRetryMsMax, until it works or
 * the feed stops: the copy is never left without a watch for good. Each failure goes to onError.
 */
import type { KvStore } from '../kv/kv-store.ts'
import type { Watcher } from '../kv/watcher.ts'
import { catalogPrefix, prefixRange } from './records.ts'
import type { CatalogState } from './state.ts'

/** First wait before loading again after a failed load; it doubles up to feedRetryMsMax. */
export const feedRetryMsMin = 100
export const feedRetryMsMax = 2_000

export interface CatalogFeed {
  /** Resolves after the first load (retried until it succeeds), or at stop(). Never rejects. */
  readonly ready: Promise<void>
  /** Times the feed had to read everything again after its watch was cancelled. */
  readonly reloads: number
  stop(): void
}

export function startCatalogFeed(
  store: Pick<KvStore, 'range' | 'watch'>,
  state: CatalogState,
  onError: (error: unknown) => void = () => {},
): CatalogFeed {
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
      for (const event of events) state.apply(event)
      state.flush()
    }
    if (current.status === 'canceled' && !stopped) {
      reloads++
      void loadUntilDone()
    }
  }

  /** Loads, and on failure (no server answered: a client agent) tries again, backing off, until stopped. */
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
    const range = prefixRange(catalogPrefix)
    const result = await store.range(range, { serializable: true })
    if (stopped) return
    state.load(result.revision, result.kvs)
    const next = store.watch({
      key: catalogPrefix.slice(0, -1),
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
