/**
 * Partition shapes as sets of blocked directed links. Pure helpers: the nemesis picks a shape, the
 * network enforces it.
 *
 * A link a->b is blocked when messages sent by a to b are lost; b->a may stay open (asymmetric
 * partitions). Nodes not named in the shape keep every link (a learner started mid-partition is
 * connected to everyone).
 *
 * Invariant: every returned link joins two distinct nodes of `nodes`.
 */
import type { Prng } from '../core/prng.ts'
import type { NodeId } from '../core/types.ts'

export type PartitionShape =
  /** Two sides, one holding a strict majority (or one half when even); no link crosses. */
  | 'majorityMinority'
  /** The leader (or a random node without one) alone on its side. */
  | 'isolateLeader'
  | 'isolateNode'
  /** Two halves that only one bridge node connects: each half hears the bridge, not the other half. */
  | 'bridge'
  /** One direction of one link: a->b lost, b->a delivered. */
  | 'asymmetricPair'
  /** One node hears nobody but everyone hears it. */
  | 'deafNode'
  /** One node is heard by nobody but hears everyone. */
  | 'muteNode'

export interface Link {
  from: NodeId
  to: NodeId
}

/** Node ids must stay below this for linkKey to be collision free. */
export const nodeIdLimit = 0x10000

export function linkKey(from: NodeId, to: NodeId): number {
  if (from >= nodeIdLimit || to >= nodeIdLimit) throw new Error(`linkKey: node id beyond ${nodeIdLimit}`)
  return from * nodeIdLimit + to
}

/** Every directed link between a node of `a` and a node of `b`, both ways. */
export function cutBetween(a: readonly NodeId[], b: readonly NodeId[]): Link[] {
  const links: Link[] = []
  for (const x of a) {
    for (const y of b) {
      if (x === y) continue
      links.push({ from: x, to: y }, { from: y, to: x })
    }
  }
  return links
}

/** Splits `nodes` into two sides; the first has `size` nodes. */
export function split(nodes: readonly NodeId[], size: number): [NodeId[], NodeId[]] {
  return [nodes.slice(0, size), nodes.slice(size)]
}

export function isolate(node: NodeId, nodes: readonly NodeId[]): Link[] {
  return cutBetween(
    [node],
    nodes.filter((n) => n !== node),
  )
}

export function deaf(node: NodeId, nodes: readonly NodeId[]): Link[] {
  return nodes.filter((n) => n !== node).map((n) => ({ from: n, to: node }))
}

export function mute(node: NodeId, nodes: readonly NodeId[]): Link[] {
  return nodes.filter((n) => n !== node).map((n) => ({ from: node, to: n }))
}

/** Halves a and b lose each other; `bridgeNode` keeps both. */
export function bridge(bridgeNode: NodeId, a: readonly NodeId[], b: readonly NodeId[]): Link[] {
  return cutBetween(
    a.filter((n) => n !== bridgeNode),
    b.filter((n) => n !== bridgeNode),
  )
}

/** Draws the blocked links of one partition of the given shape. `leader` is 0 when unknown. */
export function drawPartition(
  shape: PartitionShape,
  nodes: readonly NodeId[],
  leader: NodeId,
  prng: Prng,
): Link[] {
  if (nodes.length < 2) return []
  const shuffled = prng.shuffled(nodes)
  const first = shuffled[0] as NodeId
  const target = leader !== 0 && nodes.includes(leader) && prng.chance(0.5) ? leader : first
  switch (shape) {
    case 'majorityMinority': {
      const [minority, majority] = split(shuffled, prng.int(1, Math.floor(nodes.length / 2) + 1))
      return cutBetween(minority, majority)
    }
    case 'isolateLeader':
      return isolate(leader !== 0 && nodes.includes(leader) ? leader : first, nodes)
    case 'isolateNode':
      return isolate(first, nodes)
    case 'bridge': {
      if (nodes.length < 3) return isolate(first, nodes)
      const rest = shuffled.slice(1)
      const [a, b] = split(rest, prng.int(1, rest.length))
      return bridge(first, a, b)
    }
    case 'asymmetricPair':
      return [{ from: first, to: shuffled[1] as NodeId }]
    case 'deafNode':
      return deaf(target, nodes)
    case 'muteNode':
      return mute(target, nodes)
  }
}

/** Short human description of a partition, for traces. */
export function describeLinks(links: readonly Link[]): string {
  if (links.length === 0) return 'none'
  return links.map((l) => `${l.from}>${l.to}`).join(' ')
}
