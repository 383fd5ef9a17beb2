/**
 * etcd 2.3's status endpoints: /v2/stats/self, /v2/stats/leader, /v2/stats/store, /v2/machines,
 * /version and /health.
 *
 *   - /health: 200 {"health":"true"} only while a leader is known, else 503 {"health":"false"}.
 *     (etcd 2.3 also waited for the Raft index to advance; a known leader is Cairn's test.)
 *   - /v2/stats/self: etcd's shape; the append counters and the rates over the last appends come
 *     from the peer transport (raft/transport/transport-stats.ts), 0 without one.
 *   - /v2/stats/leader: on the leader, every other member with etcd's counts (appends written /
 *     dropped) and latency (append round trips, ms) from the transport; elsewhere 403
 *     {"message":"not current leader"} as etcd. The counts run from the member's start, not from
 *     its election (etcd's too).
 *   - /v2/stats/store: store-stats.ts (this member's requests; expireCount is 0).
 *   - /v2/machines: every member's client URLs joined by ", " (text/plain).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { AppendRates, PeerCountersView } from '../../raft/transport/transport-stats.ts'
import type { V2Context } from './context.ts'
import type { RaftStatusView } from './deps.ts'

const stateNames: Record<string, string> = {
  leader: 'StateLeader',
  follower: 'StateFollower',
  candidate: 'StateCandidate',
  preCandidate: 'StateCandidate',
}

const noRates: AppendRates = { sendPkgRate: 0, sendBandwidthRate: 0, recvPkgRate: 0, recvBandwidthRate: 0 }

export function registerStatsRoutes(app: FastifyInstance, ctx: V2Context): void {
  ctx.deps.onStoreStats?.(ctx.stats)
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
  const counters = ctx.deps.transportCounters
  const rates = counters?.appendRates() ?? noRates
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
    recvAppendRequestCnt: counters?.appendsReceived ?? 0,
    recvPkgRate: rates.recvPkgRate,
    recvBandwidthRate: rates.recvBandwidthRate,
    sendAppendRequestCnt: counters?.appendsSent ?? 0,
    sendPkgRate: rates.sendPkgRate,
    sendBandwidthRate: rates.sendBandwidthRate,
  }
}

function leaderStats(ctx: V2Context, raft: RaftStatusView): object {
  const followers: Record<string, object> = {}
  for (const member of raft.members) {
    if (member.id === ctx.deps.memberId) continue
    followers[member.id.toString(16)] = followerStats(ctx.deps.transportCounters?.peer(member.id))
  }
  return { leader: ctx.deps.memberId.toString(16), followers }
}

/** etcd's FollowerStats; all 0 for a member the transport has no counters for. */
function followerStats(peer: PeerCountersView | undefined): object {
  const latency = peer?.latency
  return {
    latency: {
      current: latency?.current ?? 0,
      average: latency?.average ?? 0,
      standardDeviation: latency?.standardDeviation ?? 0,
      minimum: latency?.minimum ?? 0,
      maximum: latency?.maximum ?? 0,
    },
    counts: { fail: peer?.appendsDropped ?? 0, success: peer?.appendsSent ?? 0 },
  }
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
