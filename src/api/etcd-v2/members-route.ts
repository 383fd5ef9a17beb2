/**
 * /v2/members: etcd 2.3's members API over the Raft membership.
 *
 *   GET    /v2/members          {"members":[{id (hex), name, peerURLs, clientURLs}]}
 *   GET    /v2/members/leader   the leader's member, or 503 "During election"
 *   POST   /v2/members          {"peerURLs":[...]} (application/json, else 415) → 201 + member;
 *                                409 when a member already has one of the peer URLs
 *   DELETE /v2/members/<hexid>  204; 404 unknown member
 *   PUT    /v2/members/<hexid>  {"peerURLs":[...]} → 204; 404 unknown; 409 URL of another member
 *   POST   /v2/members/<hexid>/promote  (Cairn's, after etcd v3's MemberPromote) a learner becomes a
 *                                voter now → 200 + member; 404 unknown; 409 not a learner; 412 the
 *                                learner has not caught up with the leader yet
 * Errors here use etcd's httptypes shape {"message": "..."}, not the keys API's error body.
 *
 * Adding and removing are Raft membership changes (RaftNode.proposeConfChange) carrying the
 * member context (raft/member-context.ts); a URL update is a `member.update` command. The new
 * member's id comes from deps.newMemberId (the agent derives ids); without it, POST answers 501.
 * Departure: POST adds a learner (etcd 2.3 added a voter at once); the leader promotes it when it
 * has caught up, so adding an empty member never weakens the quorum.
 * Departure: etcd answered 410 Gone for a member removed earlier; Cairn does not remember removed
 * ids and answers 404.
 *
 * On a follower, POST, DELETE and promote are forwarded over HTTP to the leader's client URL and
 * the leader's answer is relayed as it is: only the leader can judge a change (is the learner caught
 * up? is another change pending?), and a refusal that Raft's internal forwarding would drop then
 * reaches the client as an answer instead of a timeout. A forwarded request carries
 * `X-Cairn-Forwarded` and is never forwarded again; without a known leader, or without its client
 * URL, the follower proposes itself as before. Past membersForwardTimeoutMs: 504. Before relaying
 * a success, the follower passes a ReadIndex barrier, so it has applied the change too (a client
 * reads its own change from the member it asked).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { request as httpRequest } from 'undici'
import { isCairnError } from '../../errors.ts'
import { type Member, memberIdFromHex } from '../../kv/members.ts'
import { encodeMemberContext, peerAddress } from '../../raft/member-context.ts'
import type { V2Context } from './context.ts'
import { v2ErrorReply } from './errors.ts'
import { clusterHeaders } from './headers.ts'

export interface MemberJson {
  id: string
  name: string
  peerURLs: string[]
  clientURLs: string[]
}

export function memberJson(member: Member): MemberJson {
  return {
    id: member.id.toString(16),
    name: member.name,
    peerURLs: [...member.peerUrls],
    clientURLs: [...member.clientUrls],
  }
}

export function registerMembersRoutes(app: FastifyInstance, ctx: V2Context): void {
  const bodyLimit = ctx.limits.membersBodyBytesMax
  app.get('/v2/members', (_request, reply) => sendJson(ctx, reply, 200, { members: listMembers(ctx) }))
  app.get('/v2/members/leader', (_request, reply) => {
    const raft = ctx.deps.raftStatus()
    const leader = raft.members.find((m) => m.id === raft.leader)
    if (raft.leader === 0 || leader === undefined) return sendMessage(ctx, reply, 503, 'During election')
    return sendJson(ctx, reply, 200, memberJson(leader))
  })
  app.post('/v2/members', { bodyLimit }, (request, reply) => addMember(ctx, request, reply))
  app.delete('/v2/members/:id', (request, reply) => removeMember(ctx, request, reply))
  app.put('/v2/members/:id', { bodyLimit }, (request, reply) => updateMember(ctx, request, reply))
  app.post('/v2/members/:id/promote', (request, reply) => promoteMember(ctx, request, reply))
}

function listMembers(ctx: V2Context): MemberJson[] {
  return [...ctx.deps.raftStatus().members].sort((a, b) => a.id - b.id).map(memberJson)
}

async function addMember(
  ctx: V2Context,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const peerUrls = peerUrlsOf(ctx, request, reply)
  if (peerUrls === undefined) return reply
  const forwarded = await forwardToLeader(ctx, request, reply, JSON.stringify({ peerURLs: peerUrls }))
  if (forwarded !== undefined) return forwarded
  if (ctx.deps.newMemberId === undefined)
    return sendMessage(ctx, reply, 501, 'adding members is not configured')
  const taken = urlOwner(ctx, peerUrls, undefined)
  if (taken !== undefined) return sendMessage(ctx, reply, 409, `membership: peerURL exists (${taken})`)
  const id = ctx.deps.newMemberId(peerUrls)
  if (ctx.deps.raftStatus().members.some((m) => m.id === id))
    return sendMessage(ctx, reply, 409, 'membership: ID exists')
  const context = encodeMemberContext({ name: '', peerUrls, clientUrls: [] })
  try {
    // A new member joins as a learner: it catches up without weakening the quorum, and the
    // leader's agent promotes it to voter once it has (src/agent/promoter.ts).
    await ctx.deps.store.node.proposeConfChange({ type: 'addLearner', nodeId: id, context })
  } catch (error) {
    return sendFailure(ctx, reply, error)
  }
  return sendJson(ctx, reply, 201, { id: id.toString(16), name: '', peerURLs: peerUrls, clientURLs: [] })
}

async function removeMember(
  ctx: V2Context,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const member = memberOf(ctx, request)
  if (member === undefined) return sendMessage(ctx, reply, 404, 'membership: member not found')
  const forwarded = await forwardToLeader(ctx, request, reply, undefined)
  if (forwarded !== undefined) return forwarded
  try {
    await ctx.deps.store.node.proposeConfChange({ type: 'removeNode', nodeId: member.id })
  } catch (error) {
    return sendFailure(ctx, reply, error)
  }
  return reply.code(204).headers(clusterHeaders(ctx.deps.clusterId)).send()
}

async function promoteMember(
  ctx: V2Context,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const member = memberOf(ctx, request)
  if (member === undefined) return sendMessage(ctx, reply, 404, 'membership: member not found')
  if (!member.isLearner) return sendMessage(ctx, reply, 409, 'membership: member is not a learner')
  const forwarded = await forwardToLeader(ctx, request, reply, undefined)
  if (forwarded !== undefined) return forwarded
  try {
    await ctx.deps.store.node.proposeConfChange({ type: 'addVoter', nodeId: member.id })
  } catch (error) {
    if (isCairnError(error, 'RAFT_LEARNER_NOT_CAUGHT_UP')) {
      return sendMessage(
        ctx,
        reply,
        412,
        'membership: the learner has not caught up with the leader yet (it is promoted by itself once it has)',
      )
    }
    return sendFailure(ctx, reply, error)
  }
  const promoted = ctx.deps.raftStatus().members.find((m) => m.id === member.id) ?? member
  return sendJson(ctx, reply, 200, memberJson(promoted))
}

async function updateMember(
  ctx: V2Context,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const peerUrls = peerUrlsOf(ctx, request, reply)
  if (peerUrls === undefined) return reply
  const member = memberOf(ctx, request)
  if (member === undefined) return sendMessage(ctx, reply, 404, 'membership: member not found')
  const taken = urlOwner(ctx, peerUrls, member.id)
  if (taken !== undefined) return sendMessage(ctx, reply, 409, `membership: peerURL exists (${taken})`)
  try {
    const applied = await ctx.deps.store.write({ op: 'member.update', nodeId: member.id, peerUrls })
    if ('error' in applied) return sendFailure(ctx, reply, applied.error)
  } catch (error) {
    return sendFailure(ctx, reply, error)
  }
  return reply.code(204).headers(clusterHeaders(ctx.deps.clusterId)).send()
}

/** The body's peer URLs, or undefined after answering 415/400. */
function peerUrlsOf(ctx: V2Context, request: FastifyRequest, reply: FastifyReply): string[] | undefined {
  const type = request.headers['content-type'] ?? ''
  if (!type.startsWith('application/json')) {
    sendMessage(ctx, reply, 415, `Bad Content-Type ${type}, accept application/json`)
    return undefined
  }
  const urls = (request.body as { peerURLs?: unknown } | null)?.peerURLs
  const valid =
    Array.isArray(urls) &&
    urls.length > 0 &&
    urls.length <= 16 &&
    urls.every((u) => typeof u === 'string' && peerAddress(u) !== undefined)
  if (!valid) {
    sendMessage(ctx, reply, 400, 'peerURLs must be a non-empty list of http://host:port URLs')
    return undefined
  }
  return urls as string[]
}

