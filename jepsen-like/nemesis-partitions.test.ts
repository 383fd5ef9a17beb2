/**
 * Proves the partition shapes are what their names say, for 2 to 9 members and many seeds: no
 * link to oneself and none twice; halves and leader cut both ways between exactly their groups;
 * the majorities ring lets every member hear a majority (itself included) and no two the same
 * one; the bridge member hears and is heard by all while the two halves hear only it; one-way
 * loses only messages from the muted side. Also the `--nemesis` parser.
 */
import { describe, expect, it } from 'vitest'
import { Prng } from '../src/raft/core/prng.ts'
import { parseNemeses } from './nemesis.ts'
import { drawPartition, type Link, type PartitionShape, partitionShapes } from './nemesis-partitions.ts'

const membersOf = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`)

function blockedSet(links: Link[]): Set<string> {
  return new Set(links.map(([a, b]) => `${a}>${b}`))
}

/** Who `receiver` hears (itself included) under the blocked links. */
function hears(receiver: string, names: string[], blocked: Set<string>): string[] {
  return names.filter((s) => s === receiver || !blocked.has(`${s}>${receiver}`))
}

function* cases(shape: PartitionShape) {
  for (let n = 2; n <= 9; n++) {
    for (let seed = 1; seed <= 20; seed++) {
      const names = membersOf(n)
      const leader = seed % 2 === 0 ? names[seed % n] : undefined
      yield { names, leader, partition: drawPartition(shape, names, leader, new Prng(seed)) }
    }
  }
}

describe('partition shapes', () => {
  it('never block a link to oneself or the same link twice', () => {
    for (const shape of partitionShapes) {
      for (const { names, partition } of cases(shape)) {
        expect(partition.links.every(([a, b]) => a !== b && names.includes(a) && names.includes(b))).toBe(
          true,
        )
        expect(blockedSet(partition.links).size).toBe(partition.links.length)
      }
    }
  })

  it('halves: a minority of floor(n/2) cut both ways from the rest', () => {
    for (const { names, partition } of cases('halves')) {
      const [minority, majority] = partition.groups as [string[], string[]]
      expect(minority.length).toBe(Math.floor(names.length / 2))
      expect(partition.links.length).toBe(2 * minority.length * majority.length)
      const blocked = blockedSet(partition.links)
      for (const a of minority)
        for (const b of majority) expect(blocked.has(`${a}>${b}`) && blocked.has(`${b}>${a}`)).toBe(true)
    }
  })

  it('leader: the known leader alone (a random member without one)', () => {
    for (const { names, leader, partition } of cases('leader')) {
      const [alone] = partition.groups[0] as [string]
      if (leader !== undefined) expect(alone).toBe(leader)
      for (const n of names)
        expect(hears(n, names, blockedSet(partition.links))).toEqual(
          n === alone ? [n] : names.filter((m) => m !== alone),
        )
    }
  })

  it('majorities ring: everyone hears a majority, no two the same majority', () => {
    for (const { names, partition } of cases('ring')) {
      if (names.length < 3) continue
      const blocked = blockedSet(partition.links)
      const views = names.map((n) => hears(n, names, blocked))
      for (const view of views) expect(view.length).toBeGreaterThan(names.length / 2)
      expect(new Set(views.map((v) => v.join(','))).size).toBe(names.length)
    }
  })

  it('bridge: two halves that only the bridge member connects', () => {
    for (const { names, partition } of cases('bridge')) {
      const [a, [bridge], b] = partition.groups as [string[], [string], string[]]
      const blocked = blockedSet(partition.links)
      expect(hears(bridge, names, blocked)).toEqual(names)
      for (const x of a) expect(hears(x, names, blocked).sort()).toEqual([...a, bridge].sort())
      for (const y of b) expect(hears(y, names, blocked).sort()).toEqual([...b, bridge].sort())
    }
  })

  it('one-way: only messages from the muted side to the rest are lost', () => {
    for (const { partition } of cases('one-way')) {
      const [muted, heard] = partition.groups as [string[], string[]]
      expect(muted.length).toBeGreaterThan(0)
      expect(partition.links.every(([from, to]) => muted.includes(from) && heard.includes(to))).toBe(true)
      expect(partition.links.length).toBe(muted.length * heard.length)
    }
  })
})

describe('--nemesis', () => {
  it('reads lists, all and none, and refuses unknown kinds', () => {
    expect(parseNemeses('partition,kill,pause')).toEqual(['partition', 'kill', 'pause'])
    expect(parseNemeses('all')).toEqual([
      'partition',
      'latency',
      'drop',
      'kill',
      'pause',
      'member',
      'transfer',
    ])
    expect(parseNemeses('none')).toEqual([])
    expect(parseNemeses('transfer')).toEqual(['transfer'])
    expect(() => parseNemeses('partition,flood')).toThrow(/unknown "flood"/)
  })
})
