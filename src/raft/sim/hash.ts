/**
 * Non-cryptographic hashes of entries and of log prefixes, for the simulator's checkers.
 *
 * A hash is a safe integer built from two independent 32-bit lanes, so two different inputs collide
 * with probability about 2^-53: negligible at simulation sizes. Equal inputs always hash equal, so a
 * checker can never report a false violation; a collision could at worst hide one.
 *
 * Rolling hashes: prefixHash(i) = combineHash(prefixHash(i - 1), entryHash(entry i)). Two logs with
 * equal prefix hashes at index i hold the same entries 1..i (log matching in one comparison).
 */
import type { Entry } from '../core/types.ts'

/** The prefix hash of the empty log (index 0). */
export const emptyPrefixHash = 0

const laneMultiplierA = 0x01000193
const laneMultiplierB = 0x5bd1e995
const laneSeedA = 0x811c9dc5
const laneSeedB = 0x3c6ef372

function mixA(h: number, word: number): number {
  return Math.imul(h ^ word, laneMultiplierA) >>> 0
}

function mixB(h: number, word: number): number {
  const k = Math.imul(word, laneMultiplierB)
  return (Math.imul(h, laneMultiplierB) ^ (k ^ (k >>> 24))) >>> 0
}

function finalize(h: number): number {
  let x = h
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/** Folds the two lanes into one safe integer (53 bits). */
function join(a: number, b: number): number {
  return finalize(a) * 0x200000 + (finalize(b) >>> 11)
}

/** Splits a non-negative safe integer into two 32-bit words. */
function hiWord(x: number): number {
  return Math.floor(x / 0x1_0000_0000) >>> 0
}

function loWord(x: number): number {
  return x >>> 0
}

/** Hash of a list of non-negative safe integers. */
export function hashWords(words: readonly number[]): number {
  let a = laneSeedA
  let b = laneSeedB
  for (const w of words) {
    a = mixA(mixA(a, loWord(w)), hiWord(w))
    b = mixB(mixB(b, loWord(w)), hiWord(w))
  }
  return join(a, b)
}

/** Hash of bytes. */
export function hashBytes(bytes: Uint8Array): number {
  let a = laneSeedA ^ bytes.length
  let b = laneSeedB ^ bytes.length
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number
    a = mixA(a, byte)
    b = mixB(b, byte)
  }
  return join(a, b)
}

const changeTypeCode = { addVoter: 1, addLearner: 2, removeNode: 3 } as const

/** Hash of everything that identifies an entry: index, term, type, membership change and data. */
export function entryHash(entry: Entry): number {
  const change = entry.change
  return hashWords([
    entry.index,
    entry.term,
    entry.type === 'conf' ? 1 : 0,
    change === undefined ? 0 : changeTypeCode[change.type],
    change === undefined ? 0 : change.nodeId,
    hashBytes(entry.data),
  ])
}

/** Extends a rolling hash by one element hash. */
export function combineHash(prefix: number, next: number): number {
  return hashWords([prefix, next])
}
