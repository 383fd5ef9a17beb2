/**
 * Plain reads (src/api/etcd-v2/plain-reads.ts) answer exactly what the keys route answers: one
 * member behind its HttpFront, and a second fastify server on the same API without a front. Each
 * request goes to both over real HTTP; status, raw headers (names, case, order; Date aside) and body
 * must be the same. The front's `answered` count shows which requests the fast path took: every
 * read of an existing key with at most quorum, recursive and sorted, every quorum read (its errors
 * too, after the barrier or of the barrier), and nothing else (errors of reads without quorum,
 * other parameters, HEAD, bodies, odd paths).
 */
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isPlainKeyUrl } from '../src/api/etcd-v2/plain-reads.ts'
import {
  type ApiCluster,
  type ApiMember,
  type RawAnswer,
  rawRequest,
  startApiCluster,
  startRouteOnly,
  v2,
} from './api-harness.ts'

let cluster: ApiCluster
let member: ApiMember
let routeOnly: FastifyInstance
let routeUrl: string

beforeAll(async () => {
  cluster = await startApiCluster(1)
  member = await cluster.leader()
  ;({ app: routeOnly, url: routeUrl } = await startRouteOnly(member))
  const put = async (path: string, form: Record<string, string>) => {
    const res = await v2(member.url, 'PUT', path, form)
    expect(res.status, res.text).toBeLessThan(300)
  }
  await put('/v2/keys/a', { value: 'hello "quoted" \\ and \u00e9' })
  await put('/v2/keys/d/x', { value: '1' })
  await put('/v2/keys/d/y', { value: '2' })
  await put('/v2/keys/d/sub', { dir: 'true' })
  await put('/v2/keys/d/sub/z', { value: 'deep' })
  await put('/v2/keys/_hidden', { value: 'h' })
  await put('/v2/keys/sp ace', { value: 's' })
  await put('/v2/keys/\u00e9t\u00e9', { value: 'summer' })
  await put('/v2/keys/t', { value: 'ttl', ttl: '1000' })
  await put('/v2/keys/e', { value: '' })
})

afterAll(async () => {
  await routeOnly?.close()
  await cluster?.stop()
})

async function raw(base: string, method: string, path: string, body?: string): Promise<RawAnswer> {
  const answer = await rawRequest(base, method, path, body === undefined ? undefined : { text: body })
  // ttl counts whole seconds down: two requests a few ms apart may straddle one.
  return { ...answer, body: answer.body.replace(/"ttl":\d+/g, '"ttl":N') }
}

/** Sends the request to both servers; they must agree. Returns whether the fast path answered. */
async function same(
  method: string,
  path: string,
  body?: string,
): Promise<{ fast: boolean; answer: RawAnswer }> {
  const before = member.front.answered
  const front = await raw(member.url, method, path, body)
  const fast = member.front.answered > before
  const route = await raw(routeUrl, method, path, body)
  expect(front, `${method} ${path}`).toEqual(route)
  return { fast, answer: front }
}

describe('plain reads before fastify', () => {
  it.each([
    '/v2/keys/a',
    '/v2/keys/d',
    '/v2/keys/d/',
    '/v2/keys/',
    '/v2/keys/d/x',
    '/v2/keys/d/sub',
    '/v2/keys/_hidden',
    '/v2/keys/sp%20ace',
    '/v2/keys/%C3%A9t%C3%A9',
    '/v2/keys/t',
    '/v2/keys/e',
    '/v2/keys/a?quorum=true',
    '/v2/keys/d?recursive=true',
    '/v2/keys/d?recursive=true&sorted=true&quorum=true',
    '/v2/keys/d?quorum=false&recursive=false&sorted=false',
  ])('GET %s is answered by the fast path, as the route answers it', async (path) => {
    const { fast, answer } = await same('GET', path)
    expect(answer.status).toBe(200)
    expect(fast).toBe(true)
  })

  it.each([
    ['/v2/keys/missing?quorum=true', 404],
    ['/v2/keys/a/under?quorum=true', 400],
  ] as const)(
    'GET %s: a quorum read failing after its barrier is answered by the fast path (%i)',
    async (path, status) => {
      const { fast, answer } = await same('GET', path)
      expect(answer.status).toBe(status)
      expect(fast).toBe(true)
    },
  )

  it.each([
    ['GET', '/v2/keys/missing', 404],
    ['GET', '/v2/keys/a/under', 400],
    ['GET', '/v2/keys/missing?recursive=true', 404],
    ['GET', '/v2/keys/a?quorum=maybe', 400],
    ['GET', '/v2/keys/a?wait=false', 200],
    ['GET', '/v2/keys/a?quorum=true&value=x', 200],
    ['GET', '/v2/keys/bad%zz', 400],
    ['GET', '/v2/keys//a', 200],
    ['GET', '/v2/keys/./a', 200],
    ['GET', '/v2/keys/d/../a', 200],
    ['GET', '/v2/keys/a;x', 404],
    ['GET', '/v2/keys/a#x', 404],
    ['GET', '/v2/keys', 200],
    ['HEAD', '/v2/keys/a', 200],
  ] as const)('%s %s is left to the route (%i)', async (method, path, status) => {
    const { fast, answer } = await same(method, path)
    expect(answer.status).toBe(status)
    expect(fast).toBe(false)
  })

  it('a GET with a form body is left to the route, which ignores the body as etcd does', async () => {
    const { fast, answer } = await same('GET', '/v2/keys/d', 'recursive=true')
    expect(fast).toBe(false)
    expect(answer.body).toContain('"key":"/d/x"')
    expect(answer.body).not.toContain('"key":"/d/sub/z"')
  })

  it.each([
    ['a read', '/v2/keys/a', 2, 0],
    ['a failed quorum read', '/v2/keys/nothing?quorum=true', 0, 2],
  ] as const)('counts %s once in the store stats, as the route does', async (_what, path, success, fail) => {
    const stats = async () =>
      (await v2(member.url, 'GET', '/v2/stats/store')).json as { getsSuccess: number; getsFail: number }
    const before = await stats()
    expect((await same('GET', path)).fast).toBe(true)
    const after = await stats()
    // One request on each server: the fast path's and the route's.
    expect(after.getsSuccess - before.getsSuccess).toBe(success)
    expect(after.getsFail - before.getsFail).toBe(fail)
  })

  it('takes only paths the route would read the same key from (the query is judged apart)', () => {
    expect(isPlainKeyUrl('/v2/keys/a/b-c_d.e~f')).toBe(true)
    expect(isPlainKeyUrl('/v2/keys/%2Fslash')).toBe(true)
    expect(isPlainKeyUrl('/v2/keys/.hidden')).toBe(true)
    expect(isPlainKeyUrl('/v2/keys/a?quorum=true')).toBe(true)
    for (const url of [
      '/v2/keys',
      '/v2/keysx',
      '/v2/keys/a;x?quorum=true',
      '/v2/keys//a?quorum=true',
      '/v2/keys/a b',
      '/v2/keys/%2',
      '/v2/keys/a/..',
    ]) {
      expect(isPlainKeyUrl(url), url).toBe(false)
    }
  })

  // Last: it stops the member's Raft node.
  it('a quorum read whose barrier fails (the node stopped) gets the route error answer from the fast path', async () => {
    await member.node.stop()
    const { fast, answer } = await same('GET', '/v2/keys/a?quorum=true')
    expect(fast).toBe(true)
    expect(answer.status).toBeGreaterThanOrEqual(500)
  })
})
