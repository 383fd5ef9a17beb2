/**
 * The Consul session endpoints: PUT create, destroy/<id>, renew/<id>; GET info/<id>, node/<node>,
 * list. Records, leases and lock-delay live in sessions.ts; this file maps them to HTTP.
 *
 * Answers follow Consul: create returns {"ID"}; destroy is idempotent and returns true; info
 * returns [] for an unknown id; renew answers 404 "Session id '<id>' not found" once the session is
 * gone; an empty id or node is 400 "Missing session" / "Missing node name". The GET endpoints take
 * `?index`/`?wait` and the consistency modes like KV reads (answerStoreQuery), waking on changes
 * under the sessions directory.
 *
 * Registering the routes also starts this agent's lock-delay feed (sessions.ts), which runs until
 * `closing` aborts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ConsulApiDeps } from './deps.ts'
import { jsonBody, readParams } from './http.ts'
import { answerStoreQuery, kvErrorReply, type StoreQuery } from './kv-route.ts'
import {
  createSession,
  decodeSession,
  destroySession,
  listSessions,
  lockDelaysOf,
  normalizeSessionId,
  parseSessionRequest,
  renewSession,
  type StoredSession,
  sessionStoreKey,
  sessionsDir,
  sessionView,
  startLockDelayFeed,
} from './sessions.ts'

type Query = Record<string, string | string[] | undefined>

export function registerSessionRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  const clock = deps.clock ?? Date.now
  startLockDelayFeed(deps.store, lockDelaysOf(deps), clock, closing)
  const route = (
    method: 'GET' | 'PUT',
    url: string,
    handle: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>,
  ): void => {
    app.route({
      method,
      url,
      handler: async (request, reply) => {
        try {
          return await handle(request, reply)
        } catch (error) {
          return kvErrorReply(reply, error)
        }
      },
    })
  }

  route('PUT', '/v1/session/create', async (request, reply) => {
    const spec = parseSessionRequest(jsonBody(request.body), deps.nodeName)
    const id = await createSession(deps.store, spec)
    return reply.type('application/json').send(JSON.stringify({ ID: id }))
  })

  route('PUT', '/v1/session/destroy/:id', async (request, reply) => {
    const id = paramOf(request, 'id')
    if (id === '') return text(reply, 400, 'Missing session')
    const ended = await destroySession(deps.store, id)
    if (ended !== undefined)
      lockDelaysOf(deps).sessionEnded(ended.keys, ended.session.record.LockDelay, clock())
    return reply.type('application/json').send('true')
  })

  route('PUT', '/v1/session/renew/:id', async (request, reply) => {
    const id = paramOf(request, 'id')
    if (id === '') return text(reply, 400, 'Missing session')
    const session = await renewSession(deps.store, id)
    if (session === undefined) return text(reply, 404, `Session id '${id.slice(0, 256)}' not found`)
    return reply.type('application/json').send(JSON.stringify([sessionView(session)]))
  })

  route('GET', '/v1/session/info/:id', async (request, reply) => {
    const id = paramOf(request, 'id')
    if (id === '') return text(reply, 400, 'Missing session')
    const canonical = normalizeSessionId(id)
    const query: StoreQuery = {
      // An id that is not a UUID names no session, now or later: nothing to watch.
      watches: canonical === undefined ? [] : [{ key: sessionStoreKey(canonical), recursive: false }],
      read: async () => {
        if (canonical === undefined) {
          const result = await deps.store.range({ key: sessionsDir, countOnly: true }, { serializable: true })
          return sessionsAnswer(result.revision, [])
        }
        const result = await deps.store.range({ key: sessionStoreKey(canonical) }, { serializable: true })
        const session = result.kvs[0] === undefined ? undefined : decodeSession(result.kvs[0])
        return sessionsAnswer(result.revision, session === undefined ? [] : [session])
      },
    }
    return answerStoreQuery(reply, deps, readParams(request.query as Query), query, closing)
  })

  route('GET', '/v1/session/node/:node', async (request, reply) => {
    const node = paramOf(request, 'node')
    if (node === '') return text(reply, 400, 'Missing node name')
    return answerStoreQuery(reply, deps, readParams(request.query as Query), listQuery(deps, node), closing)
  })

  route('GET', '/v1/session/list', async (request, reply) =>
    answerStoreQuery(reply, deps, readParams(request.query as Query), listQuery(deps, undefined), closing),
  )
}

function listQuery(deps: ConsulApiDeps, node: string | undefined): StoreQuery {
  return {
    watches: [{ key: sessionsDir, recursive: true }],
    read: async () => {
      const { revision, sessions } = await listSessions(deps.store, { serializable: true })
      const lower = node?.toLowerCase()
      return sessionsAnswer(
        revision,
        lower === undefined ? sessions : sessions.filter((s) => s.record.Node.toLowerCase() === lower),
      )
    },
  }
}

function sessionsAnswer(revision: number, sessions: StoredSession[]) {
  const body = JSON.stringify(sessions.map(sessionView))
  return { revision, send: (reply: FastifyReply) => reply.type('application/json').send(body) }
}

function paramOf(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string | undefined>)[name] ?? ''
}

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(body)
}
