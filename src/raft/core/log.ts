/**
 * The in-memory Raft log of one node: a compaction point, the entries after it, and the indices
 * that say how far they are committed, applied and persisted.
 *
 * Invariants (checked by #check in tests and after every mutation that could break them):
 *   entries[i].index === startIndex + 1 + i            (contiguous after the compaction point)
 *   entries' terms never decrease, and are >= startTerm
 *   startIndex <= committed <= lastIndex()              (the compaction point is always committed)
 *   applied <= committed
 *   persistedIndex <= lastIndex(); entries with index <= persistedIndex are durable on this node
 *   snapshot, if any, has snapshot.meta.index >= startIndex (entries may be kept behind it)
 *
 * Ownership: arrays returned by slice() and unstableEntries() are fresh; the Entry objects in them
 * are shared and must be treated as immutable by everyone.
 */
import type { Entry, Snapshot } from './types.ts'

/** Accounting overhead of one entry beyond its data bytes (index, term, type, framing). */
export const entryOverheadBytes = 24

export function entryBytes(entry: Entry): number {
  return entry.data.byteLength + entryOverheadBytes
}

export class RaftLog {
  #startIndex: number
  #startTerm: number
  #entries: Entry[]
  committed: number
  applied: number
  persistedIndex: number
  /** Newest snapshot this node holds: sent to followers that need entries behind startIndex. */
  snapshot: Snapshot | undefined
  /** A snapshot received from the leader that is not yet persisted and applied. */
  pendingSnapshot: Snapshot | undefined

  constructor(
    start: { index: number; term: number },
    entries: Entry[],
    committed: number,
    applied: number,
    snapshot: Snapshot | undefined,
  ) {
    this.#startIndex = start.index
    this.#startTerm = start.term
    this.#entries = entries.slice()
    this.committed = committed
    this.applied = applied
    this.persistedIndex = this.lastIndex()
    this.snapshot = snapshot
    this.pendingSnapshot = undefined
    assertLog(
      this.#entries.every((e, i) => e.index === start.index + 1 + i),
      'entries are not contiguous',
    )
    assertLog(snapshot === undefined || snapshot.meta.index >= start.index, 'snapshot behind log start')
    assertLog(start.index <= committed && committed <= this.lastIndex(), 'commit outside the log')
    assertLog(applied <= committed, 'applied beyond commit')
  }

  get startIndex(): number {
    return this.#startIndex
  }

  firstIndex(): number {
    return this.#startIndex + 1
  }

  lastIndex(): number {
    return this.#startIndex + this.#entries.length
  }

  lastTerm(): number {
    return this.#entries.length === 0
      ? this.#startTerm
      : (this.#entries[this.#entries.length - 1] as Entry).term
  }

  /** The term of the entry at index, or undefined if it is compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index === this.#startIndex) return this.#startTerm
    if (index < this.#startIndex || index > this.lastIndex()) return undefined
    return (this.#entries[index - this.#startIndex - 1] as Entry).term
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /** Raft paper §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  /**
   * Entries in [lo, hi), stopping once bytesMax is exceeded (at least one entry is returned when the
   * range is not empty). Undefined if lo is compacted away.
   */
  slice(lo: number, hi: number, bytesMax = Number.POSITIVE_INFINITY): Entry[] | undefined {
    if (lo <= this.#startIndex) return undefined
    assertLog(hi <= this.lastIndex() + 1, `slice [${lo}, ${hi}) beyond last index ${this.lastIndex()}`)
    const out: Entry[] = []
    let bytes = 0
    for (let index = lo; index < hi; index++) {
      const entry = this.#entries[index - this.#startIndex - 1] as Entry
      bytes += entryBytes(entry)
      if (out.length > 0 && bytes > bytesMax) break
      out.push(entry)
    }
    return out
  }

  /** Entries not yet persisted on this node. */
  unstableEntries(): Entry[] {
    return this.#entries.slice(this.persistedIndex - this.#startIndex)
  }

  /** Committed entries not yet applied, up to bytesMax (at least one if any). */
  nextCommittedEntries(bytesMax: number): Entry[] {
    const from = Math.max(this.applied, this.#startIndex) + 1
    if (from > this.committed) return []
    return this.slice(from, this.committed + 1, bytesMax) ?? []
  }

  /**
   * Appends entries, first truncating any existing entries at or after entries[0].index.
   * Truncating a committed entry is a safety violation and throws.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    assertLog(first.index > this.committed, `truncating committed entry ${first.index} <= ${this.committed}`)
    assertLog(first.index <= this.lastIndex() + 1, `gap: appending ${first.index} after ${this.lastIndex()}`)
    this.#entries.length = first.index - this.#startIndex - 1
    for (const entry of entries) this.#entries.push(entry)
    this.persistedIndex = Math.min(this.persistedIndex, first.index - 1)
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has `logTerm`, append the new part
   * of `entries`, advance commit to min(commit, last new index) and return the last new index.
   * Returns undefined when the log does not match at `index`.
   */
  maybeAppend(index: number, logTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNewIndex = index + entries.length
    const conflict = this.#findConflict(entries)
    if (conflict !== 0) this.append(entries.slice(conflict - index - 1))
    this.commitTo(Math.min(commit, lastNewIndex))
    return lastNewIndex
  }

  /** The index of the first entry that is new or differs from ours; 0 if all are already here. */
  #findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index
    }
    return 0
  }

  /**
   * The largest index <= index whose term is <= term (or the compaction point). Used on both sides
   * of fast backtracking to skip a whole conflicting term per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex())
    while (i > this.#startIndex && (this.term(i) as number) > term) i--
    return i
  }

  commitTo(index: number): void {
    if (index <= this.committed) return
    assertLog(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}: log lost?`)
    this.committed = index
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return
    assertLog(index <= this.committed, `applied ${index} beyond commit ${this.committed}`)
    this.applied = index
  }

  /** Entries up to index with this term are now durable (ignored if the log changed meanwhile). */
  stableTo(index: number, term: number): void {
    if (index > this.persistedIndex && this.matchTerm(index, term)) this.persistedIndex = index
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    assertLog(snapshot.meta.index > this.committed, 'restoring a snapshot behind commit')
    this.#startIndex = snapshot.meta.index
    this.#startTerm = snapshot.meta.term
    this.#entries = []
    this.committed = snapshot.meta.index
    this.persistedIndex = snapshot.meta.index
    this.snapshot = snapshot
    this.pendingSnapshot = snapshot
  }

  /** Records the application's snapshot and drops entries behind it, keeping `retained` of them. */
  compact(snapshot: Snapshot, retained: number): void {
    const index = snapshot.meta.index
    assertLog(index <= this.applied, `snapshot ${index} beyond applied ${this.applied}`)
    assertLog(this.term(index) === snapshot.meta.term, 'snapshot term does not match the log')
    this.snapshot = snapshot
    const newStart = Math.min(Math.max(this.#startIndex, index - retained), this.persistedIndex)
    if (newStart <= this.#startIndex) return
    this.#startTerm = this.term(newStart) as number
    this.#entries = this.#entries.slice(newStart - this.#startIndex)
    this.#startIndex = newStart
  }
}

function assertLog(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`raft log invariant: ${message}`)
}
