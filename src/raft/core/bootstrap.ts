/**
 * Initial persisted states.
 *
 * A new cluster's founding members all start from the same log: one committed addVoter entry per
 * founder at term 1 (as etcd does). Membership thus lives only in the log and in snapshots, so a
 * member added later learns the founders by replicating entries 1..n like any other entry.
 * A member joining an existing cluster starts empty and waits for the leader to contact it.
 */
import type { ConfChange, Entry, NodeId, PersistedState } from './types.ts'

/**
 * `contextOf` may give each founder's member description (the conf change's opaque context), so
 * every member learns the founders' names and addresses from the log itself.
 */
export function bootstrapState(
  voters: readonly NodeId[],
  contextOf?: (id: NodeId) => Uint8Array | undefined,
): PersistedState {
  if (voters.length === 0) throw new Error('bootstrapState: need at least one voter')
  if (new Set(voters).size !== voters.length) throw new Error('bootstrapState: duplicate voter ids')
  const entries: Entry[] = voters.map((nodeId, i) => ({
    index: i + 1,
    term: 1,
    type: 'conf',
    data: new Uint8Array(0),
    change: withContext({ type: 'addVoter', nodeId }, contextOf?.(nodeId)),
  }))
  return {
    hardState: { term: 1, vote: 0, commit: entries.length },
    snapshot: undefined,
    logStart: { index: 0, term: 0 },
    entries,
  }
}

function withContext(change: ConfChange, context: Uint8Array | undefined): ConfChange {
  return context === undefined ? change : { ...change, context }
}

export function emptyState(): PersistedState {
  return {
    hardState: { term: 0, vote: 0, commit: 0 },
    snapshot: undefined,
    logStart: { index: 0, term: 0 },
    entries: [],
  }
}
