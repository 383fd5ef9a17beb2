/**
 * The simulated network: one queue per directed link, each message stamped with the tick it is due.
 *
 * Faults: loss (per message), duplication (a delivered message is also queued again with a fresh
 * delay), delay (min + exponential, which also reorders a link), bounded link capacity (new
 * messages dropped when full) and blocked links (partitions, possibly one way). A link blocked while
 * messages are in flight loses them at delivery time.
 *
 * Invariants: each link queue is sorted by (deliverAt, seq); seq is unique and increasing, so
 * delivery order is a pure function of the seed; a queue never holds more than linkMessagesMax
 * envelopes; takeDue keeps each link's order (links are interleaved at random).
 */
import type { Prng } from '../core/prng.ts'
import type { Message, NodeId } from '../core/types.ts'
import { type Link, linkKey } from './partition.ts'

export interface NetworkFaults {
  dropProbability: number
  duplicateProbability: number
  delayTicksMin: number
  delayTicksMean: number
  linkMessagesMax: number
}

export const quietNetwork: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayTicksMin: 0,
  delayTicksMean: 0,
  linkMessagesMax: 1024,
}

export interface Envelope {
  message: Message
  deliverAt: number
  seq: number
  /** The sender's incarnation when it sent: snapshot reports go only to that incarnation. */
  senderIncarnation: number
}

export type SendOutcome = 'queued' | 'dropped' | 'blocked' | 'full'

export type LossReason = 'dropped' | 'blocked' | 'full'

export interface Lost {
  envelope: Envelope
  reason: LossReason
}

/** Upper bound of one exponential delay draw, so a bad draw cannot park a message forever. */
const delayTicksMax = 1000

export class SimNetwork {
  readonly #prng: Prng
  #faults: NetworkFaults
  readonly #links = new Map<number, Envelope[]>()
  #blocked = new Set<number>()
  #seq = 0
  #lost: Lost[] = []

  constructor(prng: Prng, faults: NetworkFaults) {
    this.#prng = prng
    this.#faults = faults
  }

  setFaults(faults: NetworkFaults): void {
    this.#faults = faults
  }

  /** Replaces the set of blocked links. */
  block(links: readonly Link[]): void {
    this.#blocked = new Set(links.map((l) => linkKey(l.from, l.to)))
  }

  heal(): void {
    this.#blocked = new Set()
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.#blocked.size > 0 && this.#blocked.has(linkKey(from, to))
  }

  get partitioned(): boolean {
    return this.#blocked.size > 0
  }

  /** Messages in flight on all links. */
  get size(): number {
    let n = 0
    for (const queue of this.#links.values()) n += queue.length
    return n
  }

  send(message: Message, now: number, senderIncarnation: number): SendOutcome {
    const envelope: Envelope = { message, deliverAt: 0, seq: 0, senderIncarnation }
    if (this.isBlocked(message.from, message.to)) return this.#lose(envelope, 'blocked')
    if (this.#faults.dropProbability > 0 && this.#prng.chance(this.#faults.dropProbability)) {
      return this.#lose(envelope, 'dropped')
    }
    return this.#enqueue(envelope, now)
  }

  /**
   * Removes every envelope due at or before `now` and returns those that are delivered, per-link
   * order kept, links interleaved at random. Envelopes on links blocked meanwhile are lost.
   */
  takeDue(now: number): Envelope[] {
    const perLink: Envelope[][] = []
    for (const queue of this.#links.values()) {
      let count = 0
      while (count < queue.length && (queue[count] as Envelope).deliverAt <= now) count++
      if (count > 0) perLink.push(queue.splice(0, count))
    }
    if (perLink.length === 0) return []
    const order: number[] = []
    perLink.forEach((due, i) => {
      for (let k = 0; k < due.length; k++) order.push(i)
    })
    const delivered: Envelope[] = []
    for (const i of this.#prng.shuffled(order)) {
      const envelope = (perLink[i] as Envelope[]).shift() as Envelope
      const { from, to } = envelope.message
      if (this.isBlocked(from, to)) {
        this.#lose(envelope, 'blocked')
        continue
      }
      delivered.push(envelope)
      if (this.#faults.duplicateProbability > 0 && this.#prng.chance(this.#faults.duplicateProbability)) {
        this.#enqueue({ ...envelope }, now)
      }
    }
    return delivered
  }

  /** Losses since the last call (for snapshot and unreachable reports). */
  drainLost(): Lost[] {
    const lost = this.#lost
    this.#lost = []
    return lost
  }

  #lose(envelope: Envelope, reason: LossReason): SendOutcome {
    this.#lost.push({ envelope, reason })
    return reason
  }

  #enqueue(envelope: Envelope, now: number): SendOutcome {
    const key = linkKey(envelope.message.from, envelope.message.to)
    let queue = this.#links.get(key)
    if (queue === undefined) {
      queue = []
      this.#links.set(key, queue)
    }
    if (queue.length >= this.#faults.linkMessagesMax) return this.#lose(envelope, 'full')
    envelope.deliverAt = now + this.#delay()
    envelope.seq = ++this.#seq
    insertSorted(queue, envelope)
    return 'queued'
  }

  /** At least one tick: a message sent during tick t is delivered at t + 1 or later. */
  #delay(): number {
    const { delayTicksMin, delayTicksMean } = this.#faults
    const extra = delayTicksMean > 0 ? -delayTicksMean * Math.log(1 - this.#prng.float()) : 0
    return 1 + delayTicksMin + Math.min(delayTicksMax, Math.floor(extra))
  }
}

/** Inserts keeping (deliverAt, seq) order; seq only grows, so equal deliverAt goes last. */
function insertSorted(queue: Envelope[], envelope: Envelope): void {
  let lo = 0
  let hi = queue.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((queue[mid] as Envelope).deliverAt <= envelope.deliverAt) lo = mid + 1
    else hi = mid
  }
  queue.splice(lo, 0, envelope)
}
