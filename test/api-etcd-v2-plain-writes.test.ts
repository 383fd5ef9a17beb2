/**
 * Plain writes (src/api/etcd-v2/plain-writes.ts) answer exactly what the keys route answers: one
 * member behind its HttpFront, and a second fastify server on the same API (the same store) without
 * a front. Each case is sent to both over real HTTP, to its own key on each (`/w/f/...` through the
 * front, `/w/r/...` to the route, set up alike), so both writes start from the same state. Status,
 * raw headers (names, case, order) and body must be the same once the key's letter and the numbers
 * that count writes (indexes, the Raft index, lengths that follow from them, expirations) are
 * masked. The front's `answered` count shows which requests the fast path took.
 */
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type ApiCluster,
  type ApiMember,
  type RawAnswer,
  type RawBody,
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
  for (const side of ['f', 'r']) {
    const put = async (path: string, form: Record<string, string>) => {
      const res = await v2(member.url, 'PUT', `/v2/keys/w/${side}${path}`, form)
      expect(res.status, res.text).toBeLessThan(300)
    }
    await put('/a', { value: 'old' })
    await put('/gone', { value: 'x' })
    await put('/cas', { value: 'v1' })
    await put('/dir/x', { value: '1' })
    await put('/emptydir', { dir: 'true' })
    await put('/tree/a/b', { value: 'deep' })
    await put('/ttl', { value: 't', ttl: '1000' })
  }
})

afterAll(async () => {
  await routeOnly?.close()
  await cluster?.stop()
})

/** What differs between the two sides of a case by construction, masked. */
function mask(text: string): string {
  return text
    .replace(/\/w\/[fr]\b/g, '/w/S')
    .replace(/"(modifiedIndex|createdIndex|index)":\d+/g, '"$1":N')
    .replace(/"expiration":"[^"]*"/g, '"expiration":"E"')
    .replace(/"ttl":\d+/g, '"ttl":N')
    .replace(/\/w\/S\/q\/\d{20}/g, '/w/S/q/ORDERED')
}

/** Headers whose values count writes (indexes, and a length that follows from them). */
const counted: ReadonlySet<string> = new Set(['x-etcd-index', 'x-raft-index', 'content-length'])

async function raw(base: string, method: string, path: string, body?: RawBody): Promise<RawAnswer> {
  const answer = await rawRequest(base, method, path, body, counted)
  return { ...answer, body: mask(answer.body) }
}

/**
 * Sends one case to both servers, `{}` in the path being the side's letter; they must agree.
 * Returns whether the fast path answered, and the front's answer.
 */
async function same(
  method: string,
  path: string,
  body?: RawBody,
): Promise<{ fast: boolean; answer: RawAnswer }> {
  const before = member.front.answered
  const front = await raw(member.url, method, path.replace('{}', 'f'), body)
  const fast = member.front.answered > before
  const route = await raw(routeUrl, method, path.replace('{}', 'r'), body)
  expect(front, `${method} ${path}`).toEqual(route)
  return { fast, answer: front }
}

const form = (text: string): RawBody => ({ text })

