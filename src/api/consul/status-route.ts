/**
 * The Consul v1 status endpoints (consul docs api-docs/status.mdx):
 *
 *   GET /v1/status/leader  the leader's peer address as a JSON string, "" when none is known
 *   GET /v1/status/peers   the voters' peer addresses, ["host:port", ...]
 *
 * Both answer from this member's view (deps.leader(), deps.peers()) without a Raft round trip,
 * as Consul does; they carry no X-Consul-Index and do not block.
 */
import type { FastifyInstance } from 'fastify'
import type { ConsulApiDeps } from './deps.ts'
import { checkDatacenter, type Query } from './render.ts'

export function registerStatusRoutes(app: FastifyInstance, deps: ConsulApiDeps): void {
  app.get('/v1/status/leader', async (request, reply) => {
    checkDatacenter(request.query as Query, deps)
    const leader = deps.leader()
    return reply
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(leader.known ? leader.address : ''))
  })
  app.get('/v1/status/peers', async (request, reply) => {
    checkDatacenter(request.query as Query, deps)
    return reply.send(deps.peers())
  })
}