function memberOf(ctx: V2Context, request: FastifyRequest): Member | undefined {
  const id = memberIdFromHex((request.params as { id?: string }).id ?? '')
  if (id === undefined) return undefined
  return ctx.deps.raftStatus().members.find((m) => m.id === id)
}

function urlOwner(ctx: V2Context, urls: readonly string[], except: number | undefined): string | undefined {
  for (const member of ctx.deps.raftStatus().members) {
    if (member.id === except) continue
    const hit = member.peerUrls.find((u) => urls.includes(u))
    if (hit !== undefined) return hit
  }
  return undefined
}

function sendJson(ctx: V2Context, reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).headers(clusterHeaders(ctx.deps.clusterId)).type('application/json').send(body)
}

function sendMessage(ctx: V2Context, reply: FastifyReply, status: number, message: string): FastifyReply {
  return sendJson(ctx, reply, status, { message })
}

/** A Raft or store failure: etcd answered 500 with the error text (the change may still apply). */
function sendFailure(ctx: V2Context, reply: FastifyReply, error: unknown): FastifyReply {
  const { body } = v2ErrorReply(error)
  return sendMessage(ctx, reply, 500, body.cause ?? body.message)
}

const forwardedHeader = 'x-cairn-forwarded'

/**
 * On a follower that knows the leader's client URL, sends the same request there and relays the
 * answer; undefined when this member should handle the request itself (see the header).
 */
