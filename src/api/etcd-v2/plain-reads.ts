/**
 * Plain reads: the one hot request of the keys API answered before fastify (a fast path of
 * HttpFront, src/api/http-front.ts). An app reading its config does `GET /v2/keys/<key>` with no
 * parameters, over and over; that request is answered here with the same functions the keys route
 * uses (keyOfUrl, parseV2KeyRequest, stateMachine.v2Get, renderEvent, keyHeaders), so the answer is
 * the route's, without fastify's routing, hooks and reply object.
 *
 * Taken only when all of these hold, and declined (nothing written, nothing counted) otherwise:
 *   - the method is GET (HEAD, watches and writes go to the route);
 *   - the URL is /v2/keys/ and then only unreserved characters, '/' and percent-escapes: no query
 *     (so no wait, quorum, recursive or sorted) and no ';' or '#'. Also no '//' and no dot segment:
 *     the route would read the same key from them (fastify's router does not rewrite URLs), but
 *     anything unusual is left to the route;
 *   - the request has no body (a GET may carry a form the route would merge into its parameters);
 *   - the read succeeds: every error (a missing key, a malformed escape) is answered by the route,
 *     with etcd's error shape and its own counting.
 * The route's invariants hold here too: the X-Etcd-Index of a read is the revision it saw, and a
 * successful read counts once in the store stats (getsSuccess).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { renderEvent } from '../../kv/v2-json.ts'
import type { V2Result } from '../../kv/v2-node.ts'
import { parseV2KeyRequest } from '../../kv/v2-request.ts'
import type { FastPath } from '../http-front.ts'
import type { V2Context } from './context.ts'
import { keyOfUrl, keysPrefix } from './form.ts'
import { keyHeaders } from './headers.ts'

/** /v2/keys/ followed by unreserved characters, sub-delimiters but ';', ':', '@', '/' and escapes. */
const plainKeyUrl = /^\/v2\/keys\/(?:[A-Za-z0-9\-._~!$&'()*+,=:@/]|%[0-9A-Fa-f]{2})*$/
const noForm = {}

export function plainReads(ctx: V2Context): FastPath {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url
    if (req.method !== 'GET' || url === undefined || !isPlainKeyUrl(url)) return false
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      return false
    }
    let result: V2Result
    try {
      const key = parseV2KeyRequest('GET', keyOfUrl(url, 0), noForm, 0).key
      result = ctx.deps.store.stateMachine.v2Get(key, { recursive: false, sorted: false })
    } catch {
      return false
    }
    ctx.stats.countGet(true)
    const body = `${JSON.stringify(renderEvent(result, ctx.clock()))}\n`
    // As fastify writes the route's reply: header names lower-cased, in the route's order, a JSON
    // content type without a charset given `; charset=utf-8`, then content-length.
    const headers = keyHeaders(ctx.deps.clusterId, result.index, ctx.deps.raftStatus())
    const flat: string[] = []
    for (const name in headers) {
      const lower = name.toLowerCase()
      const value = headers[name] as string
      flat.push(
        lower,
        lower === 'content-type' && !value.includes('charset') ? `${value}; charset=utf-8` : value,
      )
    }
    flat.push('content-length', String(Buffer.byteLength(body)))
    res.writeHead(200, flat)
    res.end(body)
    return true
  }
}

/** Whether fastify would route `url` to the keys route with exactly the key keyOfUrl reads. */
export function isPlainKeyUrl(url: string): boolean {
  return (
    url.startsWith(`${keysPrefix}/`) &&
    plainKeyUrl.test(url) &&
    !url.includes('//') &&
    !/\/\.\.?(\/|$)/.test(url)
  )
}
