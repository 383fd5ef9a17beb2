/**
 * Ids (keys or lease ids) ordered by an absolute deadline in ms, so the leader can list what is due
 * in O(log n + due) without scanning every key.
 *
 * Derived state: rebuilt from the nodes and leases on restore, never snapshotted.
 * Invariants: each id has at most one deadline; `#order` holds exactly one entry per id in
 * `#deadlines`, encoded as 16 zero-padded digits of the deadline followed by the id.
 */
import { SortedKeys } from './sorted-keys.ts'

const deadlineDigits = 16

export class DeadlineIndex {
  #deadlines = new Map<string, number>()
  #order = new SortedKeys()

  get size(): number {
    return this.#deadlines.size
  }

  deadlineOf(id: string): number | undefined {
    return this.#deadlines.get(id)
  }

  /** Sets (or with undefined, clears) the deadline of `id`. */
  set(id: string, deadlineMs: number | undefined): void {
    const old = this.#deadlines.get(id)
    if (old === deadlineMs) return
    if (old !== undefined) this.#order.delete(entryOf(old, id))
    if (deadlineMs === undefined) {
      this.#deadlines.delete(id)
      return
    }
    if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 0)
      throw new Error(`deadline index: bad deadline ${deadlineMs}`)
    this.#deadlines.set(id, deadlineMs)
    this.#order.add(entryOf(deadlineMs, id))
  }

  /** Ids whose deadline is <= nowMs, earliest first, at most `countMax` of them. */
  due(nowMs: number, countMax: number): string[] {
    const out: string[] = []
    if (countMax <= 0) return out
    for (const entry of this.#order) {
      if (Number(entry.slice(0, deadlineDigits)) > nowMs) break
      out.push(entry.slice(deadlineDigits))
      if (out.length >= countMax) break
    }
    return out
  }

  clear(): void {
    this.#deadlines.clear()
    this.#order.clear()
  }
}

function entryOf(deadlineMs: number, id: string): string {
  return String(deadlineMs).padStart(deadlineDigits, '0') + id
}
