/**
 * Read linearizability for ReadIndex reads.
 *
 * Writes are totally ordered by log index. A read invoked after writes up to index w were
 * acknowledged must be answered from a state that includes them: the applied index at which the
 * node answered must be >= w. (The answer's value is the node's state at that index, which state
 * machine safety already ties to the global history.)
 *
 * Invariant: an operation id is invoked at most once.
 */
import type { Fail } from './fail.ts'

/** Reads tracked at once; past it, the oldest are forgotten (the client timed out long ago). */
const readsTrackedMax = 100_000

export class ReadChecker {
  readonly #fail: Fail
  /** op -> highest acknowledged write index when the read was invoked. */
  readonly #invoked = new Map<number, number>()

  constructor(fail: Fail) {
    this.#fail = fail
  }

  invoked(op: number, ackedIndexMax: number): void {
    if (this.#invoked.has(op)) throw new Error(`ReadChecker: read ${op} invoked twice`)
    if (this.#invoked.size >= readsTrackedMax) {
      const oldest = this.#invoked.keys().next().value as number
      this.#invoked.delete(oldest)
    }
    this.#invoked.set(op, ackedIndexMax)
  }

  answered(op: number, node: number, appliedIndex: number): void {
    const needed = this.#invoked.get(op)
    if (needed === undefined) return
    this.#invoked.delete(op)
    if (appliedIndex < needed) {
      this.#fail(
        'read-linearizability',
        `read ${op} answered by node ${node} at applied ${appliedIndex}, but write ${needed} was acknowledged before it started`,
      )
    }
  }
}
