/**
 * The watch hub: registers watchers, replays the history to them, and fans applied events out.
 *
 * Live watchers are indexed by their key (one bucket per watched key, recursive or not) and the
 * watched keys are kept sorted, so one event at key K visits K's ancestors' buckets (recursive
 * watches and the exact watch on K) plus, for a removed directory, the range of keys below K:
 * O(depth + log n + matches), never O(watchers). Each event object (and its JSON, built once) is
 * shared by every watcher it reaches. watch-match.ts holds the rule; a property test checks the
 * index against a scan of every watcher with that rule.
 *
 * A watch from a past revision starts `syncing`: each take() reads the history from its cursor
 * (whole revisions, about watcherEventsMax events at a time) and the watcher joins the index once
 * it reaches the head, so replaying a long history never overflows a buffer. A live watcher whose
 * buffer already holds watcherEventsMax events when a new revision arrives is cancelled with
 * KV_WATCHER_SLOW; one whose cursor falls behind the history's compaction point is cancelled with
 * etcd's 401 (KV_EVENT_INDEX_CLEARED). Nothing is ever skipped silently.
 *
 * The hub is local to a member (not replicated): dispatch runs inside apply but changes no state
 * that apply reads.
 */
import type { KvEvent } from './events.ts'
import type { History } from './history.ts'
import { isHiddenBelow, normalizeKey, selfAndAncestors } from './key-path.ts'
import { KvError } from './kv-error.ts'
import type { KvConfig } from './limits.ts'
import { SortedKeys } from './sorted-keys.ts'
import { watchMatches } from './watch-match.ts'
import { Watcher, type WatcherOwner } from './watcher.ts'

export interface WatchRequest {
  key: string
  recursive?: boolean | undefined
  /** false (default): a one-shot watch (etcd's wait=true) that ends with its first event. */
  stream?: boolean | undefined
  /** First revision to report, inclusive (etcd's waitIndex); 0 or absent: the next revision. */
  sinceRevision?: number | undefined
  /** Report events under `_`-prefixed names below a recursive watch (internal users). */
  includeHidden?: boolean | undefined
}

export class WatchHub implements WatcherOwner {
  readonly #eventsMax: number
  readonly #watchersMax: number
  readonly #history: History
  readonly #currentRevision: () => number
  #buckets = new Map<string, Set<Watcher>>()
  #watchedKeys = new SortedKeys()
  #active = new Set<Watcher>()
  #nextId = 1
  #closed = false

  constructor(
    config: Pick<KvConfig, 'watcherEventsMax' | 'watchersMax'>,
    history: History,
    currentRevision: () => number,
  ) {
    this.#eventsMax = config.watcherEventsMax
    this.#watchersMax = config.watchersMax
    this.#history = history
    this.#currentRevision = currentRevision
  }

  /** Watchers that are syncing or live. */
  get watcherCount(): number {
    return this.#active.size
  }

  watch(req: WatchRequest): Watcher {
    const current = this.#currentRevision()
    if (this.#closed) throw new KvError('KV_WATCHER_CLEARED', 'the store is closed', current)
    if (this.#active.size >= this.#watchersMax) {
      throw new KvError('KV_WATCHERS_MAX', `${this.#active.size} watchers`, current)
    }
    const since = req.sinceRevision !== undefined && req.sinceRevision > 0 ? req.sinceRevision : current + 1
    this.#history.checkAvailable(since, current)
    const watcher = new Watcher(this, this.#nextId++, {
      key: normalizeKey(req.key, current),
      recursive: req.recursive === true,
      stream: req.stream === true,
      includeHidden: req.includeHidden === true,
      sinceRevision: since,
      startRevision: current,
    })
    this.#active.add(watcher)
    if (since > current) this.#goLive(watcher)
    else if (!watcher.stream) this.#syncOneShot(watcher)
    return watcher
  }

