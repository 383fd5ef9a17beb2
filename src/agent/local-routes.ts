/**
 * The agent's own HTTP route, beside the API surfaces (the etcd v2 API serves /v2/*, /health and
 * /version) and GET /metrics (metrics.ts):
 *   GET /_cairn/status   this member's Raft view: name, Cairn version, ids, role, leader, term, commit, applied,
 *                        store revision, snapshots received from a leader since start, voters,
 *                        learners and the member table; the scheduler engine and the unit runner
 * Ids are hex, as etcd shows them. Read-only, answered from local state (no Raft round), so it
 * works on a member that has no leader: it is what `cairn status` and the tests poll.
 *   POST /_cairn/transfer-leader?to=<hexid>   asks the leader to hand leadership to voter <hexid>
 *                        (a follower forwards the request). 202 {to} once asked: the hand-over
 *                        itself takes about one round trip and may fail (watch /_cairn/status);
 *                        400 not a voter of this member's configuration; 503 no leader known.
 */
import type { FastifyInstance } from 'fastify'
import { isCairnError } from '../errors.ts'
import { memberIdFromHex } from '../kv/members.ts'
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
  /** More of this agent's status (the scheduler engine, the unit runner), merged in. */
  more?: () => object
}

export function registerLocalRoutes(app: FastifyInstance, deps: LocalRoutesDeps): void {
  app.get('/_cairn/status', async () => statusOf(deps))
  app.post('/_cairn/transfer-leader', async (request, reply) => {
    const raw = (request.query as { to?: unknown }).to
    const to = (typeof raw === 'string' ? memberIdFromHex(raw) : undefined) ?? 0
    const node = deps.store.node
    if (!node.status().confState.voters.includes(to)) {
      return reply
        .code(400)
        .send({ message: `to: "${String(raw ?? '')}" is not a voter (hex id, as /v2/members shows)` })
    }
    try {
      node.transferLeadership(to)
    } catch (error) {
      if (isCairnError(error, 'RAFT_NO_LEADER'))
        return reply.code(503).send({ message: 'no leader is known' })
      throw error
    }
    return reply.code(202).send({ to: hexId(to) })
  })
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
    ...deps.more?.(),
  }
}

/** Member ids are shown in hex, as etcd does. */
export function hexId(id: NodeId): string {
  return id.toString(16)
}
