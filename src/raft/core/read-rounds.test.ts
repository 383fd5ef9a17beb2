/**
 * Proves the bookkeeping behind shared-round ReadIndex: reads wait unsent until a round starts, all
 * unsent reads share one round, a round starts only once the previous one is confirmed, and a read
 * is released only when a quorum of voters acknowledged its round or a later one, in arrival order.
 */
import { describe, expect, it } from 'vitest'
import { ReadRounds } from './read-rounds.ts'

const voters = new Set([1, 2, 3])

describe('ReadRounds', () => {
  it('every unsent read joins the one round started next', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    reads.add('b', 5, 2)
    expect(reads.hasUnsent()).toBe(true)
    expect(reads.startRound()).toBe(1)
    expect(reads.hasUnsent()).toBe(false)
    expect(reads.startRound()).toBe(0) // nothing unsent: no new round
    expect(reads.lastRound).toBe(1)
  })

  it('a read is not released before its round has a quorum of acknowledgements', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    const round = reads.startRound()
    reads.ack(1, round)
    expect(reads.release(voters)).toEqual([])
    reads.ack(2, round)
    expect(reads.release(voters).map((r) => [r.ctx, r.index])).toEqual([['a', 5]])
    expect(reads.size).toBe(0)
  })

  it('a read that has not been sent in a round is never released, whatever was acknowledged', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    reads.startRound()
    reads.add('b', 6, 1) // arrived after the round was sent
    for (const id of voters) reads.ack(id, 1)
    expect(reads.release(voters).map((r) => r.ctx)).toEqual(['a'])
    expect(reads.size).toBe(1)
  })

  it('acknowledging a later round confirms every earlier one; an older ack does not lower it', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    const first = reads.startRound()
    reads.ack(1, first)
    reads.ack(3, first)
    expect(reads.release(voters).map((r) => r.ctx)).toEqual(['a'])
    reads.add('b', 6, 1)
    const second = reads.startRound()
    expect(second).toBe(first + 1)
    reads.ack(1, second)
    reads.ack(2, second)
    reads.ack(2, first)
    expect(reads.release(voters).map((r) => r.ctx)).toEqual(['b'])
  })

  it('one round at a time: reads arriving during a round wait, then all share the next one', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    const first = reads.startRound()
    reads.ack(1, first)
    expect(reads.release(voters)).toEqual([])
    reads.add('b', 6, 1)
    reads.add('c', 6, 1)
    expect(reads.canStartRound()).toBe(false)
    expect(reads.startRound()).toBe(0)
    reads.ack(2, first)
    expect(reads.release(voters).map((r) => r.ctx)).toEqual(['a'])
    expect(reads.canStartRound()).toBe(true)
    const second = reads.startRound()
    reads.ack(1, second)
    reads.ack(3, second)
    expect(reads.release(voters).map((r) => r.ctx)).toEqual(['b', 'c'])
    expect(reads.canStartRound()).toBe(false)
  })

  it('acknowledgements from non-voters do not count', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    const round = reads.startRound()
    reads.ack(1, round)
    reads.ack(7, round)
    reads.ack(8, round)
    expect(reads.release(voters)).toEqual([])
  })

  it('reset forgets reads, rounds and acknowledgements (a new term starts from round 1)', () => {
    const reads = new ReadRounds()
    reads.add('a', 5, 1)
    reads.startRound()
    for (const id of voters) reads.ack(id, 1)
    reads.reset()
    expect([reads.size, reads.lastRound, reads.hasUnsent()]).toEqual([0, 0, false])
    reads.add('b', 7, 1)
    expect(reads.startRound()).toBe(1)
    expect(reads.release(voters)).toEqual([]) // the old term's acks are gone
  })

  it('releases hundreds of reads in arrival order across many rounds', () => {
    const reads = new ReadRounds()
    const released: string[] = []
    for (let round = 1; round <= 200; round++) {
      reads.add(`r${round}a`, round, 1)
      reads.add(`r${round}b`, round, 2)
      expect(reads.startRound()).toBe(round)
      reads.ack(1, round)
      reads.ack(3, round)
      for (const r of reads.release(voters)) released.push(r.ctx)
    }
    expect(released).toHaveLength(400)
    expect(released.slice(0, 4)).toEqual(['r1a', 'r1b', 'r2a', 'r2b'])
    expect(reads.size).toBe(0)
  })
})
