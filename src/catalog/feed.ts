/**
 * The catalog feed: keeps a CatalogState equal to the catalog records of one store, in revision
 * order, with a prefix feed on /_cairn/catalog/ (kv/prefix-feed.ts: one read at a revision, then
 * a watch from the next; a cancelled watch reads everything again; a failed load is retried with
 * backoff, so the copy is never left without a watch for good).
 *
 * By the time a write to this member resolves, the state has applied it: an API handler that
 * awaited a catalog write reads its own write.
 */

import type { KvStore } from '../kv/kv-store.ts'
import { type PrefixFeed, startPrefixFeed } from '../kv/prefix-feed.ts'
import { catalogPrefix } from './records.ts'
import type { CatalogState } from './state.ts'

export type CatalogFeed = PrefixFeed

export function startCatalogFeed(
  store: Pick<KvStore, 'range' | 'watch'>,
  state: CatalogState,
  onError: (error: unknown) => void = () => {},
): CatalogFeed {
  return startPrefixFeed(store, catalogPrefix, state, onError)
}
