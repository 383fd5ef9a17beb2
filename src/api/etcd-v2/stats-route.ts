/**
 * etcd 2.3's status endpoints: /v2/stats/self, /v2/stats/leader, /v2/stats/store, /v2/machines,
 * /version and /health.
 *
 *   - /health: 200 {"health":"true"} only while a leader is known, else 503 {"health":"false"}.
 *     (etcd 2.3 also waited for the Raft index to advance; a known leader is Cairn's test.)
 *   - /v2/stats/self: etcd's shape; the append/bandwidth counters are 0 (the transport does not
 *     count them yet).
 *   - /v2/stats/leader: on the leader, every follower with counts and latency fields as etcd's
 *     shape, all 0 (not measured yet); elsewhere 403 {"message":"not current leader"} as etcd.
 *   - /v2/stats/store: store-stats.ts (this member's requests; expireCount is 0).
 *   - /v2/machines: every member's client URLs joined by ", " (text/plain).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { V2Context } from './context.ts'
import type { RaftStatusView } from './deps.ts'

const stateNames: Record<string, string> = {
  leader: 'StateLeader',
  follower: 'StateFollower',
  candidate: 'StateCandidate',
  preCandidate: 'StateCandidate',
}

export function registerStatsRoutes(app: FastifyInstance, ctx: V2Context): void {
  app.get('/health', (_request, reply) => {
    const healthy = ctx.deps.raftStatus().leader !== 0
    return json(reply, healthy ? 200 : 503, { health: healthy ? 'true' : 'false' })
  })
  app.get('/version', (_request, reply) =>
    json(reply, 200, { etcdserver: ctx.deps.version.server, etcdcluster: ctx.deps.version.cluster }),
  )
  app.get('/v2/machines', (_request, reply) => {
    const urls = ctx.deps.raftStatus().members.flatMap((m) => m.clientUrls)
    return reply.code(200).type('text/plain; charset=utf-8').send(urls.join(', '))
  })
  app.get('/v2/stats/store', (_request, reply) =>
    json(reply, 200, ctx.stats.json(ctx.deps.store.stateMachine.watcherCount)),
  )
  app.get('/v2/stats/self', (_request, reply) => json(reply, 200, selfStats(ctx, ctx.deps.raftStatus())))
  app.get('/v2/stats/leader', (_request, reply) => {
    const raft = ctx.deps.raftStatus()
    if (raft.role !== 'leader') return json(reply, 403, { message: 'not current leader' })
    return json(reply, 200, leaderStats(ctx, raft))
  })
}

function selfStats(ctx: V2Context, raft: RaftStatusView): object {
  const now = ctx.clock()
  const start = new Date(ctx.startTimeMs).toISOString()
  return {
    name: ctx.deps.memberName,
    id: ctx.deps.memberId.toString(16),
    state: stateNames[raft.role] ?? 'StateFollower',
    startTime: start,
    leaderInfo: {
      leader: raft.leader === 0 ? '' : raft.leader.toString(16),
      uptime: goDuration(now - ctx.startTimeMs),
      startTime: start,
    },
    recvAppendRequestCnt: 0,
    recvBandwidthRate: 0,
    recvPkgRate: 0,
    sendAppendRequestCnt: 0,
    sendBandwidthRate: 0,
    sendPkgRate: 0,
  }
}

function leaderStats(ctx: V2Context, raft: RaftStatusView): object {
  const zeroLatency = { current: 0, average: 0, standardDeviation: 0, minimum: 0, maximum: 0 }
  const followers: Record<string, object> = {}
  for (const member of raft.members) {
    if (member.id === ctx.deps.memberId) continue
    followers[member.id.toString(16)] = { latency: { ...zeroLatency }, counts: { fail: 0, success: 0 } }
  }
  return { leader: ctx.deps.memberId.toString(16), followers }
}

/** Go's time.Duration String() for a non-negative number of milliseconds, e.g. "1h2m3.5s". */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s'
  if (ms < 1000) return `${ms}ms`
  const hours = Math.floor(ms / 3_600_000)
  const minutes = Math.floor((ms % 3_600_000) / 60_000)
  const seconds = ((ms % 60_000) / 1000).toString()
  return `${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds}s`
}

function json(reply: FastifyReply, status: number, body: object): FastifyReply {
  return reply.code(status).type('application/json').send(body)
}
