/**
 * Proves the simulated network's contract: delivery no earlier than one tick after sending, per-link
 * order without jitter, loss, duplication, bounded link queues, and blocked links that are one-way
 * (a->b lost while b->a is delivered), including messages already in flight when a link is cut.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../core/prng.ts'
import type { Message } from '../core/types.ts'
import { type NetworkFaults, quietNetwork, SimNetwork } from './network.ts'

function hb(from: number, to: number, commit = 0): Message {
  return { type: 'heartbeat', from, to, term: 1, commit, readRound: 0 }
}

function net(faults: Partial<NetworkFaults> = {}, seed = 1): SimNetwork {
  return new SimNetwork(new Prng(seed), { ...quietNetwork, ...faults })
}

function commits(envelopes: { message: Message }[]): number[] {
  return envelopes.map((e) => (e.message.type === 'heartbeat' ? e.message.commit : -1))
}

describe('SimNetwork', () => {
  it('delivers a message no earlier than the next tick', () => {
    const n = net()
    expect(n.send(hb(1, 2), 10, 1)).toBe('queued')
    expect(n.takeDue(10)).toEqual([])
    expect(commits(n.takeDue(11))).toEqual([0])
    expect(n.size).toBe(0)
  })

  it('keeps per-link order when delays do not vary', () => {
    const n = net({ delayTicksMin: 2 })
    for (let c = 1; c <= 5; c++) n.send(hb(1, 2, c), 0, 1)
    expect(commits(n.takeDue(3))).toEqual([1, 2, 3, 4, 5])
  })

  it('interleaves links but keeps each link in order', () => {
    const n = net({}, 7)
    for (let c = 1; c <= 5; c++) {
      n.send(hb(1, 3, c), 0, 1)
      n.send(hb(2, 3, 10 + c), 0, 1)
    }
    const out = n.takeDue(1)
    const from1 = out.filter((e) => e.message.from === 1)
    const from2 = out.filter((e) => e.message.from === 2)
    expect(commits(from1)).toEqual([1, 2, 3, 4, 5])
    expect(commits(from2)).toEqual([11, 12, 13, 14, 15])
  })

  it('reorders a link when delays vary', () => {
    const n = net({ delayTicksMean: 5 }, 3)
    for (let c = 1; c <= 50; c++) n.send(hb(1, 2, c), 0, 1)
    const out: number[] = []
    for (let t = 1; t < 2000 && out.length < 50; t++) out.push(...commits(n.takeDue(t)))
    expect(out.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    expect(out).not.toEqual(out.slice().sort((a, b) => a - b))
  })

  it('loses messages with dropProbability and reports them', () => {
    const n = net({ dropProbability: 1 })
    expect(n.send(hb(1, 2), 0, 1)).toBe('dropped')
    expect(n.takeDue(5)).toEqual([])
    expect(n.drainLost().map((l) => l.reason)).toEqual(['dropped'])
    expect(n.drainLost()).toEqual([])
  })

  it('duplicates a delivered message later', () => {
    const n = net({ duplicateProbability: 1 })
    n.send(hb(1, 2, 9), 0, 1)
    expect(commits(n.takeDue(1))).toEqual([9])
    n.setFaults(quietNetwork)
    expect(commits(n.takeDue(2))).toEqual([9])
    expect(n.takeDue(3)).toEqual([])
  })

  it('drops new messages when a link queue is full', () => {
    const n = net({ linkMessagesMax: 2 })
    expect(n.send(hb(1, 2, 1), 0, 1)).toBe('queued')
    expect(n.send(hb(1, 2, 2), 0, 1)).toBe('queued')
    expect(n.send(hb(1, 2, 3), 0, 1)).toBe('full')
    expect(n.send(hb(2, 1, 4), 0, 1)).toBe('queued')
    expect(commits(n.takeDue(1)).sort()).toEqual([1, 2, 4])
  })

  it('blocks one direction only (asymmetric link)', () => {
    const n = net()
    n.block([{ from: 1, to: 2 }])
    expect(n.send(hb(1, 2), 0, 1)).toBe('blocked')
    expect(n.send(hb(2, 1), 0, 1)).toBe('queued')
    expect(n.send(hb(1, 3), 0, 1)).toBe('queued')
    expect(
      n
        .takeDue(1)
        .map((e) => `${e.message.from}>${e.message.to}`)
        .sort(),
    ).toEqual(['1>3', '2>1'])
    expect(n.isBlocked(1, 2)).toBe(true)
    expect(n.isBlocked(2, 1)).toBe(false)
  })

  it('loses messages in flight when their link is cut, and heals', () => {
    const n = net()
    n.send(hb(1, 2), 0, 4)
    n.block([{ from: 1, to: 2 }])
    expect(n.takeDue(1)).toEqual([])
    const lost = n.drainLost()
    expect(lost.map((l) => [l.reason, l.envelope.senderIncarnation])).toEqual([['blocked', 4]])
    n.heal()
    expect(n.partitioned).toBe(false)
    expect(n.send(hb(1, 2), 1, 4)).toBe('queued')
  })

  it('is a pure function of its seed', () => {
    const run = (seed: number): number[] => {
      const n = net({ delayTicksMean: 3, dropProbability: 0.2, duplicateProbability: 0.2 }, seed)
      for (let c = 1; c <= 30; c++) n.send(hb(1 + (c % 3), 4, c), 0, 1)
      const out: number[] = []
      for (let t = 1; t < 100; t++) out.push(...commits(n.takeDue(t)))
      return out
    }
    expect(run(5)).toEqual(run(5))
    expect(run(5)).not.toEqual(run(6))
  })
})
