/**
 * Rebuilds the persisted log state from WAL records, in file order. Pure: no IO.
 *
 * Replay starts from the header of the oldest remaining segment, which holds the state at the
 * moment that segment was created. Older segments may have been deleted by compaction, so the
 * entries between the header's logStart and its lastIndex can be unknown: `firstIndex` is then
 * above logStart.index + 1 (an unknown prefix). Only a compaction or snapshot record that covers
 * the gap may resolve it; deletion guarantees one follows (wal.ts drops a segment only once a
 * durable compaction covers all of its live entries). A gap still open at the end means segments
 * are missing: corruption.
 *
 * Invariants (between records):
 *   entries[i].index === firstIndex + i
 *   logStart.index < firstIndex                 (=== logStart.index + 1 when the prefix is known)
 *   a later entries record at index i drops every entry >= i first
 * Each apply* returns undefined, or the reason the record cannot follow what came before.
 */
import type { Entry, HardState } from '../core/types.ts'
import type { IndexTerm, SegmentHeader } from './payload.ts'

export interface ReplayedLog {
  hardState: HardState
  logStart: IndexTerm
  entries: Entry[]
}

export class Replay {
  hardState: HardState
  logStart: IndexTerm
  firstIndex: number
  readonly entries: Entry[] = []

  constructor(header: SegmentHeader) {
    this.hardState = header.hardState
    this.logStart = header.logStart
    this.firstIndex = header.lastIndex + 1
  }

  get lastIndex(): number {
    return this.firstIndex + this.entries.length - 1
  }

  get prefixKnown(): boolean {
    return this.firstIndex === this.logStart.index + 1
  }

  /** A later segment's header must describe exactly the state replayed so far. */
  checkHeader(h: SegmentHeader): string | undefined {
    const hs = this.hardState
    const same =
      h.hardState.term === hs.term &&
      h.hardState.vote === hs.vote &&
      h.hardState.commit === hs.commit &&
      h.logStart.index === this.logStart.index &&
      h.logStart.term === this.logStart.term &&
      h.lastIndex === this.lastIndex
    if (same) return undefined
    return `segment header ${describeHeader(h)} does not match the replayed state ${this.#describe()}`
  }

  applyEntries(entries: readonly Entry[]): string | undefined {
    const first = entries[0]!.index
    if (first <= this.logStart.index)
      return `entry ${first} at or behind the log start ${this.logStart.index}`
    if (first > this.lastIndex + 1) return `entry ${first} leaves a hole after ${this.lastIndex}`
    if (first < this.firstIndex) {
      this.entries.length = 0
      this.firstIndex = first
    } else {
      this.entries.length = first - this.firstIndex
    }
    for (const e of entries) this.entries.push(e)
    return undefined
  }

  applyHardState(hs: HardState): undefined {
    this.hardState = hs
    return undefined
  }

  /** A snapshot from the leader replaced the log. */
  applySnapshot(at: IndexTerm): string | undefined {
    if (at.index <= this.logStart.index)
      return `snapshot ${at.index} at or behind the log start ${this.logStart.index}`
    this.logStart = at
    this.entries.length = 0
    this.firstIndex = at.index + 1
    return undefined
  }

  /** The log now starts after `at`. */
  applyCompaction(at: IndexTerm): string | undefined {
    if (at.index <= this.logStart.index)
      return `compaction to ${at.index} behind the log start ${this.logStart.index}`
    if (at.index > this.lastIndex) return `compaction to ${at.index} beyond the last entry ${this.lastIndex}`
    if (at.index < this.firstIndex - 1) {
      // Still inside the unknown prefix: a later compaction must cover the rest of the gap.
      this.logStart = at
      return undefined
    }
    const kept = at.index - this.firstIndex + 1
    if (kept > 0 && this.entries[kept - 1]!.term !== at.term) {
      return `compaction to ${at.index} at term ${at.term}, but the entry has term ${this.entries[kept - 1]!.term}`
    }
    this.entries.splice(0, kept)
    this.logStart = at
    this.firstIndex = at.index + 1
    return undefined
  }

  /** The final state, or the reason there is none (an unresolved gap: segments are missing). */
  finish(): ReplayedLog | string {
    if (!this.prefixKnown) {
      return `entries ${this.logStart.index + 1}..${this.firstIndex - 1} are missing (a deleted or lost segment)`
    }
    return { hardState: this.hardState, logStart: this.logStart, entries: this.entries }
  }

  #describe(): string {
    const hs = this.hardState
    return `{hardState ${hs.term}/${hs.vote}/${hs.commit}, logStart ${this.logStart.index}/${this.logStart.term}, lastIndex ${this.lastIndex}}`
  }
}

function describeHeader(h: SegmentHeader): string {
  const hs = h.hardState
  return `{seq ${h.seq}, hardState ${hs.term}/${hs.vote}/${hs.commit}, logStart ${h.logStart.index}/${h.logStart.term}, lastIndex ${h.lastIndex}}`
}
