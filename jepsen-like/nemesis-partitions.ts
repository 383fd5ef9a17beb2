/**
 * Partition shapes as lists of blocked directed links between member names. Pure: the nemesis
 * draws a shape with its PRNG, the proxies enforce it. A link [a, b] blocked means nothing a sends
 * reaches b; [b, a] may stay open (asymmetric shapes).
 *
 * Shapes (Jepsen's catalogue, docs/jepsen-like.md):
 *   halves        a random minority side (floor(n/2) members) cut from the rest, both ways
 *   leader        the leader (or a random member when none is known) cut from everyone
 *   ring          majorities ring: every member hears a majority, no two hear the same majority
 *   bridge        two halves that hear each other only through one bridge member
 *   one-way       asymmetric: a random minority side's messages to the rest are lost, the rest's
 *                 messages to it arrive
 *
 * Invariants: every link joins two distinct members of `names`; no link appears twice.
 */
import type { Prng } from '../src/raft/core/prng.ts'

export const partitionShapes = ['halves', 'leader', 'ring', 'bridge', 'one-way'] as const
export type PartitionShape = (typeof partitionShapes)[number]

export type Link = [from: string, to: string]

export interface Partition {
  shape: PartitionShape
  links: Link[]
  /** How the members were grouped, for the history and the report. */
  groups: string[][]
}

export function drawPartition(
  shape: PartitionShape,
  names: readonly string[],
  leader: string | undefined,
  prng: Prng,
): Partition {
  const shuffled = prng.shuffled(names)
  switch (shape) {
    case 'halves': {
      const [minority, majority] = splitAt(shuffled, Math.floor(names.length / 2))
      return { shape, links: cutBoth(minority, majority), groups: [minority, majority] }
    }
    case 'leader': {
      const alone = leader !== undefined && names.includes(leader) ? leader : (shuffled[0] as string)
      const rest = names.filter((n) => n !== alone)
      return { shape, links: cutBoth([alone], rest), groups: [[alone], rest] }
    }
    case 'ring':
      return { shape, links: majoritiesRing(shuffled), groups: shuffled.map((n) => [n]) }
    case 'bridge': {
      const [bridge, ...others] = shuffled
      const [a, b] = splitAt(others, Math.floor(others.length / 2))
      return { shape, links: cutBoth(a, b), groups: [a, [bridge as string], b] }
    }
    case 'one-way': {
      const [muted, heard] = splitAt(shuffled, Math.max(1, Math.floor(names.length / 2)))
      return { shape, links: cutOneWay(muted, heard), groups: [muted, heard] }
    }
  }
}

function splitAt(names: readonly string[], size: number): [string[], string[]] {
  return [names.slice(0, size), names.slice(size)]
}

/** Every link from a member of `from` to a member of `to`. */
export function cutOneWay(from: readonly string[], to: readonly string[]): Link[] {
  const links: Link[] = []
  for (const a of from) for (const b of to) if (a !== b) links.push([a, b])
  return links
}

export function cutBoth(a: readonly string[], b: readonly string[]): Link[] {
  return [...cutOneWay(a, b), ...cutOneWay(b, a)]
}

/**
 * Members in ring order; each hears itself and the `majority - 1` members after it, so each
 * hears a different majority. When `majority - 1` is even the same view is symmetric (it hears
 * the (majority - 1) / 2 members on each side, Jepsen's shape for 5), and that is used instead.
 */
export function majoritiesRing(ring: readonly string[]): Link[] {
  const n = ring.length
  const others = Math.floor(n / 2) // majority - 1
  const hears = (receiver: number, sender: number): boolean => {
    const ahead = (sender - receiver + n) % n
    if (others % 2 === 0) return ahead <= others / 2 || n - ahead <= others / 2
    return ahead >= 1 && ahead <= others
  }
  const links: Link[] = []
  for (let r = 0; r < n; r++) {
    for (let s = 0; s < n; s++) {
      if (r !== s && !hears(r, s)) links.push([ring[s] as string, ring[r] as string])
    }
  }
  return links
}
