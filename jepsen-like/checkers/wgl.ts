/**
 * The Wing & Gong / Lowe / Horn-Kroening linearizability search (Porcupine's `checkSingle`), for
 * one partition of operations against a model whose states are small non-negative integers.
 *
 * Input: operation i has a call time `calls[i]` and a return time `returns[i]` (+Infinity when it
 * may take effect at any time after its call). Intervals are closed: an operation returning at t
 * and one called at t are concurrent (calls sort before returns at equal times).
 *
 * Data (invariants):
 *   - Nodes: operation i's call is node 2i, its return node 2i+1; `head` (= 2n) is the sentinel.
 *     `next`/`prev` form a doubly linked list in time order of the nodes not yet linearized;
 *     `next[x] === -1` ends it. A call node is always before its own return node.
 *   - The linearized set (the operations on the stack) is kept as `top`, the highest operation
 *     number in it (-1 if empty), and `holes`, the ascending operation numbers below `top` not in
 *     it. The search linearizes roughly in invocation order, so holes are few (the operations
 *     concurrent with the frontier, plus unknown-outcome ones still open) however long the
 *     partition is; cache entries store (top, holes, state), never a bitset of every operation.
 *   - `setHash` is the XOR of `zobrist[i]` over the linearized operations (O(1) per push/pop).
 *   - The stack `stackCall[0..depth)` holds the call nodes linearized so far, in order, and
 *     `stackState[d]` the model state before stackCall[d] was applied; `state` is the state after
 *     the whole stack.
 *   - `cache` holds every (linearized set, state) configuration ever pushed; reaching one again
 *     is pruned.
 *   - `best[0..lowWater)` equals `stackCall[0..lowWater)`, and lowWater <= bestLength: the longest
 *     prefix seen is kept by copying only the part of the stack changed since the last copy.
 *
 * Scanning from the head, the calls before the first remaining return are exactly the operations
 * that may be linearized next; reaching a return means every candidate in front of it failed, so
 * the last choice is undone. Limits: a deadline (checked every `checkEverySteps` steps), a step
 * count and the cache size (in 32-bit words); exceeding any gives `unknown`, never a hang or OOM.
 */

export interface WglModel {
  /** The state before any operation; a non-negative integer. */
  readonly init: number
  /** The state after applying operation `op` in `state`, or -1 when it cannot take effect there. */
  step(state: number, op: number): number
}

export interface WglLimits {
  /** `now()` value at or past which the search gives up. */
  deadline: number
  now: () => number
  stepsMax: number
  cacheWordsMax: number
  checkEverySteps: number
}

export const wglLimitsDefault = {
  /** 2^31 steps: beyond the deadline on any machine we run on; the deadline is the real bound. */
  stepsMax: 2 ** 31,
  /** 64 Mi words: about 256 MiB of cache entries (holes plus the per-entry overhead below). */
  cacheWordsMax: 64 * 1024 * 1024,
  checkEverySteps: 4096,
} as const

export type WglOutcome =
  | { kind: 'linearizable'; order: number[]; steps: number }
  | {
      kind: 'illegal'
      /** Operations of the longest linearizable prefix found, in linearization order. */
      prefix: number[]
      /** The operation whose return blocked that prefix: the first that could not be linearized. */
      blocker: number
      /** Model state after the prefix. */
      state: number
      steps: number
    }
  | { kind: 'unknown'; reason: 'deadline' | 'steps' | 'cache'; steps: number }

/** Node order: by time, calls before returns at equal times, then by operation number. */
function sortedNodes(calls: ArrayLike<number>, returns: ArrayLike<number>): Int32Array {
  const n = calls.length
  const nodes = new Int32Array(2 * n)
  for (let x = 0; x < 2 * n; x++) nodes[x] = x
  const timeOf = (x: number): number => ((x & 1) === 0 ? calls[x >> 1]! : returns[x >> 1]!)
  nodes.sort((a, b) => timeOf(a) - timeOf(b) || (a & 1) - (b & 1) || a - b)
  return nodes
}

/** Deterministic per-operation hash words (xorshift32 from a fixed seed). */
function zobristWords(n: number): Int32Array {
  const words = new Int32Array(n)
  let x = 0x9e3779b9 | 0
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x
  }
  return words
}

/** What one cache entry costs beyond its holes, in 32-bit words (object, array, map slot), roughly. */
const cacheEntryOverheadWords = 24

interface CacheEntry {
  top: number
  holes: Int32Array
  state: number
}

export function checkLinearizable(
  calls: ArrayLike<number>,
  returns: ArrayLike<number>,
  model: WglModel,
  limits: WglLimits,
): WglOutcome {
  const n = calls.length
  if (returns.length !== n) throw new Error('checkLinearizable: calls and returns differ in length')
  for (let i = 0; i < n; i++) {
    if (!(calls[i]! <= returns[i]!))
      throw new Error(`checkLinearizable: operation ${i} returns before its call`)
  }
  return new WglSearch(calls, returns, model).run(limits)
}

class WglSearch {
  readonly #model: WglModel
  readonly #head: number
  readonly #next: Int32Array
  readonly #prev: Int32Array
  readonly #zobrist: Int32Array
  #setHash = 0
  #top = -1
  /** Ascending; small (see the header), so sorted-array insertion is cheap. */
  readonly #holes: number[] = []
  readonly #cache = new Map<number, CacheEntry[]>()
  #cacheWords = 0
  readonly #stackCall: Int32Array
  readonly #stackState: Int32Array
  #depth = 0
  #state: number
  readonly #best: Int32Array
  #bestLength = 0
  #bestBlocker = -1
  #bestState: number
  #lowWater = 0

