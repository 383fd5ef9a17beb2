/**
 * A small seeded pseudo-random generator (sfc32, seeded through splitmix32).
 *
 * The Raft core draws its election jitter from one of these and the simulator draws every fault
 * from one, so a run is a pure function of its seed. Not for cryptography.
 */
export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: number) {
    let s = seed >>> 0 || 0x9e3779b9
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.#a = split()
    this.#b = split()
    this.#c = split()
    this.#d = split()
    for (let i = 0; i < 12; i++) this.nextUint32()
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0
    this.#d = (this.#d + 1) >>> 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) >>> 0
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0
    this.#c = (this.#c + t) >>> 0
    return t
  }

  /** A float in [0, 1). */
  float(): number {
    return this.nextUint32() / 0x1_0000_0000
  }

  /** An integer in [min, maxExclusive). */
  int(min: number, maxExclusive: number): number {
    if (!(maxExclusive > min)) throw new Error(`Prng.int: empty range [${min}, ${maxExclusive})`)
    return min + Math.floor(this.float() * (maxExclusive - min))
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Prng.pick: no items')
    return items[this.int(0, items.length)] as T
  }

  /** Fisher-Yates shuffle of a copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice()
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1)
      const tmp = out[i] as T
      out[i] = out[j] as T
      out[j] = tmp
    }
    return out
  }

  /** A child generator whose stream is independent of later draws from this one. */
  fork(): Prng {
    return new Prng(this.nextUint32())
  }
}
