/**
 * State machine safety and acknowledged writes.
 *
 * - One global history: index -> chain hash of the applied sequence up to it, filled by the first
 *   node to apply that index. Every later apply (or snapshot restore) at that index must match, so
 *   every node's applied sequence is a prefix of one history.
 * - A write acknowledged to a client fixes the chain hash at its index; a node applying something
 *   else there lost an acknowledged write. At the end, every live member must have applied at
 *   least up to the newest acknowledged write.
 * - A node's applied index never goes back while it is up (a snapshot older than what it applied
 *   must not be restored).
 */
import type { NodeId } from '../../core/types.ts'
import type { Fail } from './fail.ts'

export class ApplyChecker {
  readonly #fail: Fail
  /** history[index]: chain hash after applying 1..index, as the first applier saw it. */
  readonly #history: number[] = []
  readonly #acked = new Map<number, number>()
  #ackedIndexMax = 0

  constructor(fail: Fail) {
    this.#fail = fail
  }

  get ackedIndexMax(): number {
    return this.#ackedIndexMax
  }

  /** Highest index any node applied. */
  get appliedIndexMax(): number {
    return this.#history.length - 1
  }

  applied(node: NodeId, index: number, chain: number): void {
    const seen = this.#history[index]
    if (seen === undefined) {
      this.#history[index] = chain
      return
    }
    if (seen === chain) return
    const acked = this.#acked.get(index)
    if (acked !== undefined && acked !== chain) {
      this.#fail('acked-write-lost', `node ${node} applied another entry at acknowledged index ${index}`)
    } else {
      this.#fail('state-machine-safety', `node ${node} applied a different history at index ${index}`)
    }
  }

  /** `node` restored a snapshot at `index` while having applied `appliedBefore`. */
  restored(node: NodeId, index: number, chain: number, appliedBefore: number): void {
    if (index < appliedBefore) {
      this.#fail('monotonicity', `node ${node} restored snapshot ${index} after applying ${appliedBefore}`)
    }
    const seen = this.#history[index]
    if (seen === undefined) {
      this.#fail('state-machine-safety', `node ${node} restored snapshot ${index} that no node applied`)
    } else if (seen !== chain) {
      this.#fail('state-machine-safety', `node ${node} restored a snapshot of another history at ${index}`)
    }
  }

  /** A client's write was acknowledged: it was applied at index with this chain hash. */
  acked(index: number, chain: number): void {
    this.#acked.set(index, chain)
    this.#ackedIndexMax = Math.max(this.#ackedIndexMax, index)
  }

  /** End of run: `node` is a live member that has converged at `applied`. */
  converged(node: NodeId, applied: number): void {
    if (applied < this.#ackedIndexMax) {
      this.#fail(
        'acked-write-lost',
        `node ${node} converged at ${applied}, before acknowledged ${this.#ackedIndexMax}`,
      )
    }
  }
}