  constructor(calls: ArrayLike<number>, returns: ArrayLike<number>, model: WglModel) {
    const n = calls.length
    this.#model = model
    this.#head = 2 * n
    this.#next = new Int32Array(2 * n + 1)
    this.#prev = new Int32Array(2 * n + 1)
    let last = this.#head
    for (const x of sortedNodes(calls, returns)) {
      this.#next[last] = x
      this.#prev[x] = last
      last = x
    }
    this.#next[last] = -1
    this.#zobrist = zobristWords(n)
    this.#stackCall = new Int32Array(n)
    this.#stackState = new Int32Array(n)
    this.#best = new Int32Array(n)
    this.#state = model.init
    this.#bestState = model.init
  }

  run(limits: WglLimits): WglOutcome {
    const next = this.#next
    let steps = 0
    let entry = next[this.#head]!
    while (next[this.#head] !== -1) {
      if (steps % limits.checkEverySteps === 0) {
        if (limits.now() >= limits.deadline) return { kind: 'unknown', reason: 'deadline', steps }
        if (steps >= limits.stepsMax) return { kind: 'unknown', reason: 'steps', steps }
        if (this.#cacheWords > limits.cacheWordsMax) return { kind: 'unknown', reason: 'cache', steps }
      }
      steps++
      if ((entry & 1) === 0) {
        entry = this.#tryLinearize(entry) ? next[this.#head]! : next[entry]!
        continue
      }
      // The return of an operation not yet linearized: every candidate before it failed.
      this.#maybeRecordBest(entry >> 1)
      if (this.#depth === 0) {
        const prefix = Array.from(this.#best.subarray(0, this.#bestLength), (call) => call >> 1)
        return { kind: 'illegal', prefix, blocker: this.#bestBlocker, state: this.#bestState, steps }
      }
      entry = next[this.#pop()]!
    }
    const order = Array.from(this.#stackCall.subarray(0, this.#depth), (call) => call >> 1)
    return { kind: 'linearizable', order, steps }
  }

  /** Linearizes the call node `call` next if the model allows it and the configuration is new. */
  #tryLinearize(call: number): boolean {
    const op = call >> 1
    const after = this.#model.step(this.#state, op)
    if (after < 0) return false
    this.#include(op)
    if (!this.#cacheAdd(after)) {
      this.#exclude(op)
      return false
    }
    this.#stackCall[this.#depth] = call
    this.#stackState[this.#depth] = this.#state
    this.#depth++
    this.#state = after
    this.#lift(call)
    return true
  }

  /** Undoes the last linearization; returns its call node (relinked into the list). */
  #pop(): number {
    this.#depth--
    if (this.#depth < this.#lowWater) this.#lowWater = this.#depth
    const call = this.#stackCall[this.#depth]!
    this.#state = this.#stackState[this.#depth]!
    this.#exclude(call >> 1)
    this.#unlift(call)
    return call
  }

  #maybeRecordBest(blocker: number): void {
    if (this.#depth <= this.#bestLength && this.#bestBlocker >= 0) return
    this.#best.set(this.#stackCall.subarray(this.#lowWater, this.#depth), this.#lowWater)
    this.#bestLength = this.#depth
    this.#lowWater = this.#depth
    this.#bestBlocker = blocker
    this.#bestState = this.#state
  }

  /** Adds `op` (not in the set) to the linearized set. */
  #include(op: number): void {
    this.#setHash ^= this.#zobrist[op]!
    if (op > this.#top) {
      for (let skipped = this.#top + 1; skipped < op; skipped++) this.#holes.push(skipped)
      this.#top = op
      return
    }
    this.#holes.splice(lowerBound(this.#holes, op), 1)
  }

  /** Removes `op` (in the set) from the linearized set. */
  #exclude(op: number): void {
    this.#setHash ^= this.#zobrist[op]!
    const holes = this.#holes
    if (op < this.#top) {
      holes.splice(lowerBound(holes, op), 0, op)
      return
    }
    let top = op - 1
    while (holes.length > 0 && holes[holes.length - 1] === top) {
      holes.pop()
      top--
    }
    this.#top = top
  }

  /** Adds (linearized set, state) to the cache; false when it was already there. */
  #cacheAdd(state: number): boolean {
    const key = this.#setHash ^ Math.imul(state + 1, 0x9e3779b1)
    let bucket = this.#cache.get(key)
    if (bucket === undefined) {
      bucket = []
      this.#cache.set(key, bucket)
    }
    const top = this.#top
    for (const entry of bucket) {
      if (entry.state === state && entry.top === top && this.#holesAre(entry.holes)) return false
    }
    const holes = Int32Array.from(this.#holes)
    bucket.push({ top, holes, state })
    this.#cacheWords += holes.length + cacheEntryOverheadWords
    return true
  }

  #holesAre(holes: Int32Array): boolean {
    const current = this.#holes
    if (holes.length !== current.length) return false
    for (let i = 0; i < holes.length; i++) if (holes[i] !== current[i]) return false
    return true
  }

  #lift(call: number): void {
    const next = this.#next
    const prev = this.#prev
    const ret = call + 1
    next[prev[call]!] = next[call]!
    if (next[call] !== -1) prev[next[call]!] = prev[call]!
    next[prev[ret]!] = next[ret]!
    if (next[ret] !== -1) prev[next[ret]!] = prev[ret]!
  }

  #unlift(call: number): void {
    const next = this.#next
    const prev = this.#prev
    const ret = call + 1
    next[prev[ret]!] = ret
    if (next[ret] !== -1) prev[next[ret]!] = ret
    next[prev[call]!] = call
    if (next[call] !== -1) prev[next[call]!] = call
  }
}

/** The first position in ascending `sorted` whose value is >= `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < value) lo = mid + 1
    else hi = mid
  }
  return lo
}
