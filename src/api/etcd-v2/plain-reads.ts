/**
 * Plain reads: the hot requests of the keys API answered before fastify (a fast path of HttpFront,
 * src/api/http-front.ts). An app reading its config does `GET /v2/keys/<key>`, with `quorum=true`
 * when it must see every acknowledged write, over and over; those requests are answered here with
 * the functions the keys route uses (keyOfUrl, mergeForm, parseV2KeyRequest, and V2Context's
 * needsBarrier, readAnswer and errorAnswer), so the answer is the
 * route's, without fastify's routing, hooks and reply object.
 *
 * Taken only when all of these hold, and declined (nothing written, nothing counted) otherwise:
 *   - the method is GET (HEAD, watches and writes go to the route) and the request has no body (a
 *     GET may carry a form the route would merge into its parameters);
 *   - the path is /v2/keys/ and then only unreserved characters, '/' and percent-escapes (no ';'
 *     or '#'); also no '//' and no dot segment: the route would read the same key from them
 *     (fastify's router does not rewrite URLs), but anything unusual is left to the route;
 *   - the query, if any, holds only `quorum`, `recursive` and `sorted`, with values the route
 *     accepts (parseV2KeyRequest is the judge);
 *   - a read without quorum succeeds: its errors (a missing key, a malformed escape) are answered
 *     by the route, with its own counting.
 * A quorum read is taken before its barrier, so its errors (the barrier's, or the read's after it)
 * are answered here, with the route's error answer; an unexpected error (a bug) is handed to fastify
 * instead, so the route logs it with the request, as it logs its own.
 * The route's invariants hold here too: the X-Etcd-Index of a read is the revision it saw, and every
 * answered read counts once in the store stats (getsSuccess or getsFail).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseV2KeyRequest, type V2KeyRequest } from '../../kv/v2-request.ts'
import type { FastPath, FastPathExits } from '../http-front.ts'
import type { V2Answer, V2Context } from './context.ts'
import { isUnexpected } from './errors.ts'
import { keyOfUrl, keysPrefix, mergeForm } from './form.ts'

/** /v2/keys/ followed by unreserved characters, sub-delimiters but ';', ':', '@', '/' and escapes. */
const plainKeyPath = /^\/v2\/keys\/(?:[A-Za-z0-9\-._~!$&'()*+,=:@/]|%[0-9A-Fa-f]{2})*$/
/** The query parameters a plain read may carry. */
const plainParameters: ReadonlySet<string> = new Set(['quorum', 'recursive', 'sorted'])
const noForm = {}

export function plainReads(ctx: V2Context): FastPath {
  return (req: IncomingMessage, res: ServerResponse, exits: FastPathExits): boolean => {
    const url = req.url
    if (req.method !== 'GET' || url === undefined || !isPlainKeyUrl(url)) return false
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      return false
    }
    let parsed: V2KeyRequest
    try {
      const form = url.includes('?') ? mergeForm(undefined, url) : noForm
      for (const name in form) if (!plainParameters.has(name)) return false
      parsed = parseV2KeyRequest('GET', keyOfUrl(url, 0), form, 0)
    } catch {
      return false
    }
    if (!ctx.needsBarrier(parsed)) {
      let answer: V2Answer
      try {
        answer = ctx.readAnswer(parsed)
      } catch {
        return false
      }
      writeAnswer(res, answer)
      return true
    }
    ctx.deps.store
      .readBarrier()
      .then(
        () => {
          let answer: V2Answer
          try {
            answer = ctx.readAnswer(parsed)
          } catch (error) {
            answerError(ctx, res, error, exits)
            return
          }
          writeAnswer(res, answer)
        },
        (error: unknown) => answerError(ctx, res, error, exits),
      )
      .catch((error: unknown) => exits.failed(error))
    return true
  }
}

function answerError(ctx: V2Context, res: ServerResponse, error: unknown, exits: FastPathExits): void {
  if (isUnexpected(error)) {
    exits.fallback()
    return
  }
  ctx.stats.countGet(false)
  writeAnswer(res, ctx.errorAnswer(error))
}

/**
 * Writes an answer as fastify writes the route's reply: header names lower-cased, in the route's
 * order, a JSON content type without a charset given `; charset=utf-8`, then content-length.
 */
export function writeAnswer(res: ServerResponse, answer: V2Answer): void {
  const flat: string[] = []
  for (const name in answer.headers) {
    const lower = name.toLowerCase()
    const value = answer.headers[name] as string
    flat.push(
      lower,
      lower === 'content-type' && !value.includes('charset') ? `${value}; charset=utf-8` : value,
    )
  }
  flat.push('content-length', String(Buffer.byteLength(answer.body)))
  res.writeHead(answer.status, flat)
  res.end(answer.body)
}

/** Whether the path of `url` is one the route reads exactly the key keyOfUrl reads from. */
export function isPlainKeyUrl(url: string): boolean {
  const queryAt = url.indexOf('?')
  const path = queryAt < 0 ? url : url.slice(0, queryAt)
  return (
    path.startsWith(`${keysPrefix}/`) &&
    plainKeyPath.test(path) &&
    !path.includes('//') &&
    !/\/\.\.?(\/|$)/.test(path)
  )
}
