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
 */
import type { KvStore } from '../kv/kv-store.ts'
import type { Watcher } from '../kv/watcher.ts'
import { catalogPrefix, prefixRange } from './records.ts'
import type { CatalogState } from './state.ts'

export interface CatalogFeed {
  /** Settles after the first load. */
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
      void load().catch(onError)
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

  const ready = load()
  ready.catch(onError)
  return {
    ready,
    get reloads() {
      return reloads
    },
    stop() {
      stopped = true
      watcher?.cancel()
      watcher = undefined
    },
  }
}
