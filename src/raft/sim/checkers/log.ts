/**
 * Log matching, commit agreement and leader completeness, over every node's persisted log.
 *
 * - Log matching: the first node to persist (index, term) fixes its prefix hash; any node that
 *   persists the same (index, term) with another prefix hash breaks it. One comparison covers the
 *   entry and the whole prefix before it.
 * - Commit agreement: when a node's persisted commit reaches c, its prefix at c must equal every
 *   prefix recorded as committed at or below c that it still holds. Commit never goes back while a
 *   node is up, and never points beyond the node's persisted log.
 * - Leader completeness: a commit observed on a node in term T was decided by a leader of a term
 *   <= T, so every leader of a term >= T must hold it. Checked whenever a leader finishes a Ready.
 *
 * Invariant: a node's shadow holds exactly the Ready steps persisted on its disk (see LogShadow).
 */
import type { HardState, NodeId, PersistedState } from '../../core/types.ts'
import type { PersistStep } from '../disk.ts'
import { combineHash, emptyPrefixHash, entryHash } from '../hash.ts'
import type { Fail } from './fail.ts'
import { LogShadow } from './log-shadow.ts'

/** Terms must stay below this for (index, term) keys to be collision free. */
const termLimit = 0x10_0000

function indexTermKey(index: number, term: number): number {
  if (term >= termLimit) throw new Error(`LogChecker: term ${term} beyond ${termLimit}`)
  return index * termLimit + term
}

export class LogChecker {
  readonly #fail: Fail
  readonly #shadows = new Map<NodeId, LogShadow>()
  /** (index, term) -> prefix hash, fixed by the first node that persisted it. */
  readonly #prefixes = new Map<number, number>()
  /** index -> prefix hash of indexes seen committed; #committedIndexes keeps them sorted. */
  readonly #committed = new Map<number, number>()
  readonly #committedIndexes: number[] = []
  /** term -> highest commit observed on a node in that term. */
  readonly #commitByTerm = new Map<number, number>()
  #commitTermMax = 0
  #commitIndexMax = 0

  constructor(fail: Fail) {
    this.#fail = fail
  }

  shadow(node: NodeId): LogShadow {
    const shadow = this.#shadows.get(node)
    if (shadow === undefined) throw new Error(`LogChecker: unknown node ${node}`)
    return shadow
  }

  /** A node's disk was (re)initialised with `state` (a new node, or a restart after an accepted loss). */
  start(node: NodeId, state: PersistedState): void {
    const shadow = new LogShadow(state.logStart, this.#startPrefix(state.logStart), state.hardState)
    shadow.snapshotIndex = state.snapshot?.meta.index ?? 0
    this.#shadows.set(node, shadow)
    for (const entry of state.entries)
      this.#persistEntry(node, shadow, entry.index, entry.term, entryHash(entry))
  }

  /** The node restarted from its disk: its commit may start again from the persisted one. */
  restarted(node: NodeId): void {
    const shadow = this.shadow(node)
    shadow.commitSeen = shadow.hardState.commit
  }

  persist(node: NodeId, step: PersistStep): void {
    const shadow = this.shadow(node)
    switch (step.kind) {
      case 'snapshot': {
        const { index, term } = step.snapshot.meta
        shadow.resetTo({ index, term }, this.#startPrefix({ index, term }))
        shadow.snapshotIndex = index // the hard state is recorded as persisted; the core lifts commit on load
        return
      }
      case 'entry':
        this.#persistEntry(node, shadow, step.entry.index, step.entry.term, entryHash(step.entry))
        return
      case 'hardState':
        shadow.hardState = { ...step.hardState }
        return
    }
  }

  compacted(node: NodeId, logStartIndex: number, snapshotIndex: number): void {
    const shadow = this.shadow(node)
    shadow.compactTo(logStartIndex)
    shadow.snapshotIndex = Math.max(shadow.snapshotIndex, snapshotIndex)
  }

  /** The node's persisted hard state now says commit; `term` is its persisted term. */
  commit(node: NodeId, hardState: HardState): void {
    const { commit, term } = hardState
    const shadow = this.shadow(node)
    if (commit < shadow.commitSeen) {
      this.#fail('monotonicity', `node ${node} commit went back ${shadow.commitSeen} -> ${commit}`)
    }
    shadow.commitSeen = Math.max(shadow.commitSeen, commit)
    if (commit > shadow.lastIndex) {
      this.#fail(
        'ready-contract',
        `node ${node} commit ${commit} beyond its persisted log ${shadow.lastIndex}`,
      )
      return
    }
    const prefix = shadow.prefixAt(commit)
    if (prefix === undefined) return
    const prior = this.#committedAtMost(commit)
    if (
      prior !== undefined &&
      prior >= shadow.startIndex &&
      shadow.prefixAt(prior) !== this.#committed.get(prior)
    ) {
      this.#fail(
        'state-machine-safety',
        `node ${node} committed ${commit} over a log unlike the committed ${prior}`,
      )
    }
    this.#recordCommitted(commit, prefix, term)
  }

