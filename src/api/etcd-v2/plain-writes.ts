/**
 * Plain writes: `PUT`, `POST` and `DELETE /v2/keys/<key>` with a form body answered before fastify
 * (a fast path of HttpFront, src/api/http-front.ts), as plain-reads.ts answers key reads. A write is
 * the request whose cost a client waits on most: fastify's body parser, routing, hooks and reply
 * object come on top of the proposal's round, for every write.
 *
 * The answer is the route's, made by the same functions: keyOfUrl, mergeForm and
 * parseV2KeyRequest for the request, V2Context.writeAnswer for the proposal, the counting and the
 * answer (success or error), plain-reads.ts' writeAnswer for the bytes.
 *
 * Taken only when all of these hold, and declined (nothing read, written or counted) otherwise:
 *   - the method is PUT, POST or DELETE and the path is a plain key path (isPlainKeyUrl: the route
 *     would write the same key);
 *   - the body, if any, belongs to a PUT or POST (a DELETE's body is ignored, as etcd ignores it,
 *     which the route does), has a Content-Length of at most requestBodyBytesMax (no chunked body:
 *     the route's body limit and its length checks are fastify's to apply) and the content type
 *     `application/x-www-form-urlencoded` exactly, as etcd's clients, curl and node-etcd send it
 *     (any other type is the route's: it reads and ignores such bodies).
 * Every parameter the route knows is handled here (they are all parseV2KeyRequest's), so a taken
 * request is answered in full: a malformed form or parameter with etcd's error answer, as the route
 * answers it.
 *
 * Invariants (the route's, which this path must keep as well):
 *   - a taken request is answered once, or its connection ends (the client went away mid-body);
 *   - it is never handed back to fastify: its body has been read, so fastify could not parse it;
 *     an unexpected error (a bug) is logged through exits.unexpected and answered with the route's
 *     500;
 *   - every answered write counts once in the store stats, as the route counts it (writeAnswer).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseV2KeyRequest, type V2KeyRequest, type V2Method } from '../../kv/v2-request.ts'
import type { FastPath, FastPathExits } from '../http-front.ts'
import type { V2Context } from './context.ts'
import { keyOfUrl, mergeForm, readsFormBody } from './form.ts'
import { isPlainKeyUrl, writeAnswer } from './plain-reads.ts'

const formType = 'application/x-www-form-urlencoded'
const writeMethods: ReadonlySet<string> = new Set(['PUT', 'POST', 'DELETE'])
const decimal = /^[0-9]+$/

export function plainWrites(ctx: V2Context): FastPath {
  return (req: IncomingMessage, res: ServerResponse, exits: FastPathExits): boolean => {
    const method = req.method
    const url = req.url
    if (method === undefined || !writeMethods.has(method) || url === undefined || !isPlainKeyUrl(url)) {
      return false
    }
    if (req.headers['transfer-encoding'] !== undefined) return false
    const length = req.headers['content-length']
    if (length === undefined || length === '0') {
      // With neither header the request has no body (Node's parser), as with a length of 0.
      answer(ctx, res, exits, method as V2Method, url, undefined)
      return true
    }
    // A DELETE's body is ignored (form.ts): reading it only to drop it is the route's job.
    if (!readsFormBody(method)) return false
    if (!decimal.test(length) || Number(length) > ctx.limits.requestBodyBytesMax) return false
    if (req.headers['content-type'] !== formType) return false
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
      answer(ctx, res, exits, method as V2Method, url, body.toString('utf8'))
    })
    // A client that goes away mid-body: Node ends the request with an error; nothing to answer.
    req.on('error', () => res.destroy())
    return true
  }
}

function answer(
  ctx: V2Context,
  res: ServerResponse,
  exits: FastPathExits,
  method: V2Method,
  url: string,
  body: string | undefined,
): void {
  let parsed: V2KeyRequest
  try {
    // etcd's request errors (NewRequestError) carry index 0, in the body and X-Etcd-Index.
    parsed = parseV2KeyRequest(method, keyOfUrl(url, 0), mergeForm(body, url), 0)
  } catch (error) {
    writeAnswer(res, ctx.failureAnswer(error, exits.unexpected))
    return
  }
  ctx
    .writeAnswer(parsed, exits.unexpected)
    .then((a) => writeAnswer(res, a))
    .catch((error: unknown) => {
      // Writing the answer threw (a bug): the body is read, so fastify cannot take the request.
      exits.unexpected(error)
      res.destroy()
    })
}
