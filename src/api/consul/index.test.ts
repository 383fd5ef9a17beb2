/**
 * Proves what buildConsulApi adds around the routes, over real HTTP:
 * - bodies of any content type (JSON, text, none) reach the routes as raw bytes, while a route
 *   registered outside the plugin keeps fastify's JSON parser (the context is encapsulated);
 * - an unknown /v1 path is a plain-text 404, other paths keep the outer 404; a body over
 *   consulBodyBytesMax is a 413 in text;
 * - fuzz: random query strings on every catalog and health read answer 200 or a 4xx with a
 *   text body, never a 500, and change nothing.
 */

import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, fetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { checkRecord, nodeRecord, serviceRecord } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { buildConsulApi, consulBodyBytesMax } from './index.ts'
import { agentNotUnderTest, testDeps } from './test-support.ts'

interface Harness {
  base: string
  dispatcher: Agent
  store: LocalKvStore
  catalog: CatalogState
  app: FastifyInstance
}

const open: Harness[] = []

async function start(): Promise<Harness> {
  const store = new LocalKvStore()
  const catalog = new CatalogState()
  const feed = startCatalogFeed(store, catalog)
  await feed.ready
  const writer = new CatalogWriter(store)
  await writer.register({
    node: nodeRecord({ Node: 'n1', Address: '10.0.0.1', Meta: { zone: 'a' } }),
    services: [serviceRecord({ ID: 'web-1', Service: 'web', Tags: ['v1'] })],
    checks: [checkRecord({ CheckID: 'web-1', ServiceID: 'web-1', ServiceName: 'web', Status: 'passing' })],
  })
  const deps = testDeps({
    store,
    catalog,
    writer,
    agent: agentNotUnderTest,
    random: () => 0,
  })
  const app = Fastify()
  await app.register(buildConsulApi(deps))
  app.post('/v2/echo', async (request) => ({ isBuffer: Buffer.isBuffer(request.body), body: request.body }))
  app.addHook('onClose', async () => feed.stop())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const h = { base: `http://127.0.0.1:${address.port}`, dispatcher: new Agent(), store, catalog, app }
  open.push(h)
  return h
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.dispatcher.destroy()
    await h.app.close()
  }
})

async function call(h: Harness, method: string, path: string, body?: string | Buffer, type?: string) {
  const res = await fetch(h.base + path, {
    method,
    dispatcher: h.dispatcher,
    headers: type === undefined ? {} : { 'content-type': type },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(5_000),
  })
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
}

describe('buildConsulApi', () => {
  it('reads bodies of any content type as raw bytes; routes outside keep their JSON parser', async () => {
    const h = await start()
    const body = JSON.stringify({ Node: 'n2', Address: '10.0.0.2' })
    for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const res = await call(h, 'PUT', '/v1/catalog/register', body, type)
      expect([type, res.status, res.text]).toEqual([type, 200, 'true'])
    }
    const outside = await call(h, 'POST', '/v2/echo', '{"a":1}', 'application/json')
    expect(JSON.parse(outside.text)).toEqual({ isBuffer: false, body: { a: 1 } })
  })

  it('answers an unknown /v1 path with a text 404; other paths keep the outer 404', async () => {
    const h = await start()
    const unknown = await call(h, 'GET', '/v1/nope/nothing')
    expect([unknown.status, unknown.type, unknown.text]).toEqual([
      404,
      'text/plain; charset=utf-8',
      '404 page not found\n',
    ])
    const outer = await call(h, 'GET', '/v2/nope')
    expect([outer.status, outer.type]).toEqual([404, 'application/json; charset=utf-8'])
  })

  it('refuses a body over consulBodyBytesMax with a text 413, changing nothing', async () => {
    const h = await start()
    const before = h.store.stateMachine.revision
    const huge = Buffer.alloc(consulBodyBytesMax + 1, 0x20)
    const res = await call(h, 'PUT', '/v1/catalog/register', huge, 'application/json')
    expect([res.status, res.type]).toEqual([413, 'text/plain; charset=utf-8'])
    expect(h.store.stateMachine.revision).toBe(before)
  })

  it('fuzz: random query strings on the reads answer 200 or a 4xx with text, never a 500', async () => {
    const h = await start()
    const before = h.store.stateMachine.revision
    const paths = fc.constantFrom(
      '/v1/catalog/nodes',
      '/v1/catalog/services',
      '/v1/catalog/service/web',
      '/v1/catalog/node/n1',
      '/v1/catalog/node-services/n1',
      '/v1/health/service/web',
      '/v1/health/checks/web',
      '/v1/health/node/n1',
      '/v1/health/state/any',
      '/v1/health/state/critical',
      '/v1/catalog/datacenters',
      '/v1/status/leader',
    )
    const name = fc.constantFrom(
      'index',
      'wait',
      'stale',
      'consistent',
      'filter',
      'tag',
      'node-meta',
      'passing',
      'dc',
      'near',
      'cached',
    )
    const value = fc.oneof(
      fc.constantFrom('', '0', '1', '2', '99999999999999999999', '-1', '1e3', 'abc', '10ms', '1ms', 'x:y'),
      fc.constantFrom('dc1', 'DC1', 'true', 'false', 'zone:a', 'Node == "n1"', 'ServiceTags is empty', '((('),
      fc.string({ maxLength: 40 }),
    )
    const query = fc.array(fc.tuple(name, value), { maxLength: 6 }).map((pairs) => {
      // A valid index at or below the catalog's revision blocks for as long as the wait read says,
      // up to blockingWaitMsMax (10 minutes): a drawn wait of "9" or "99999999999999999999" beside
      // a drawn index=1 outlived the 5 s request timeout (seed 23384571). So a query with an index
      // gets a 20 ms wait first (of a repeated parameter the first is read); drawn waits are parsed
      // where no index makes the query block.
      if (pairs.some(([key]) => key === 'index')) pairs.unshift(['wait', '20ms'])
      return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
    })
    await fc.assert(
      fc.asyncProperty(paths, query, async (path, q) => {
        const res = await call(h, 'GET', `${path}?${q}`)
        if (res.status !== 200) {
          expect([path, q, res.status >= 400 && res.status < 500, res.type]).toEqual([
            path,
            q,
            true,
            'text/plain; charset=utf-8',
          ])
          expect(res.text.length).toBeGreaterThan(0)
        }
      }),
      { numRuns: 400 },
    )
    expect(h.store.stateMachine.revision).toBe(before)
    expect(h.catalog.waiterCount).toBe(0)
  })
})
