/**
 * Bad input never breaks the etcd v2 surface: random methods, paths (with odd bytes, dots,
 * percent-escapes, hidden names), parameters (valid names with random values, random names) and
 * bodies sent to a real member always get an answer that is either a success or etcd's error body
 * ({errorCode, message, index}) with a 4xx status (5xx only for the documented 300 errors, which
 * this input must not cause); the server keeps answering afterwards.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiCluster, startApiCluster } from './api-harness.ts'

const paramNames = [
  'value',
  'ttl',
  'dir',
  'prevExist',
  'prevValue',
  'prevIndex',
  'recursive',
  'sorted',
  'waitIndex',
  'stream',
  'quorum',
  'refresh',
  'junk',
]
const oddValues = fc.oneof(
  fc.constantFrom('', 'true', 'false', 'T', '0', '1', '-1', '1e3', '9007199254740993', ' ', 'x'.repeat(300)),
  fc.string({ maxLength: 20 }),
  fc.nat().map(String),
)
const segment = fc.oneof(
  fc.constantFrom('a', 'b', '_h', '..', '.', '%2F', '%ZZ', '', 'dir', '%00', 'é'),
  fc.stringMatching(/^[A-Za-z0-9_.~-]{1,8}$/),
)
const path = fc.array(segment, { maxLength: 5 }).map((s) => `/fz/${s.join('/')}`)

function hasMalformedEscape(pathname: string): boolean {
  try {
    decodeURIComponent(pathname)
    return false
  } catch {
    return true
  }
}

describe('etcd v2 API under random input', () => {
  let cluster: ApiCluster
  let base: string

  beforeAll(async () => {
    cluster = await startApiCluster(1)
    await cluster.leader()
    base = cluster.members[0]!.url
  })
  afterAll(async () => {
    await cluster.stop()
  })

  it('answers every request with a success or an etcd error, and keeps answering', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH'),
        path,
        fc.dictionary(fc.constantFrom(...paramNames), oddValues, { maxKeys: 5 }),
        fc.dictionary(fc.constantFrom(...paramNames), oddValues, { maxKeys: 5 }),
        fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', undefined),
        async (method, key, query, form, contentType) => {
          // A watch would wait for an event: random requests never ask for one.
          const qs = new URLSearchParams(query).toString()
          const init: RequestInit = { method, signal: AbortSignal.timeout(5_000) }
          if (method !== 'GET' && method !== 'HEAD') {
            init.body =
              contentType === 'application/json' ? JSON.stringify(form) : new URLSearchParams(form).toString()
            if (contentType !== undefined) init.headers = { 'content-type': contentType }
          }
          const url = new URL(`${base}/v2/keys${key}${qs === '' ? '' : `?${qs}`}`)
          const response = await fetch(url, init)
          const text = await response.text()
          if (response.status === 405) return
          // The client resolves dot segments: `/v2/keys/a/../..` leaves the keys API (a plain 404,
          // or a 400 before any routing when the path holds a malformed escape, as Go's server does).
          if (!url.pathname.startsWith('/v2/keys')) {
            expect(response.status).toBe(hasMalformedEscape(url.pathname) ? 400 : 404)
            return
          }
          expect(response.status).toBeLessThan(500)
          if (method === 'HEAD') return
          const body = JSON.parse(text)
          if (response.status >= 400) {
            expect(body).toMatchObject({ errorCode: expect.any(Number), message: expect.any(String) })
            expect(typeof body.index).toBe('number')
          } else {
            expect(typeof body.action).toBe('string')
          }
        },
      ),
      {
        numRuns: 300,
        // Found by CI: a malformed escape in a path that dot segments carry outside the keys API.
        examples: [['GET', '/fz/../../%ZZ', {}, {}, 'application/x-www-form-urlencoded']],
      },
    )
    const health = await fetch(`${base}/health`)
    expect(await health.json()).toEqual({ health: 'true' })
  })

  it('refuses a value of 1.5 MiB + 1 with an etcd error and stays up', async () => {
    const response = await fetch(`${base}/v2/keys/fz/big`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `value=${'v'.repeat(1_572_864 + 1)}`,
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ errorCode: 209 })
    expect((await fetch(`${base}/v2/keys/fz`)).status).toBeLessThan(500)
  })
})