  /** Fans out one command's events (already appended to the history). */
  dispatch(events: readonly KvEvent[]): void {
    if (this.#buckets.size === 0) return
    for (const event of events) {
      if (event.refresh) continue
      for (const watcher of this.matching(event)) this.#deliver(watcher, event)
    }
  }

  /** Live watchers the index finds for an event (the function the property test checks). */
  matching(event: KvEvent): Watcher[] {
    const out: Watcher[] = []
    if (event.refresh) return out
    const key = event.key
    for (const at of selfAndAncestors(key)) {
      const bucket = this.#buckets.get(at)
      if (bucket === undefined) continue
      for (const w of bucket) {
        if (at === key || (w.recursive && (w.includeHidden || !isHiddenBelow(at, key)))) out.push(w)
      }
    }
    if (event.removesDir) {
      const prefix = `${key}/`
      for (const below of this.#watchedKeys.from(prefix)) {
        if (!below.startsWith(prefix)) break
        for (const w of this.#buckets.get(below) ?? []) out.push(w)
      }
    }
    return out
  }

  take(watcher: Watcher): KvEvent[] {
    const out = watcher.drain()
    if (watcher.status !== 'syncing') return out
    if (watcher.cursor <= this.#history.compactedRevision) {
      this.#cancelCompacted(watcher)
      return out
    }
    let position = this.#history.positionOf(watcher.cursor)
    let revision = 0
    for (
      let event = this.#history.eventAt(position);
      event !== undefined;
      event = this.#history.eventAt(++position)
    ) {
      if (event.revision !== revision) {
        if (out.length >= this.#eventsMax) {
          watcher.cursor = event.revision
          return out
        }
        revision = event.revision
      }
      if (event.revision >= watcher.sinceRevision && watchMatches(watcher, event)) out.push(event)
    }
    this.#goLive(watcher)
    return out
  }

  cancel(watcher: Watcher, error: KvError | undefined): void {
    this.#detach(watcher)
    watcher.setStatus('canceled', error)
  }

  /**
   * After the state machine restored a snapshot: every live watcher resumes from the history at the
   * revision after `previousRevision` (what it had seen), and is woken to take() again.
   */
  resync(previousRevision: number): void {
    for (const watcher of [...this.#active]) {
      if (watcher.status !== 'live') continue
      this.#removeFromIndex(watcher)
      watcher.cursor = Math.max(watcher.sinceRevision, previousRevision + 1)
      watcher.setStatus('syncing')
      watcher.notify()
    }
  }

  /** Cancels every watcher (KV_WATCHER_CLEARED) and refuses new ones. */
  close(): void {
    this.#closed = true
    const error = new KvError('KV_WATCHER_CLEARED', 'the store is closed', this.#currentRevision())
    for (const watcher of [...this.#active]) this.cancel(watcher, error)
  }

  #deliver(watcher: Watcher, event: KvEvent): void {
    if (watcher.status !== 'live' || event.revision < watcher.sinceRevision) return
    if (!watcher.stream) {
      this.#detach(watcher)
      watcher.complete(event)
      return
    }
    if (!watcher.push(event, this.#eventsMax)) {
      const detail = `${watcher.buffered} events not taken`
      this.cancel(watcher, new KvError('KV_WATCHER_SLOW', detail, this.#currentRevision()))
    }
  }

  /** A one-shot watch from the past: its first matching event in the history, or go live. */
  #syncOneShot(watcher: Watcher): void {
    for (const event of this.#history.since(watcher.sinceRevision)) {
      if (!watchMatches(watcher, event)) continue
      this.#detach(watcher)
      watcher.complete(event)
      return
    }
    this.#goLive(watcher)
  }

  #cancelCompacted(watcher: Watcher): void {
    try {
      this.#history.checkAvailable(watcher.cursor, this.#currentRevision())
    } catch (error) {
      this.cancel(watcher, error as KvError)
    }
  }

  #goLive(watcher: Watcher): void {
    watcher.setStatus('live')
    let bucket = this.#buckets.get(watcher.key)
    if (bucket === undefined) {
      bucket = new Set()
      this.#buckets.set(watcher.key, bucket)
      this.#watchedKeys.add(watcher.key)
    }
    bucket.add(watcher)
  }

  #detach(watcher: Watcher): void {
    this.#active.delete(watcher)
    this.#removeFromIndex(watcher)
  }

  #removeFromIndex(watcher: Watcher): void {
    const bucket = this.#buckets.get(watcher.key)
    if (bucket === undefined || !bucket.delete(watcher)) return
    if (bucket.size === 0) {
      this.#buckets.delete(watcher.key)
      this.#watchedKeys.delete(watcher.key)
    }
  }
}
