/**
 * One watch, as its consumer sees it: a bounded buffer of events and a status.
 *
 * Statuses: `syncing` (reading the history from `cursor` on each take()), `live` (in the hub's
 * index, events pushed as they are applied), `done` (a one-shot watch that has its event) and
 * `canceled` (by its consumer, or by the hub with `error`: fell behind, history compacted past it,
 * store closing). A watcher never skips an event silently: it is cancelled with a reason instead.
 *
 * Consumer contract: set a listener, then call take() until it returns [] (and again each time the
 * listener fires); after `done` or `canceled`, take() returns what is left, then []. The listener
 * runs synchronously inside apply, so it must only schedule work.
 *
 * Invariants: events are taken in revision order, each at most once; a live watcher's buffer holds
 * fewer than `eventsMax` events before each new revision (a revision's events are never split);
 * `sinceRevision` <= every taken event's revision.
 */
import type { KvEvent } from './events.ts'
import type { KvError } from './kv-error.ts'
import type { WatchSpec } from './watch-match.ts'

export type WatcherStatus = 'syncing' | 'live' | 'done' | 'canceled'

/** What the hub does for a watcher (implemented by WatchHub). */
export interface WatcherOwner {
  take(watcher: Watcher): KvEvent[]
  cancel(watcher: Watcher, error: KvError | undefined): void
}

export class Watcher implements WatchSpec {
  readonly id: number
  readonly key: string
  readonly recursive: boolean
  readonly stream: boolean
  readonly includeHidden: boolean
  /** First revision reported (inclusive: etcd's waitIndex). */
  readonly sinceRevision: number
  /** The store revision when the watch started (etcd's X-Etcd-Index on a watch response). */
  readonly startRevision: number
  /** Hub only: while syncing, the next revision to read from the history. */
  cursor: number
  #owner: WatcherOwner
  #status: WatcherStatus
  #buffer: KvEvent[] = []
  #lastRevision = 0
  #error: KvError | undefined
  #listener: (() => void) | undefined

  constructor(
    owner: WatcherOwner,
    id: number,
    spec: WatchSpec & { stream: boolean; sinceRevision: number; startRevision: number },
  ) {
    this.#owner = owner
    this.id = id
    this.key = spec.key
    this.recursive = spec.recursive
    this.stream = spec.stream
    this.includeHidden = spec.includeHidden
    this.sinceRevision = spec.sinceRevision
    this.startRevision = spec.startRevision
    this.cursor = spec.sinceRevision
    this.#status = 'syncing'
  }

  get status(): WatcherStatus {
    return this.#status
  }

  /** Why the hub cancelled it (undefined while active, when done, or when its consumer cancelled). */
  get error(): KvError | undefined {
    return this.#error
  }

  /** Events buffered and not yet taken (a syncing watcher may have more in the history). */
  get buffered(): number {
    return this.#buffer.length
  }

  /** Takes every event available now, oldest first. */
  take(): KvEvent[] {
    return this.#owner.take(this)
  }

  /**
   * Called (synchronously, inside apply) when the buffer becomes non-empty or the status changes.
   * It fires on that transition only: call take() right after setting it, and after each call.
   */
  setListener(listener: (() => void) | undefined): void {
    this.#listener = listener
  }

  /** The consumer is done with it; buffered events are dropped. */
  cancel(): void {
    if (this.#status === 'done' || this.#status === 'canceled') return
    this.#owner.cancel(this, undefined)
  }

  /** The events as an async stream; ends when done or cancelled by the consumer, throws `error` otherwise. */
  async *events(): AsyncGenerator<KvEvent> {
    for (;;) {
      const batch = this.take()
      if (batch.length > 0) {
        yield* batch
        continue
      }
      // No await between the empty take() and setListener: an event in between would be missed.
      if (this.#status === 'done') return
      if (this.#status === 'canceled') {
        if (this.#error !== undefined) throw this.#error
        return
      }
      await new Promise<void>((resolve) => this.setListener(resolve))
      this.setListener(undefined)
    }
  }

  // The methods below are the hub's (watch-hub.ts); consumers use the ones above.

  /** Hub only: hands over the buffered events. */
  drain(): KvEvent[] {
    const out = this.#buffer
    this.#buffer = []
    return out
  }

  /** Hub only: a live event. Returns false (and buffers nothing) if the buffer is full. */
  push(event: KvEvent, eventsMax: number): boolean {
    if (event.revision !== this.#lastRevision && this.#buffer.length >= eventsMax) return false
    this.#lastRevision = event.revision
    this.#buffer.push(event)
    if (this.#buffer.length === 1) this.notify()
    return true
  }

  /** Hub only: a one-shot watch got its event. */
  complete(event: KvEvent): void {
    this.#buffer.push(event)
    this.setStatus('done')
  }

  /** Hub only. */
  setStatus(status: WatcherStatus, error?: KvError): void {
    this.#status = status
    if (error !== undefined) this.#error = error
    if (status === 'canceled' && error === undefined) this.#buffer = []
    if (status === 'done' || status === 'canceled') this.notify()
  }

  /** Hub only: wakes the consumer. A throwing listener cannot break apply; its error is rethrown later. */
  notify(): void {
    const listener = this.#listener
    if (listener === undefined) return
    try {
      listener()
    } catch (error) {
      queueMicrotask(() => {
        throw error
      })
    }
  }
}
