/**
 * A sorted set of strings: O(log n) membership changes, ordered iteration from any string.
 *
 * Stored as a list of sorted chunks of at most `chunkKeysMax` strings (a one-level B-tree), so an
 * insert moves at most one chunk's worth of references instead of the whole array.
 *
 * Invariants: every chunk is non-empty and sorted; chunk i's last string < chunk i+1's first; no
 * string appears twice; `size` is the total count. Order is JavaScript's `<` on strings (UTF-16
 * code units; byte order for ASCII).
 */

const chunkKeysMax = 512

export class SortedKeys {
  #chunks: string[][] = []
  #size = 0

  get size(): number {
    return this.#size
  }

  has(key: string): boolean {
    const chunk = this.#chunks[this.#chunkFor(key)]
    if (chunk === undefined) return false
    return chunk[lowerBound(chunk, key)] === key
  }

  /** Adds `key`; returns false if it was already present. */
  add(key: string): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key])
      this.#size = 1
      return true
    }
    const c = Math.min(this.#chunkFor(key), this.#chunks.length - 1)
    const chunk = this.#chunks[c] as string[]
    const i = lowerBound(chunk, key)
    if (chunk[i] === key) return false
    chunk.splice(i, 0, key)
    this.#size++
    if (chunk.length > chunkKeysMax) this.#chunks.splice(c + 1, 0, chunk.splice(chunkKeysMax / 2))
    return true
  }

  /** Removes `key`; returns false if it was absent. */
  delete(key: string): boolean {
    const c = this.#chunkFor(key)
    const chunk = this.#chunks[c]
    if (chunk === undefined) return false
    const i = lowerBound(chunk, key)
    if (chunk[i] !== key) return false
    chunk.splice(i, 1)
    this.#size--
    if (chunk.length === 0) this.#chunks.splice(c, 1)
    return true
  }

  /** The strings >= start, in order. Do not change the set while iterating. */
  *from(start: string): Generator<string> {
    let c = this.#chunkFor(start)
    const first = this.#chunks[c]
    if (first === undefined) return
    for (let i = lowerBound(first, start); i < first.length; i++) yield first[i] as string
    for (c++; c < this.#chunks.length; c++) yield* this.#chunks[c] as string[]
  }

  /** The strings in [start, end), in order; `end` '\0' means no upper bound. */
  *range(start: string, end: string): Generator<string> {
    for (const key of this.from(start)) {
      if (end !== '\0' && key >= end) return
      yield key
    }
  }

  *[Symbol.iterator](): Generator<string> {
    for (const chunk of this.#chunks) yield* chunk
  }

  clear(): void {
    this.#chunks = []
    this.#size = 0
  }

  /** The first chunk whose last string is >= key (chunks.length if none). */
  #chunkFor(key: string): number {
    let lo = 0
    let hi = this.#chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.#chunks[mid] as string[]
      if ((chunk[chunk.length - 1] as string) < key) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** The first position in a sorted array whose string is >= key. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as string) < key) lo = mid + 1
    else hi = mid
  }
  return lo
}
