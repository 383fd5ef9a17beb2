/**
 * /v2/keys: etcd 2.3's key space over the replicated store.
 *
 * The HTTP layer is a thin mapping: parameters are checked by parseV2KeyRequest and writes are
 * planned by planV2Write (src/kv/v2-request.ts); this file only picks read, watch or write and
 * writes the answer.
 *
 *   - GET/HEAD: a local read of this member (sequentially consistent), or with quorum=true a read
 *     after store.readBarrier() (linearizable: etcd 2.3's QGET); wait=true hands over to the watch.
 *   - PUT/POST/DELETE: the planned command, stamped and proposed; the answer is its result as
 *     applied on this member (ok:false carries the KvError). 201 when etcd would say Created.
 *     (V2Context.writeAnswer, which plain-writes.ts shares.)
 *   - Other methods: 405 with an Allow header, as etcd.
 *
 * Invariants: the X-Etcd-Index of a read is the store revision the read saw; of a write, the
 * revision right after that write; every error goes through V2Context.sendError (etcd's shape).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseV2KeyRequest, type V2KeyRequest, type V2Method } from '../../kv/v2-request.ts'
import { logUnexpected, send, type V2Context } from './context.ts'
import { keyOfUrl, keysPrefix, mergeForm, readsFormBody } from './form.ts'
import { serveWatch } from './watch-route.ts'

const v2Methods: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE'])
const allowHeader = 'GET, HEAD, PUT, POST, DELETE'

export function registerKeysRoutes(app: FastifyInstance, ctx: V2Context): void {
  // etcd reads forms only; any other body is ignored (read as text so the body limit applies).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, _body, done) => done(null, undefined))
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, body),
  )
  const handler = (request: FastifyRequest, reply: FastifyReply) => handleKeys(ctx, request, reply)
  const options = { bodyLimit: ctx.limits.requestBodyBytesMax, exposeHeadRoute: false }
  for (const url of [keysPrefix, `${keysPrefix}/*`]) {
    app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'], url, handler, ...options })
    app.route({ method: ['PATCH', 'OPTIONS'], url, handler: methodNotAllowed, ...options })
  }
}

async function handleKeys(ctx: V2Context, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const method = request.method as V2Method
  if (!v2Methods.has(method)) return methodNotAllowed(request, reply)
  let req: V2KeyRequest
  try {
    // etcd's request errors (NewRequestError) carry index 0, in the body and X-Etcd-Index.
    const key = keyOfUrl(request.url, 0)
    req = parseV2KeyRequest(
      method,
      key,
      mergeForm(readsFormBody(method) ? request.body : undefined, request.url),
      0,
    )
  } catch (error) {
    if (method === 'GET' || method === 'HEAD') ctx.stats.countGet(false)
    return ctx.sendError(reply, error)
  }
  if (method === 'GET' || method === 'HEAD') {
    if (req.wait) return serveWatch(ctx, request, reply, req)
    return await read(ctx, reply, req)
  }
  return await write(ctx, reply, req)
}

async function read(ctx: V2Context, reply: FastifyReply, req: V2KeyRequest): Promise<FastifyReply> {
  try {
    if (ctx.needsBarrier(req)) await ctx.deps.store.readBarrier()
    return send(reply, ctx.readAnswer(req))
  } catch (error) {
    ctx.stats.countGet(false)
    return ctx.sendError(reply, error)
  }
}

async function write(ctx: V2Context, reply: FastifyReply, req: V2KeyRequest): Promise<FastifyReply> {
  return send(reply, await ctx.writeAnswer(req, logUnexpected(reply)))
}

function methodNotAllowed(_request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(405).header('Allow', allowHeader).type('text/plain').send('Method Not Allowed\n')
}
