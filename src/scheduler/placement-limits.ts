/**
 * The named limits of the placement index (placement.ts), each documented in docs/placement.md.
 *
 * Every structure the index keeps is bounded by one of these or by the machines and assignments
 * it was given. Past machinesMax or assignmentsMax, place() refuses with a reason naming the limit
 * and upsertMachine() or assign() throw PlacementLimitError (the engine checks place() first, so an
 * assign past the limit is its bug). The caches drop their oldest entry instead of growing.
 */

import { CairnError } from '../errors.ts'

export const placementLimits = {
  /** Machines known at once. Swarm's published scale test is 1,000 nodes; this is 100x that. */
  machinesMax: 100_000,
  /** Unit assignments at once (a Global unit counts once per machine it runs on). */
  assignmentsMax: 5_000_000,
  /** Conflicts globs kept indexed while no assigned unit holds them (oldest dropped first). */
  idlePatternsMax: 1_024,
  /** Templates with no assigned instance whose spread counts are kept (oldest dropped first). */
  idleTemplatesMax: 256,
  /** Topologies one template's counts are kept for at once (instances mid-update may differ). */
  templateTopologiesMax: 4,
  /** Node filters (MachineID + MachineMetadata) whose eligible machines are cached. */
  filtersCachedMax: 256,
} as const

export type PlacementLimit = keyof typeof placementLimits

/**
 * A limit was exceeded by upsertMachine or assign: the caller's to prevent (see place()). Code
 * PLACEMENT_LIMIT in the one catalogue (src/errors.ts, docs/errors.md).
 */
export class PlacementLimitError extends CairnError {
  readonly limit: PlacementLimit

  constructor(limit: PlacementLimit) {
    super('PLACEMENT_LIMIT', `${limit} (${placementLimits[limit]}) reached`)
    this.name = 'PlacementLimitError'
    this.limit = limit
  }
}

/** Programmer errors (a machine that does not exist, a corrupt count): never caught. */
export function assertPlacement(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`placement invariant: ${message}`)
}
