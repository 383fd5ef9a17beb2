/**
 * The checkers' own record of what one node has persisted: the term and rolling prefix hash of
 * every log index from the compaction point on, the persisted hard state and snapshot index.
 *
 * It is kept apart from the simulated disk on purpose: it is updated from the same Ready steps,
 * so after a restart the two can be compared (a disk that lost something disagrees with it).
 *
 * Invariants: terms.length === prefixes.length >= 1; index startIndex + i has terms[i] and
 * prefixes[i]; entry 0 is the compaction point (its prefix hash covers everything before it).
 */
import type { HardState } from '../../core/types.ts'

export class LogShadow {
  #startIndex: number
  #terms: number[]
  #prefixes: number[]
  hardState: HardState
  snapshotIndex: number
  /** Highest commit seen while this incarnation is up (commit must not go back). */
  commitSeen: number

  constructor(start: { index: number; term: number }, startPrefix: number, hardState: HardState) {
    this.#startIndex = start.index
    this.#terms = [start.term]
    this.#prefixes = [startPrefix]
    this.hardState = { ...hardState }
    this.snapshotIndex = 0
    this.commitSeen = hardState.commit
  }

  get startIndex(): number {
    return this.#startIndex
  }

  get lastIndex(): number {
    return this.#startIndex + this.#terms.length - 1
  }

  get lastTerm(): number {
    return this.#terms[this.#terms.length - 1] as number
  }

  get lastPrefix(): number {
    return this.#prefixes[this.#prefixes.length - 1] as number
  }

  termAt(index: number): number | undefined {
    return this.#terms[index - this.#startIndex]
  }

  prefixAt(index: number): number | undefined {
    return this.#prefixes[index - this.#startIndex]
  }

  /** Writes index (truncating everything at or after it). index must be in (startIndex, lastIndex + 1]. */
  write(index: number, term: number, prefix: number): void {
    const offset = index - this.#startIndex
    if (offset < 1 || offset > this.#terms.length) throw new Error(`LogShadow: write ${index} out of range`)
    this.#terms.length = offset
    this.#prefixes.length = offset
    this.#terms.push(term)
    this.#prefixes.push(prefix)
  }

  /** Replaces the whole log with a snapshot's compaction point. */
  resetTo(start: { index: number; term: number }, startPrefix: number): void {
    this.#startIndex = start.index
    this.#terms = [start.term]
    this.#prefixes = [startPrefix]
  }

  /** Drops indexes before `index` (it becomes the compaction point). */
  compactTo(index: number): void {
    const drop = index - this.#startIndex
    if (drop <= 0) return
    if (index > this.lastIndex) throw new Error(`LogShadow: compact to ${index} beyond ${this.lastIndex}`)
    this.#terms = this.#terms.slice(drop)
    this.#prefixes = this.#prefixes.slice(drop)
    this.#startIndex = index
  }
}
