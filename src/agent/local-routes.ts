/**
 * The agent's own HTTP routes, beside the API surfaces:
 *   GET  /health            200 {"health":"true"} when this member knows a leader, else 503
 *                           {"health":"false","reason"} (etcd's /health shape)
 *   GET  /version           {"etcdserver","etcdcluster","cairn"} (etcd's /version shape)
 *   GET  /_cairn/status     this member's Raft view: role, leader, term, commit, applied, members
 *   PUT  /_cairn/kv/<key>   internal: sets <key> to the text/plain body through Raft
 *   GET  /_cairn/kv/<key>   internal: linearizable read of <key> (read barrier first)
 * The /_cairn/kv routes exist so the multi-process tests and `cairn dev` users have a write path
 * before the etcd v2 API is registered; they are not a stable interface (docs/agent.md).
 *
 * Invariants: a handler never throws past fastify; typed errors become {code,message} with the
 * status from http-errors.ts, anything else is a logged 500. Every write is acknowledged only
 * after ReplicatedStore.write resolved, i.e. after it was committed and applied on this member.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { ReplicatedStore } from '../kv/replicated-store.ts'
import type { ApplyResult } from '../kv/state-machine.ts'
import type { NodeId } from '../raft/core/types.ts'
import { errorAnswer } from './http-errors.ts'

/** The etcd versions whose v2 API shapes Cairn answers with (reference/). */
export const etcdServerVersion = '2.3.8'
export const etcdClusterVersion = '2.3.0'

export interface LocalRoutesDeps {
  name: string
  id: NodeId
  clusterId: string
  peerUrl: string
  clientUrl: string
  cairnVersion: string
  store: ReplicatedStore
  /** True once the agent began shutting down: /health answers 503. */
  stopping(): boolean
}

export function registerLocalRoutes(app: FastifyInstance, deps: LocalRoutesDeps): void {
  app.get('/health', async (_request, reply) => {
    const leader = deps.store.node.leader
    if (deps.stopping()) return reply.code(503).send({ health: 'false', reason: 'stopping' })
    if (leader === 0) return reply.code(503).send({ health: 'false', reason: 'no leader' })
    return { health: 'true' }
  })

  app.get('/version', async () => ({
    etcdserver: etcdServerVersion,
    etcdcluster: etcdClusterVersion,
    cairn: deps.cairnVersion,
  }))

  app.get('/_cairn/status', async () => statusOf(deps))

  app.put<{ Params: { '*': string }; Body: unknown }>('/_cairn/kv/*', async (request, reply) => {
    if (typeof request.body !== 'string') {
      return reply.code(415).send({ code: 'KV_INVALID_FORM', message: 'send the value as text/plain' })
    }
    try {
      const result = await deps.store.write({
        op: 'v2.set',
        key: `/${request.params['*']}`,
        value: request.body,
        dir: false,
      })
      return answerWrite(reply, result)
    } catch (error) {
      return answerError(reply, request.log, error)
    }
  })

  app.get<{ Params: { '*': string } }>('/_cairn/kv/*', async (request, reply) => {
    try {
      await deps.store.readBarrier()
      const result = deps.store.stateMachine.v2Get(`/${request.params['*']}`)
      return { key: result.node.key, value: result.node.value, modifiedIndex: result.node.modifiedIndex }
    } catch (error) {
      return answerError(reply, request.log, error)
    }
  })
}

function statusOf(deps: LocalRoutesDeps): object {
  const status = deps.store.node.status()
  const members = deps.store.stateMachine.members()
  return {
    name: deps.name,
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

function answerWrite(reply: FastifyReply, result: ApplyResult): FastifyReply {
  if (result.type === 'command' && result.ok) {
    const v2 = result.result as { node?: { key: string; modifiedIndex: number } }
    return reply.send({ key: v2.node?.key, modifiedIndex: v2.node?.modifiedIndex })
  }
  if (result.type === 'command' || result.type === 'invalid') {
    const { status, body } = errorAnswer(result.error)
    return reply.code(status).send(body)
  }
  return reply.code(500).send({ code: 'INTERNAL', message: `unexpected apply result ${result.type}` })
}

function answerError(reply: FastifyReply, log: { error(o: object, m: string): void }, error: unknown) {
  const { status, body } = errorAnswer(error)
  if (status === 500) log.error({ err: error }, 'agent route failed')
  return reply.code(status).send(body)
}
