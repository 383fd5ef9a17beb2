/**
 * Which events a watch sees: the one rule shared by live delivery (the indexed hub) and history
 * scans, and the naive reference the hub's index is property-tested against.
 *
 * A watch on key W sees an event at key K (revision >= its start) when:
 *   1. K === W; or
 *   2. the watch is recursive, K is below W, and no segment of K after W starts with `_` (etcd's
 *      hidden rule; internal users may set includeHidden); or
 *   3. the event removed a directory (delete, compareAndDelete or expire) and W is below K.
 * Refresh events match nothing (etcd: a refresh does not wake watchers).
 *
 * Departures from etcd 2.3, which applied these rules differently live and from its history:
 * the hidden rule applies to history scans too, and rule 3 notifies watchers of any key below the
 * removed directory (etcd's live path notified only keys that existed; its history scan matched
 * any string prefix, even /foo for a deleted /fo).
 */
import type { KvEvent } from './events.ts'
import { isHiddenBelow, isUnder } from './key-path.ts'

export interface WatchSpec {
  key: string
  recursive: boolean
  includeHidden: boolean
}

/** What a watch from some revision would have reported so far (KvStore.lastChange). */
export interface LastChange {
  /** The store revision the answer was judged at. */
  revision: number
  /** The newest matching event's revision at or after the asked one; 0: none. */
  lastRevision: number
}

export function watchMatches(spec: WatchSpec, event: KvEvent): boolean {
  if (event.refresh) return false
  const key = event.key
  if (key === spec.key) return true
  if (spec.recursive && isUnder(key, spec.key)) return spec.includeHidden || !isHiddenBelow(spec.key, key)
  return event.removesDir && isUnder(spec.key, key)
}
