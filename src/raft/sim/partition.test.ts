/**
 * Proves each partition shape cuts exactly what its name says: sides that cannot reach each other,
 * a bridge node that reaches both halves, one-way (deaf, mute, asymmetric) cuts, and never a link
 * from a node to itself or to a node outside the list.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../core/prng.ts'
import type { NodeId } from '../core/types.ts'
import { bridge, cutBetween, deaf, drawPartition, isolate, type Link, mute } from './partition.ts'
import { allPartitionShapes } from './scenario.ts'

function blocked(links: Link[]): (from: NodeId, to: NodeId) => boolean {
  const set = new Set(links.map((l) => `${l.from}>${l.to}`))
  return (from, to) => set.has(`${from}>${to}`)
}

/** Nodes reachable from `start` over open links. */
function reachable(start: NodeId, nodes: NodeId[], links: Link[]): NodeId[] {
  const isBlocked = blocked(links)
  const seen = new Set([start])
  const queue = [start]
  while (queue.length > 0) {
    const a = queue.shift() as NodeId
    for (const b of nodes) {
      if (!seen.has(b) && !isBlocked(a, b)) {
        seen.add(b)
        queue.push(b)
      }
    }
  }
  return [...seen].sort()
}

const five = [1, 2, 3, 4, 5]

describe('partition shapes', () => {
  it('cutBetween separates two sides both ways', () => {
    const links = cutBetween([1, 2], [3, 4, 5])
    expect(links).toHaveLength(12)
    expect(reachable(1, five, links)).toEqual([1, 2])
    expect(reachable(4, five, links)).toEqual([3, 4, 5])
  })

  it('isolate leaves one node alone', () => {
    const links = isolate(3, five)
    expect(reachable(3, five, links)).toEqual([3])
    expect(reachable(1, five, links)).toEqual([1, 2, 4, 5])
  })

  it('bridge: each half reaches the bridge, not the other half', () => {
    const links = bridge(3, [1, 2], [4, 5])
    const isBlocked = blocked(links)
    expect(isBlocked(1, 4)).toBe(true)
    expect(isBlocked(5, 2)).toBe(true)
    for (const n of [1, 2, 4, 5]) {
      expect(isBlocked(n, 3)).toBe(false)
      expect(isBlocked(3, n)).toBe(false)
    }
    expect(isBlocked(1, 2)).toBe(false)
  })

  it('deaf: everyone hears the node, it hears nobody', () => {
    const isBlocked = blocked(deaf(2, five))
    expect(isBlocked(1, 2)).toBe(true)
    expect(isBlocked(2, 1)).toBe(false)
  })

  it('mute: the node hears everyone, nobody hears it', () => {
    const isBlocked = blocked(mute(2, five))
    expect(isBlocked(2, 1)).toBe(true)
    expect(isBlocked(1, 2)).toBe(false)
  })

  it('majorityMinority leaves a strict majority connected for odd sizes', () => {
    const prng = new Prng(11)
    for (let i = 0; i < 50; i++) {
      const links = drawPartition('majorityMinority', five, 0, prng)
      const sides = new Set(five.map((n) => reachable(n, five, links).join(',')))
      expect(sides.size).toBe(2)
      const sizes = [...sides].map((s) => s.split(',').length).sort()
      expect(sizes[1]).toBeGreaterThanOrEqual(3)
    }
  })

  it('isolateLeader isolates the leader when known', () => {
    const links = drawPartition('isolateLeader', five, 4, new Prng(1))
    expect(reachable(4, five, links)).toEqual([4])
  })

  it('asymmetricPair cuts exactly one direction of one link', () => {
    const links = drawPartition('asymmetricPair', five, 0, new Prng(2))
    expect(links).toHaveLength(1)
    const [link] = links as [Link]
    expect(blocked(links)(link.to, link.from)).toBe(false)
  })

  it('every shape only cuts links between distinct listed nodes', () => {
    const prng = new Prng(5)
    for (const shape of allPartitionShapes) {
      for (const nodes of [[1, 2], [1, 2, 3], five, [1, 2, 3, 4, 5, 6, 7]]) {
        for (const link of drawPartition(shape, nodes, nodes[0] as NodeId, prng)) {
          expect(link.from).not.toBe(link.to)
          expect(nodes).toContain(link.from)
          expect(nodes).toContain(link.to)
        }
      }
    }
  })
})