async function forwardToLeader(
  ctx: V2Context,
  request: FastifyRequest,
  reply: FastifyReply,
  body: string | undefined,
): Promise<FastifyReply | undefined> {
  if (request.headers[forwardedHeader] !== undefined) return undefined
  const status = ctx.deps.raftStatus()
  if (status.role === 'leader' || status.leader === 0) return undefined
  const leaderUrl = status.members.find((m) => m.id === status.leader)?.clientUrls[0]
  if (leaderUrl === undefined) return undefined
  const timeoutMs = ctx.limits.membersForwardTimeoutMs
  try {
    const answer = await httpRequest(new URL(request.url, leaderUrl), {
      method: request.method as 'POST' | 'DELETE',
      headers: {
        [forwardedHeader]: ctx.deps.memberId.toString(16),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await answer.body.text()
    if (answer.statusCode < 300) {
      // The leader answered once it applied the change; this member may not have yet. Catch up
      // first, so a client reading /v2/members here next sees its own change.
      await ctx.deps.store.readBarrier().catch(() => undefined)
    }
    const type = answer.headers['content-type']
    if (typeof type === 'string') reply.header('content-type', type)
    return reply
      .code(answer.statusCode)
      .headers(clusterHeaders(ctx.deps.clusterId))
      .send(text === '' ? undefined : text)
  } catch (error) {
    const timedOut =
      (error as Error).name === 'TimeoutError' || (error as { code?: string }).code?.includes('TIMEOUT')
    return sendMessage(
      ctx,
      reply,
      timedOut ? 504 : 503,
      `membership: forwarding to the leader at ${leaderUrl} failed: ${(error as Error).message}`,
    )
  }
}
