/**
 * What the fleet v1 surface needs from the process that serves it. The agent composes these; the
 * API never imports the agent (imports point down: agent → api → scheduler → catalog → kv).
 */
import type { CatalogState } from '../../catalog/state.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { UnitJournals } from '../../scheduler/journal.ts'

export interface FleetApiDeps {
  /** The store: units/ writes and every scheduler read (assign/, states/, unplaced/, rollouts/). */
  store: KvStore
  /** This agent's catalog copy: which machines are alive, their addresses and metadata. */
  catalog: Pick<CatalogState, 'nodes' | 'machineAlive' | 'nodeEntry'>
  /** The unit runner's journals on this machine. */
  journals: UnitJournals
  /** This agent's node name (its machine id). */
  nodeName: string
  /** Wall clock for `submittedMs` (injectable for tests). */
  clock?: (() => number) | undefined
}
