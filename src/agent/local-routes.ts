/**
 * The agent's own HTTP route, beside the API surfaces (the etcd v2 API serves /v2/*, /health and
 * /version):
 *   GET /_cairn/status   this member's Raft view: name, Cairn version, ids, role, leader, term, commit, applied,
 *                        store revision, snapshots received from a leader since start, voters,
 *                        learners and the member table
 * Ids are hex, as etcd shows them. Read-only, answered from local state (no Raft round), so it
 * works on a member that has no leader: it is what `cairn status` and the tests poll.
 */
import type { FastifyInstance } from 'fastify'
import type { ReplicatedStore } from '../kv/replicated-store.ts'
import type { NodeId } from '../raft/core/types.ts'

export interface LocalRoutesDeps {
  name: string
  id: NodeId
  clusterId: string
  peerUrl: string
  clientUrl: string
  cairnVersion: string
  store: ReplicatedStore
}

export function registerLocalRoutes(app: FastifyInstance, deps: LocalRoutesDeps): void {
  app.get('/_cairn/status', async () => statusOf(deps))
}

function statusOf(deps: LocalRoutesDeps): object {
  const status = deps.store.node.status()
  const members = deps.store.stateMachine.members()
  return {
    name: deps.name,
    version: deps.cairnVersion,
    id: hexId(deps.id),
    clusterId: deps.clusterId,
    peerUrl: deps.peerUrl,
    clientUrl: deps.clientUrl,
    role: status.role,
    leader: status.leader === 0 ? null : hexId(status.leader),
    term: status.term,
    commit: status.commit,
    applied: status.applied,
    revision: deps.store.stateMachine.revision,
    snapshotsReceived: deps.store.node.snapshotsReceived,
    voters: status.confState.voters.map(hexId),
    learners: status.confState.learners.map(hexId),
    members: members.map((m) => ({
      id: hexId(m.id),
      name: m.name,
      peerUrls: m.peerUrls,
      isLearner: m.isLearner,
    })),
  }
}

/** Member ids are shown in hex, as etcd does. */
export function hexId(id: NodeId): string {
  return id.toString(16)
}
