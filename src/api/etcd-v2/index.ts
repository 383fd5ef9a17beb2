/**
 * buildEtcdV2Api(deps): the etcd v2 HTTP surface as a fastify plugin.
 *
 *   app.register(buildEtcdV2Api({ store, clusterId, memberId, memberName, ... }))
 *
 * Routes: /v2/keys (keys-route.ts, watch-route.ts; key reads and writes are also answered before
 * fastify by plain-reads.ts and plain-writes.ts when the agent puts `plainReads` and `plainWrites`
 * in its HttpFront), /v2/members
 * (members-route.ts), /v2/stats/*, /v2/machines, /version, /health (stats-route.ts). The keys and members routes live in their own
 * encapsulated contexts, each with its own body parsers and error shape (keys: etcd's error body;
 * members: {"message"}); docs/api-etcd-v2.md is the page for users.
 *
 * Invariants: no route throws past its error handler (every failure is an etcd-shaped reply);
 * closing the fastify instance first ends every open watch (200, as etcd on shutdown), so close
 * never waits on a long poll.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FastPath } from '../http-front.ts'
import { V2Context } from './context.ts'
import type { EtcdV2Deps } from './deps.ts'
import { v2ErrorReply } from './errors.ts'
import { clusterHeaders } from './headers.ts'
import { registerKeysRoutes } from './keys-route.ts'
import { registerMembersRoutes } from './members-route.ts'
import { plainReads } from './plain-reads.ts'
import { plainWrites } from './plain-writes.ts'
import { registerStatsRoutes } from './stats-route.ts'

export type { EtcdV2Deps, RaftStatusView } from './deps.ts'
export { raftStatusOf } from './deps.ts'
export { etcdV2FrameworkErrors } from './errors.ts'
export { type EtcdV2Limits, etcdV2LimitsDefault } from './limits.ts'

export interface EtcdV2Api {
  (app: FastifyInstance): Promise<void>
  /** Open long-poll and stream watches (for tests and metrics). */
  readonly openWatches: () => number
  /** The fast path for plain key reads (plain-reads.ts), for the agent's HttpFront. */
  readonly plainReads: FastPath
  /** The fast path for plain key writes (plain-writes.ts), for the agent's HttpFront. */
  readonly plainWrites: FastPath
}

export function buildEtcdV2Api(deps: EtcdV2Deps): EtcdV2Api {
  const ctx = new V2Context(deps)
  const plugin = async (app: FastifyInstance): Promise<void> => {
    app.addHook('preClose', async () => {
      for (const watch of [...ctx.openWatches]) watch.finish()
    })
    await app.register(async (keys) => {
      keys.setErrorHandler((error: FastifyError, _request: FastifyRequest, reply: FastifyReply) =>
        ctx.sendError(reply, error),
      )
      registerKeysRoutes(keys, ctx)
    })
    await app.register(async (members) => {
      members.addContentTypeParser('*', { parseAs: 'string' }, (_request, _body, done) =>
        done(null, undefined),
      )
      members.setErrorHandler((error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = v2ErrorReply(error)
        return reply
          .code(status)
          .headers(clusterHeaders(deps.clusterId))
          .send({ message: body.cause ?? body.message })
      })
      registerMembersRoutes(members, ctx)
    })
    registerStatsRoutes(app, ctx)
  }
  return Object.assign(plugin, {
    openWatches: () => ctx.openWatches.size,
    plainReads: plainReads(ctx),
    plainWrites: plainWrites(ctx),
  })
}