  /** `node` is a leader of `term` whose persisted log equals its in-memory log. */
  checkLeader(node: NodeId, term: number): void {
    const c = this.#commitVisibleTo(term)
    if (c === 0) return
    const shadow = this.shadow(node)
    if (c > shadow.lastIndex) {
      this.#fail(
        'leader-completeness',
        `leader ${node} of term ${term} lacks committed index ${c} (last index ${shadow.lastIndex})`,
      )
      return
    }
    if (c >= shadow.startIndex && shadow.prefixAt(c) !== this.#committed.get(c)) {
      this.#fail(
        'leader-completeness',
        `leader ${node} of term ${term} holds another entry at committed ${c}`,
      )
    }
  }

  #persistEntry(node: NodeId, shadow: LogShadow, index: number, term: number, hash: number): void {
    const prevPrefix = shadow.prefixAt(index - 1)
    const prevTerm = shadow.termAt(index - 1)
    if (prevPrefix === undefined || prevTerm === undefined || index > shadow.lastIndex + 1) {
      this.#fail('ready-contract', `node ${node} persisted entry ${index} outside its log`)
      return
    }
    if (term < prevTerm)
      this.#fail('ready-contract', `node ${node} entry ${index} term ${term} < ${prevTerm}`)
    const prefix = combineHash(prevPrefix, hash)
    if (index <= shadow.hardState.commit && index <= shadow.lastIndex && shadow.prefixAt(index) !== prefix) {
      this.#fail('state-machine-safety', `node ${node} overwrote its committed entry ${index}`)
    }
    const key = indexTermKey(index, term)
    const seen = this.#prefixes.get(key)
    if (seen === undefined) this.#prefixes.set(key, prefix)
    else if (seen !== prefix) {
      this.#fail('log-matching', `node ${node} holds (index ${index}, term ${term}) with another prefix`)
    }
    shadow.write(index, term, prefix)
  }

  #startPrefix(start: { index: number; term: number }): number {
    if (start.index === 0) return emptyPrefixHash
    const prefix = this.#prefixes.get(indexTermKey(start.index, start.term))
    if (prefix === undefined)
      throw new Error(`LogChecker: no node ever persisted (${start.index}, ${start.term})`)
    return prefix
  }

  #recordCommitted(index: number, prefix: number, term: number): void {
    if (!this.#committed.has(index)) {
      this.#committed.set(index, prefix)
      insertSorted(this.#committedIndexes, index)
    }
    if ((this.#commitByTerm.get(term) ?? 0) < index) this.#commitByTerm.set(term, index)
    this.#commitTermMax = Math.max(this.#commitTermMax, term)
    this.#commitIndexMax = Math.max(this.#commitIndexMax, index)
  }

  /** Highest commit observed on any node in a term <= term. */
  #commitVisibleTo(term: number): number {
    if (term >= this.#commitTermMax) return this.#commitIndexMax
    let c = 0
    for (const [t, index] of this.#commitByTerm) if (t <= term && index > c) c = index
    return c
  }

  #committedAtMost(index: number): number | undefined {
    const list = this.#committedIndexes
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((list[mid] as number) <= index) lo = mid + 1
      else hi = mid
    }
    return lo === 0 ? undefined : list[lo - 1]
  }
}

function insertSorted(list: number[], value: number): void {
  let i = list.length
  while (i > 0 && (list[i - 1] as number) > value) i--
  list.splice(i, 0, value)
}
