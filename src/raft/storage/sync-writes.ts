/**
 * SyncWritePolicy: decides, append by append, whether the WAL writes its buffer on the event
 * loop's own thread (a blocking pwrite) or through libuv's thread pool.
 *
 * Why: a write through the thread pool costs two thread wake-ups on top of the disk (a pool thread,
 * then the event loop when it is done). On the 2-core development VM, with three members on one
 * disk and one client writing, an O_DSYNC write of one entry took 0.24 ms at p50 and 1.3 ms at p99
 * done in place, and 0.32-0.34 / 2.3 ms through the pool; the three-member cluster answered 6-9 %
 * more writes per second at one client with small writes done in place (docs/storage.md). A
 * blocking write also blocks everything else the member serves (HTTP, DNS, the Raft loop's
 * timers) for as long as the disk takes, so it is only used while that is short:
 *
 *   in place  iff  entries <= entriesMax  and  bytes <= bytesMax
 *              and  averageMs <= fastMs  and  now >= offUntil
 *
 * Only an append of one entry (or none: a hard state, a snapshot marker) qualifies. A member with
 * one entry to save has nothing else to do, whereas a batch means requests keep coming, and a
 * member that blocks on the disk stops reading them while it could have overlapped the two: with
 * batches of up to 4 KiB in place, 16 clients got about 6 % fewer writes through than with every
 * write in the pool (three interleaved runs), and one-entry appends alone lost nothing.
 *
 * Invariants:
 *   - averageMs is an exponentially weighted mean (weight 1/averageWindow) of every recorded
 *     write's duration, in place or not, and 0 before the first: a disk that turns slow moves
 *     the member to the thread pool, and one that is fast again (measured through the pool, which
 *     only adds to its time) brings it back;
 *   - a write in place that took longer than stallMs sets offUntil to its end plus stallOffMs:
 *     a disk that stalls blocks the event loop at most once per stallOffMs, for one small write;
 *   - a thread-pool write never sets offUntil (its time includes the event loop's own delays);
 *   - bytesMax 0 turns writing in place off;
 *   - every stall is counted and told to onStall once, after the policy has turned itself off.
 * (entries counts the Raft entries of the whole append, bytes the buffer of one write.)
 */

export interface SyncWriteLimits {
  /** Appends of at most this many entries... */
  entriesMax: number
  /** ...and this many bytes may be written in place (0: never). */
  bytesMax: number
  /** ...while the moving average of write times is at most this. */
  fastMs: number
  /** A write in place that took longer than this... */
  stallMs: number
  /** ...sends every write through the thread pool for this long. */
  stallOffMs: number
}

/** What a stall was: told to onStall so the member can log it (the WAL itself has no logger). */
export interface SyncWriteStall {
  /** How long the write in place took. */
  durationMs: number
  bytes: number
  /** How long every write now goes through the thread pool (stallOffMs). */
  offMs: number
}

/** Weight of the newest duration in the moving average: 1 / averageWindow. */
const averageWindow = 8

export interface SyncWriteCounts {
  /** Appends written in place. */
  inPlace: number
  /** Appends written through the thread pool. */
  pool: number
  /** Writes in place that took longer than stallMs (each turned them off for stallOffMs). */
  stalls: number
}

export class SyncWritePolicy {
  readonly #limits: SyncWriteLimits
  #averageMs = 0
  #offUntil = Number.NEGATIVE_INFINITY
  readonly #counts: SyncWriteCounts = { inPlace: 0, pool: 0, stalls: 0 }
  readonly #onStall: ((stall: SyncWriteStall) => void) | undefined

  constructor(limits: SyncWriteLimits, onStall?: (stall: SyncWriteStall) => void) {
    this.#limits = limits
    this.#onStall = onStall
  }

  get averageMs(): number {
    return this.#averageMs
  }

  get counts(): Readonly<SyncWriteCounts> {
    return this.#counts
  }

  /** Whether a write of `bytes` bytes for an append of `entries` entries, at `nowMs`, goes in place. */
  inPlace(bytes: number, entries: number, nowMs: number): boolean {
    const limits = this.#limits
    return (
      entries <= limits.entriesMax &&
      bytes <= limits.bytesMax &&
      this.#averageMs <= limits.fastMs &&
      nowMs >= this.#offUntil
    )
  }

  /** Records a finished write: how long it took, which way it went, when it ended, its size. */
  recorded(durationMs: number, inPlace: boolean, endMs: number, bytes = 0): void {
    this.#averageMs += (durationMs - this.#averageMs) / averageWindow
    if (!inPlace) {
      this.#counts.pool++
      return
    }
    this.#counts.inPlace++
    if (durationMs > this.#limits.stallMs) {
      this.#counts.stalls++
      this.#offUntil = endMs + this.#limits.stallOffMs
      this.#onStall?.({ durationMs, bytes, offMs: this.#limits.stallOffMs })
    }
  }
}
