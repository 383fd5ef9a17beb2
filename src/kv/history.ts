/**
 * The event history: every change event back to the last compaction, so a watcher can resume from
 * any revision inside the window (etcd v2 kept only the last 1000 events across all keys).
 *
 * Bounded by historyRevisionsMax (revisions kept) and historyBytesMax (approximate bytes); past
 * either, the oldest whole revision is dropped, so a revision's events are all kept or all gone.
 * Asking for a revision at or below the compaction point is etcd's error 401 (EventIndexCleared),
 * with the oldest available revision in a field rather than only inside the cause text.
 *
 * Compaction depends only on the events, so members with the same limits keep the same window
 * (the window is part of the snapshot).
 *
 * Invariants: kept events are in non-decreasing revision order, all > compactedRevision;
 * `#bytes` and `#revisionCount` describe exactly the kept events.
 */
import type { KvEvent } from './events.ts'
import { KvError } from './kv-error.ts'
import type { KvConfig } from './limits.ts'

export class History {
  readonly #revisionsMax: number
  readonly #bytesMax: number
  #events: KvEvent[] = []
  #head = 0
  #bytes = 0
  #revisionCount = 0
  #compacted = 0

  constructor(config: Pick<KvConfig, 'historyRevisionsMax' | 'historyBytesMax'>) {
    this.#revisionsMax = config.historyRevisionsMax
    this.#bytesMax = config.historyBytesMax
  }

  /** Every event with a revision <= this one has been dropped. */
  get compactedRevision(): number {
    return this.#compacted
  }

  get eventCount(): number {
    return this.#events.length - this.#head
  }

  get bytes(): number {
    return this.#bytes
  }

  get revisionCount(): number {
    return this.#revisionCount
  }

  /** The newest kept revision (the compaction point if none is kept). */
  get lastRevision(): number {
    return this.#events.length > this.#head
      ? (this.#events[this.#events.length - 1] as KvEvent).revision
      : this.#compacted
  }

  /** Appends the events of one applied command, then drops the oldest revisions past the limits. */
  append(events: readonly KvEvent[]): void {
    for (const event of events) {
      const last = this.lastRevision
      if (event.revision < last || (event.revision === last && this.eventCount === 0)) {
        throw new Error(`history: revision ${event.revision} appended after ${last}`)
      }
      if (event.revision > last) this.#revisionCount++
      this.#events.push(event)
      this.#bytes += event.sizeBytes
    }
    while (
      this.#revisionCount > this.#revisionsMax ||
      (this.#bytes > this.#bytesMax && this.eventCount > 0)
    ) {
      this.#dropOldestRevision()
    }
  }

  /** Drops every event with a revision <= `revision` (an explicit compaction). */
  compactTo(revision: number): void {
    while (this.eventCount > 0 && (this.#events[this.#head] as KvEvent).revision <= revision)
      this.#dropOldestRevision()
    if (revision > this.#compacted) this.#compacted = revision
  }

  /** Throws etcd's 401 if events from `revision` on are no longer all available. */
  checkAvailable(revision: number, currentRevision: number): void {
    if (revision > this.#compacted) return
    const oldest = this.#compacted + 1
    throw new KvError(
      'KV_EVENT_INDEX_CLEARED',
      `the requested history has been cleared [${oldest}/${revision}]`,
      currentRevision,
      oldest,
    )
  }

  /** Position (for eventAt) of the first kept event with a revision >= `revision`. */
  positionOf(revision: number): number {
    let lo = this.#head
    let hi = this.#events.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.#events[mid] as KvEvent).revision < revision) lo = mid + 1
      else hi = mid
    }
    return lo - this.#head
  }

  eventAt(position: number): KvEvent | undefined {
    return position < 0 ? undefined : this.#events[this.#head + position]
  }

  /** Kept events from `revision` on, oldest first. Do not append while iterating. */
  *since(revision: number): Generator<KvEvent> {
    for (let i = this.#head + this.positionOf(revision); i < this.#events.length; i++)
      yield this.#events[i] as KvEvent
  }

  /**
   * The revision of the newest kept event at or after `sinceRevision` that `matches`, 0 if none.
   * Scans from the newest event back, so it costs the events since `sinceRevision`, not the window.
   */
  lastMatching(sinceRevision: number, matches: (event: KvEvent) => boolean): number {
    for (let i = this.#events.length - 1; i >= this.#head; i--) {
      const event = this.#events[i] as KvEvent
      if (event.revision < sinceRevision) return 0
      if (matches(event)) return event.revision
    }
    return 0
  }

  /** Kept events, oldest first (for the snapshot). */
  all(): KvEvent[] {
    return this.#events.slice(this.#head)
  }

  /** Replaces the window with a snapshot's, then applies this member's limits. */
  restore(compactedRevision: number, events: readonly KvEvent[]): void {
    this.#events = []
    this.#head = 0
    this.#bytes = 0
    this.#revisionCount = 0
    this.#compacted = compactedRevision
    this.append(events)
  }

  #dropOldestRevision(): void {
    const oldest = (this.#events[this.#head] as KvEvent).revision
    while (this.eventCount > 0 && (this.#events[this.#head] as KvEvent).revision === oldest) {
      this.#bytes -= (this.#events[this.#head] as KvEvent).sizeBytes
      this.#head++
    }
    this.#revisionCount--
    this.#compacted = oldest
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head)
      this.#head = 0
    }
  }
}
