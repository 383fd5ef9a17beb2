/**
 * The simulated disk of one node: what the driver persisted, following the Ready contract.
 *
 * A Ready is persisted as a list of steps (snapshot, then each entry, then the hard state); every
 * step is durable once done, so a crash in the middle of a Ready keeps a prefix of its steps (a torn
 * write). A crash keeps exactly what is here; everything else of the node is lost.
 *
 * Invariants:
 *   entries[i].index === logStart.index + 1 + i (contiguous after the compaction point)
 *   snapshot, if any, has meta.index >= logStart.index
 *   hardState.commit may be behind logStart.index after a Ready torn right after its snapshot; the
 *     core lifts commit to the compaction point on load (a snapshot holds only committed entries)
 *
 * Ownership: load() returns fresh arrays and objects; Entry and Snapshot objects are shared and
 * immutable (the driver freezes them).
 */
import type { Entry, HardState, PersistedState, Ready, Snapshot } from '../core/types.ts'
import { SimViolation } from './violation.ts'

export type PersistStep =
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'entry'; entry: Entry }
  | { kind: 'hardState'; hardState: HardState }

export interface Compaction {
  snapshot: Snapshot
  logStart: { index: number; term: number }
}

/** The persistence steps of one Ready, in contract order. */
export function persistSteps(rd: Ready): PersistStep[] {
  const steps: PersistStep[] = []
  if (rd.snapshot !== undefined) steps.push({ kind: 'snapshot', snapshot: rd.snapshot })
  for (const entry of rd.entries) steps.push({ kind: 'entry', entry })
  if (rd.hardState !== undefined) steps.push({ kind: 'hardState', hardState: rd.hardState })
  return steps
}

export class SimDisk {
  #hardState: HardState
  #snapshot: Snapshot | undefined
  #logStart: { index: number; term: number }
  #entries: Entry[]
  /** Test-only storage bug: load() drops the last persisted entry. */
  readonly #losesLastEntry: boolean

  constructor(initial: PersistedState, losesLastEntry = false) {
    this.#hardState = { ...initial.hardState }
    this.#snapshot = initial.snapshot
    this.#logStart = { ...initial.logStart }
    this.#entries = initial.entries.slice()
    this.#losesLastEntry = losesLastEntry
  }

  get hardState(): HardState {
    return this.#hardState
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot
  }

  get logStart(): { index: number; term: number } {
    return this.#logStart
  }

  get lastIndex(): number {
    return this.#logStart.index + this.#entries.length
  }

  get lastTerm(): number {
    const last = this.#entries[this.#entries.length - 1]
    return last === undefined ? this.#logStart.term : last.term
  }

  /** The term at index, or undefined when compacted away or beyond the log. */
  termAt(index: number): number | undefined {
    if (index === this.#logStart.index) return this.#logStart.term
    return this.#entries[index - this.#logStart.index - 1]?.term
  }

  persist(step: PersistStep): void {
    switch (step.kind) {
      case 'snapshot':
        this.#persistSnapshot(step.snapshot)
        return
      case 'entry':
        this.#persistEntry(step.entry)
        return
      case 'hardState':
        this.#hardState = { ...step.hardState }
        return
    }
  }

  /** Persists an application snapshot returned by RaftCore.compact(): snapshot first, then the drop. */
  persistCompaction(compaction: Compaction): void {
    const { snapshot, logStart } = compaction
    if (this.#snapshot === undefined || snapshot.meta.index >= this.#snapshot.meta.index) {
      this.#snapshot = snapshot
    }
    const drop = logStart.index - this.#logStart.index
    if (drop <= 0) return
    if (logStart.index > this.lastIndex || this.termAt(logStart.index) !== logStart.term) {
      throw new SimViolation(
        'ready-contract',
        `compaction to ${logStart.index} beyond or unlike the disk log`,
      )
    }
    this.#entries = this.#entries.slice(drop)
    this.#logStart = { ...logStart }
  }

  /** What a (re)starting node recovers. With the storage bug, a restart loses the last entry for good. */
  load(restart: boolean): PersistedState {
    if (restart && this.#losesLastEntry && this.#entries.length > 0) this.#entries.pop()
    return {
      hardState: { ...this.#hardState },
      snapshot: this.#snapshot,
      logStart: { ...this.#logStart },
      entries: this.#entries.slice(),
    }
  }

  #persistSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta
    if (index <= this.#logStart.index) {
      throw new SimViolation(
        'ready-contract',
        `Ready snapshot ${index} not after log start ${this.#logStart.index}`,
      )
    }
    this.#snapshot = snapshot
    this.#logStart = { index, term }
    this.#entries = []
  }

  #persistEntry(entry: Entry): void {
    const offset = entry.index - this.#logStart.index - 1
    if (offset < 0 || offset > this.#entries.length) {
      throw new SimViolation(
        'ready-contract',
        `Ready entry ${entry.index} outside (${this.#logStart.index}, ${this.lastIndex + 1}]`,
      )
    }
    this.#entries.length = offset
    this.#entries.push(entry)
  }
}