describe('plain writes before fastify', () => {
  it.each([
    ['PUT', '/v2/keys/w/{}/new', form('value=fresh'), 201],
    ['PUT', '/v2/keys/w/{}/a', form('value=replaced'), 200],
    ['PUT', '/v2/keys/w/{}/sp%20ace', form('value=a+b%20c%C3%A9'), 201],
    ['PUT', '/v2/keys/w/{}/withttl', form('value=t&ttl=60'), 201],
    ['PUT', '/v2/keys/w/{}/newdir', form('dir=true'), 201],
    ['PUT', '/v2/keys/w/{}/cas', form('value=v2&prevValue=v1'), 200],
    ['PUT', '/v2/keys/w/{}/ttl', form('ttl=500&refresh=true&prevExist=true'), 200],
    ['PUT', '/v2/keys/w/{}/fromquery?value=q', undefined, 201],
    ['PUT', '/v2/keys/w/{}/both?value=query', form('value=body'), 201],
    ['PUT', '/v2/keys/w/{}/empty', form(''), 201],
    ['POST', '/v2/keys/w/{}/q', form('value=job'), 201],
    ['DELETE', '/v2/keys/w/{}/gone', undefined, 200],
    ['DELETE', '/v2/keys/w/{}/emptydir?dir=true', undefined, 200],
    ['DELETE', '/v2/keys/w/{}/tree?recursive=true', undefined, 200],
  ] as const)(
    '%s %s is answered by the fast path, as the route answers it',
    async (method, path, body, status) => {
      const { fast, answer } = await same(method, path, body)
      expect(answer.status, answer.body).toBe(status)
      expect(fast).toBe(true)
    },
  )

  it.each([
    ['PUT', '/v2/keys/w/{}/a', form('value=x&prevExist=false'), 412],
    ['PUT', '/v2/keys/w/{}/a', form('value=x&prevValue=nope'), 412],
    ['PUT', '/v2/keys/w/{}/a', form('value=x&prevIndex=abc'), 400],
    ['PUT', '/v2/keys/w/{}/a', form('value=x&ttl=soon'), 400],
    ['PUT', '/v2/keys/w/{}/a', form('value=%zz'), 400],
    ['PUT', '/v2/keys/w/{}/a', form('value=a;b'), 400],
    ['PUT', '/v2/keys/w/{}/a?ttl=%zz', form('value=x'), 400],
    ['PUT', '/v2/keys/w/{}/dir', form('value=over-a-dir'), 403],
    ['PUT', '/v2/keys/w/{}/a/under', form('value=x'), 400],
    ['PUT', '/v2/keys/w/{}/missing', form('ttl=5&refresh=true'), 404],
    ['PUT', '/v2/keys/', form('value=root'), 400],
    ['DELETE', '/v2/keys/w/{}/missing', undefined, 404],
    ['DELETE', '/v2/keys/w/{}/dir', undefined, 403],
  ] as const)(
    '%s %s with %j fails in the fast path as in the route (%i)',
    async (method, path, body, status) => {
      const { fast, answer } = await same(method, path, body)
      expect(answer.status, answer.body).toBe(status)
      expect(fast).toBe(true)
    },
  )

  it.each([
    [
      'a text body, which the route ignores',
      'PUT',
      '/v2/keys/w/{}/text',
      { text: 'value=x', type: 'text/plain' },
    ],
    [
      'a form type with a charset',
      'PUT',
      '/v2/keys/w/{}/cs',
      { text: 'value=x', type: 'application/x-www-form-urlencoded; charset=utf-8' },
    ],
    ['a chunked body', 'PUT', '/v2/keys/w/{}/chunked', { text: 'value=x', chunked: true }],
    ['an empty segment', 'PUT', '/v2/keys/w/{}//a', form('value=x')],
    ['a dot segment', 'PUT', '/v2/keys/w/{}/./b', form('value=x')],
    ['PATCH', 'PATCH', '/v2/keys/w/{}/a', form('value=x')],
  ] as const)('%s is left to the route', async (_what, method, path, body) => {
    const { fast } = await same(method, path, body)
    expect(fast).toBe(false)
  })

  it('a DELETE with a body is left to the route, which ignores the body as etcd does', async () => {
    const { fast, answer } = await same('DELETE', '/v2/keys/w/{}/cas', form('prevValue=nope'))
    expect(fast).toBe(false)
    expect(answer.status).toBe(200)
  })

  it('a body over requestBodyBytesMax is left to the route, which refuses it (413)', async () => {
    const text = `value=${'v'.repeat(1_600_000)}`
    const { fast, answer } = await same('PUT', '/v2/keys/w/{}/big', form(text))
    expect(fast).toBe(false)
    expect(answer.status).toBe(413)
  })

  it('counts each write once in the store stats, as the route does', async () => {
    const stats = async () => (await v2(member.url, 'GET', '/v2/stats/store')).json as Record<string, number>
    const before = await stats()
    expect((await same('PUT', '/v2/keys/w/{}/counted', form('value=1'))).fast).toBe(true)
    expect((await same('PUT', '/v2/keys/w/{}/counted', form('value=2&prevExist=false'))).fast).toBe(true)
    expect((await same('DELETE', '/v2/keys/w/{}/counted?prevValue=1', undefined)).fast).toBe(true)
    const after = await stats()
    const moved = Object.fromEntries(
      Object.keys(after)
        .filter((name) => name !== 'watchers' && after[name] !== before[name])
        .map((name) => [name, (after[name] ?? 0) - (before[name] ?? 0)]),
    )
    // One request of each on each server: a set, a failed create, a compare-and-delete.
    expect(moved).toEqual({ setsSuccess: 2, createFail: 2, compareAndDeleteSuccess: 2 })
  })

  it('the value written is the one read back, and X-Etcd-Index is the write revision', async () => {
    const before = member.front.answered
    const res = await v2(member.url, 'PUT', '/v2/keys/w/f/readback', { value: 'caf\u00e9 & more' })
    expect(member.front.answered).toBe(before + 1)
    expect(res.status).toBe(201)
    const node = (res.json as { node: { modifiedIndex: number } }).node
    expect(res.headers.get('x-etcd-index')).toBe(String(node.modifiedIndex))
    const read = await v2(member.url, 'GET', '/v2/keys/w/f/readback')
    expect((read.json as { node: { value: string } }).node.value).toBe('caf\u00e9 & more')
  })

  it('a client that leaves mid-body changes nothing and the server goes on answering', async () => {
    const url = new URL(member.url)
    const socket = connect(Number(url.port), url.hostname)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    const before = member.front.answered
    socket.write(
      'PUT /v2/keys/w/f/half HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
        'Content-Length: 100\r\n\r\nvalue=only-part',
    )
    // The fast path takes the request on its head, then waits for the rest of the body.
    while (member.front.answered === before) await new Promise((resolve) => setImmediate(resolve))
    socket.destroy()
    const read = await v2(member.url, 'GET', '/v2/keys/w/f/half')
    expect(read.status).toBe(404)
    const write = await v2(member.url, 'PUT', '/v2/keys/w/f/after', { value: 'ok' })
    expect(write.status).toBe(201)
  })
})
