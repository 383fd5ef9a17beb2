/**
 * The bounded window of append messages in flight to one follower (flow control).
 *
 * Invariants: at most `countMax` messages are tracked; their last indices strictly increase in
 * send order; `bytes` is the sum of their sizes.
 */
export class Inflights {
  readonly countMax: number
  #lastIndices: number[] = []
  #sizes: number[] = []
  #head = 0
  #bytes = 0

  constructor(countMax: number) {
    this.countMax = countMax
  }

  get count(): number {
    return this.#lastIndices.length - this.#head
  }

  get bytes(): number {
    return this.#bytes
  }

  full(): boolean {
    return this.count >= this.countMax
  }

  add(lastIndex: number, bytes: number): void {
    if (this.full()) throw new Error('inflights: add while full')
    const prev = this.#lastIndices[this.#lastIndices.length - 1]
    if (this.count > 0 && prev !== undefined && lastIndex <= prev) {
      throw new Error(`inflights: ${lastIndex} not after ${prev}`)
    }
    this.#lastIndices.push(lastIndex)
    this.#sizes.push(bytes)
    this.#bytes += bytes
  }

  /** Frees every message whose last index is <= index (they were acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && (this.#lastIndices[this.#head] as number) <= index) this.#freeHead()
    this.#compactStorage()
  }

  freeFirstOne(): void {
    if (this.count > 0) this.#freeHead()
    this.#compactStorage()
  }

  reset(): void {
    this.#lastIndices = []
    this.#sizes = []
    this.#head = 0
    this.#bytes = 0
  }

  #freeHead(): void {
    this.#bytes -= this.#sizes[this.#head] as number
    this.#head++
  }

  #compactStorage(): void {
    if (this.#head > 64 && this.#head * 2 > this.#lastIndices.length) {
      this.#lastIndices = this.#lastIndices.slice(this.#head)
      this.#sizes = this.#sizes.slice(this.#head)
      this.#head = 0
    }
  }
}
