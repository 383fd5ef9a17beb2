/**
 * Proves the server side of the internal store API over real sockets (a fastify app on port 0 with
 * registerStoreRoutes over a LocalKvStore): each endpoint answers the store's result as JSON; every
 * malformed body or query is 400 KV_COMMAND_INVALID (413 past bodyBytesMax) and changes nothing (the
 * state machine's snapshot is byte-equal before and after); typed errors carry code, cause, index
 * and oldestIndex; a watch streams NDJSON lines (events, the live mark, heartbeats whose revision is
 * a progress mark) and ends with a cancel line when the hub or the server ends it; a client that
 * stops reading is cancelled (KV_WATCHER_SLOW), not buffered; a client that goes away releases its
 * watcher; open streams are bounded.
 */
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, type Dispatcher, request as undiciRequest } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { kvLimits } from '../../kv/limits.ts'
import type { LocalKvStore } from '../../kv/local-kv-store.ts'
import { storeApiPrefix } from '../../kv/store-wire.ts'
import { newTestStore } from '../../kv/test-support.ts'
import { registerStoreRoutes, type StoreApiLimits } from './index.ts'

interface TestServer {
  app: FastifyInstance
  url: string
  closing: AbortController
}

const servers: TestServer[] = []
/** The tests' own client connections, destroyed before the servers close (so close never waits on them). */
let agent = new Agent()

afterEach(async () => {
  await agent.destroy()
  agent = new Agent()
  for (const server of servers.splice(0)) await server.app.close()
})

function request(
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> = { method: 'GET' },
) {
  return undiciRequest(url, { ...options, dispatcher: agent })
}

async function startServer(store: LocalKvStore, limits: Partial<StoreApiLimits> = {}): Promise<TestServer> {
  const app = Fastify()
  const closing = new AbortController()
  registerStoreRoutes(app, store, closing.signal, limits)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const server = { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, closing }
  servers.push(server)
  return server
}

async function post(
  url: string,
  path: string,
  body: unknown,
  contentType = 'application/json',
): Promise<{ status: number; body: unknown }> {
  const response = await request(`${url}${storeApiPrefix}/${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await response.body.text()
  return { status: response.statusCode, body: text === '' ? undefined : JSON.parse(text) }
}

/** Reads NDJSON lines from a response body until `done(lines)` or the body ends. */
async function readLines(
  body: Dispatcher.ResponseData['body'],
  done: (lines: Record<string, unknown>[]) => boolean = () => false,
): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = []
  let partial = ''
  for await (const chunk of body) {
    partial += (chunk as Buffer).toString('utf8')
    let nl = partial.indexOf('\n')
    while (nl !== -1) {
      lines.push(JSON.parse(partial.slice(0, nl)))
      partial = partial.slice(nl + 1)
      nl = partial.indexOf('\n')
    }
    if (done(lines)) {
      body.on('error', () => {})
      body.destroy()
      break
    }
  }
  return lines
}

async function until(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Hangs up on a response (undici reports the abort on the body: expected here). */
function hangUp(response: Dispatcher.ResponseData): void {
  response.body.on('error', () => {})
  response.body.destroy()
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('calls', () => {
  it('each endpoint answers what the store answers, as JSON', async () => {
    const { store } = newTestStore()
    const { url } = await startServer(store)
    expect(await post(url, 'put', { key: '/a', value: '1' })).toEqual({ status: 200, body: { revision: 1 } })
    const ranged = await post(url, 'range', { key: '/', rangeEnd: '\0', serializable: true })
    expect(ranged).toEqual({ status: 200, body: await store.range({ key: '/', rangeEnd: '\0' }) })
    const granted = await post(url, 'lease/grant', { ttlMs: 60_000 })
    expect(granted.status).toBe(200)
    const id = (granted.body as { id: number }).id
    expect((await post(url, 'lease/ttl', { id })).body).toEqual({ lease: await store.leaseTimeToLive(id) })
    expect((await post(url, 'lease/ttl', { id: 999 })).body).toEqual({ lease: null })
    expect((await post(url, 'lease/keepalive', { id })).status).toBe(200)
    const txn = await post(url, 'txn', {
      compare: [{ key: '/a', target: 'value', result: 'equal', value: '1' }],
      success: [{ type: 'put', key: '/b', value: '2', lease: id }],
    })
    expect(txn.body).toMatchObject({ succeeded: true, revision: 2 })
    expect((await post(url, 'lease/revoke', { id })).body).toEqual({ revision: 3, deleted: 1 })
    expect((await post(url, 'delete', { key: '/a', prevKv: true })).body).toMatchObject({
      revision: 4,
      deleted: 1,
    })
  })

  it('typed errors carry code, message, cause and index with a matching status', async () => {
    const { store } = newTestStore()
    const { url } = await startServer(store)
    await store.put({ key: '/a', value: '1' })
    expect(await post(url, 'lease/keepalive', { id: 42 })).toEqual({
      status: 404,
      body: {
        code: 'KV_LEASE_NOT_FOUND',
        message: 'the lease does not exist (it expired or was revoked): 42',
        cause: '42',
        index: 1,
      },
    })
    const duplicate = await post(url, 'txn', {
      success: [
        { type: 'put', key: '/x', value: '1' },
        { type: 'put', key: '/x', value: '2' },
      ],
    })
    expect(duplicate).toMatchObject({ status: 400, body: { code: 'KV_TXN_DUPLICATE_KEY' } })
  })
})

describe('bad input is 400 and changes nothing', () => {
  const cases: [string, string, unknown, string?][] = [
    ['put', 'not JSON', '{"key":', undefined],
    ['put', 'an array', '[1,2]', undefined],
    ['put', 'null', 'null', undefined],
    ['put', 'a text body', 'key=/a&value=1', 'text/plain'],
    ['put', 'no value', { key: '/a' }],
    ['put', 'a number value', { key: '/a', value: 1 }],
    ['put', 'a number key', { key: 1, value: 'v' }],
    ['put', 'an unknown field', { key: '/a', value: 'v', ttl: 5 }],
    ['put', 'a null field', { key: '/a', value: 'v', lease: null }],
    ['put', 'a string lease', { key: '/a', value: 'v', lease: '1' }],
    ['put', 'a fractional lease', { key: '/a', value: 'v', lease: 1.5 }],
    ['put', 'prevKv not boolean', { key: '/a', value: 'v', prevKv: 'yes' }],
    ['put', 'a __proto__ field', '{"key":"/a","value":"v","__proto__":{"x":1}}'],
    ['delete', 'a number rangeEnd', { key: '/a', rangeEnd: 5 }],
    ['range', 'a fractional limit', { key: '/a', limit: 1.5 }],
    ['range', 'serializable not boolean', { key: '/a', serializable: 1 }],
    ['txn', 'compare not a list', { compare: {} }],
    ['txn', 'a bad compare target', { compare: [{ key: '/a', target: 'size', result: 'equal', value: 1 }] }],
    [
      'txn',
      'a compare value object',
      { compare: [{ key: '/a', target: 'value', result: 'equal', value: {} }] },
    ],
    ['txn', 'an op of unknown type', { success: [{ type: 'get', key: '/a' }] }],
    ['txn', 'an op with a foreign field', { success: [{ type: 'range', key: '/a', value: 'x' }] }],
    ['txn', 'an op that is not an object', { success: ['put'] }],
    ['lease/grant', 'a string TTL', { ttlMs: '10' }],
    ['lease/grant', 'no TTL', {}],
    ['lease/keepalive', 'no id', {}],
    ['lease/revoke', 'a string id', { id: 'x' }],
    ['lease/ttl', 'serializable not boolean', { id: 1, serializable: 'no' }],
  ]

  it.each(cases)('%s with %s', async (path, _what, body, contentType) => {
    const { store, sm } = newTestStore()
    await store.put({ key: '/a', value: '1' })
    await store.leaseGrant({ lease: 1, ttlMs: 60_000 })
    const { url } = await startServer(store)
    const before = sm.snapshot()
    const answer = await post(url, path, body, contentType)
    expect(answer.status).toBe(400)
    expect(answer.body).toMatchObject({ code: 'KV_COMMAND_INVALID', index: 0 })
    expect(Buffer.from(sm.snapshot()).equals(Buffer.from(before))).toBe(true)
  })

  it('a body over bodyBytesMax is 413 KV_VALUE_TOO_LARGE, before it is parsed', async () => {
    const { store, sm } = newTestStore()
    const { url } = await startServer(store, { bodyBytesMax: 1024 })
    const answer = await post(url, 'put', { key: '/a', value: 'x'.repeat(2048) })
    expect(answer).toMatchObject({ status: 413, body: { code: 'KV_VALUE_TOO_LARGE' } })
    expect(sm.revision).toBe(0)
  })

  it('the default body limit lets a too-large value reach the kv layer, which refuses it', async () => {
    const { store, sm } = newTestStore()
    const { url } = await startServer(store)
    const answer = await post(url, 'put', { key: '/a', value: 'x'.repeat(kvLimits.valueBytesMax + 1) })
    expect(answer).toMatchObject({ status: 400, body: { code: 'KV_VALUE_TOO_LARGE' } })
    expect(sm.revision).toBe(0)
  })

  it('an unknown endpoint is 404 in the same shape', async () => {
    const { store } = newTestStore()
    const { url } = await startServer(store)
    expect(await post(url, 'compact', { revision: 1 })).toMatchObject({
      status: 404,
      body: { code: 'KV_COMMAND_INVALID' },
    })
  })

  it.each([
    ['no key', ''],
    ['a bad flag', 'key=/a&recursive=yes'],
    ['a negative revision', 'key=/a&sinceRevision=-1'],
    ['a fractional revision', 'key=/a&sinceRevision=1.5'],
    ['an unknown parameter', 'key=/a&wait=true'],
    ['a repeated key', 'key=/a&key=/b'],
  ])('a watch with %s', async (_what, query) => {
    const { store, sm } = newTestStore()
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?${query}`)
    expect(response.statusCode).toBe(400)
    expect(await response.body.json()).toMatchObject({ code: 'KV_COMMAND_INVALID' })
    expect(sm.watcherCount).toBe(0)
  })
})

describe('watch streams', () => {
  it('streams events, the live mark and heartbeats carrying a progress revision', async () => {
    const { store } = newTestStore()
    await store.put({ key: '/w/old', value: '0' })
    const { url } = await startServer(store, { heartbeatMs: 20 })
    const response = await request(`${url}${storeApiPrefix}/watch?key=/w&recursive=true&sinceRevision=1`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/x-ndjson')
    expect(response.headers['x-cairn-start-revision']).toBe('1')
    expect(response.headers['x-cairn-since-revision']).toBe('1')
    await store.txn({
      compare: [],
      success: [
        { type: 'put', key: '/w/a', value: '1' },
        { type: 'put', key: '/w/b', value: '2' },
      ],
      failure: [],
    })
    await store.put({ key: '/elsewhere', value: 'x' })
    const lines = await readLines(response.body, (seen) =>
      seen.some((line) => (line.heartbeat as { revision: number } | undefined)?.revision === 3),
    )
    const events = lines.filter((line) => 'action' in line)
    expect(events.map((e) => [e.action, e.revision, (e.node as { key: string }).key])).toEqual([
      ['set', 1, '/w/old'],
      ['set', 2, '/w/a'],
      ['set', 2, '/w/b'],
    ])
    expect(events[1]).toEqual({
      action: 'set',
      revision: 2,
      node: { key: '/w/a', value: '1', createdIndex: 2, modifiedIndex: 2 },
      nowMs: 1_700_000_000_000,
    })
    expect(lines.findIndex((line) => line.status === 'live')).toBeGreaterThan(0)
  })

  it('a one-shot watch (stream=false) ends after its event', async () => {
    const { store } = newTestStore()
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/k&stream=false`)
    await store.put({ key: '/k', value: 'v' })
    const lines = await readLines(response.body)
    expect(lines.filter((line) => 'action' in line).map((e) => e.revision)).toEqual([1])
  })

  it('a compacted sinceRevision is 410 KV_EVENT_INDEX_CLEARED with the oldest index', async () => {
    const { store } = newTestStore({ historyRevisionsMax: 3 })
    for (let i = 0; i < 10; i++) await store.put({ key: '/k', value: `${i}` })
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/k&sinceRevision=2`)
    expect(response.statusCode).toBe(410)
    expect(await response.body.json()).toEqual({
      code: 'KV_EVENT_INDEX_CLEARED',
      message:
        'the event in the requested index is outdated and cleared: the requested history has been cleared [8/2]',
      cause: 'the requested history has been cleared [8/2]',
      index: 10,
      oldestIndex: 8,
    })
  })

  it('a client that goes away releases its watcher', async () => {
    const { store, sm } = newTestStore()
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/k`)
    expect(sm.watcherCount).toBe(1)
    hangUp(response)
    await until(() => sm.watcherCount === 0, 'the watcher to be cancelled')
  })

  it('closing ends every stream with KV_WATCHER_CLEARED and refuses new watches', async () => {
    const { store, sm } = newTestStore()
    const { url, closing } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/k`)
    closing.abort()
    const lines = await readLines(response.body)
    expect(lines.at(-1)).toMatchObject({ canceled: { code: 'KV_WATCHER_CLEARED' } })
    expect(sm.watcherCount).toBe(0)
    const refused = await request(`${url}${storeApiPrefix}/watch?key=/k`)
    expect(refused.statusCode).toBe(503)
    expect(await refused.body.json()).toMatchObject({ code: 'KV_WATCHER_CLEARED' })
  })

  it('closing the app (without the signal) also ends every stream with KV_WATCHER_CLEARED', async () => {
    const { store, sm } = newTestStore()
    const server = await startServer(store)
    servers.splice(servers.indexOf(server), 1)
    const response = await request(`${server.url}${storeApiPrefix}/watch?key=/k`)
    const closed = server.app.close()
    const lines = await readLines(response.body)
    await closed
    expect(lines.at(-1)).toMatchObject({ canceled: { code: 'KV_WATCHER_CLEARED' } })
    expect(sm.watcherCount).toBe(0)
  })

  it('the hub cancelling a watcher ends its stream with the same typed error', async () => {
    const { store, sm } = newTestStore()
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/k`)
    sm.closeWatchers()
    const lines = await readLines(response.body)
    expect(lines.at(-1)).toEqual({
      canceled: {
        code: 'KV_WATCHER_CLEARED',
        message: 'the watcher was cleared (the store is shutting down): the store is closed',
        cause: 'the store is closed',
        index: 0,
      },
    })
  })

  it('open streams are bounded by watchStreamsMax (503 KV_WATCHERS_MAX)', async () => {
    const { store } = newTestStore()
    const { url } = await startServer(store, { watchStreamsMax: 2 })
    const open = [
      await request(`${url}${storeApiPrefix}/watch?key=/a`),
      await request(`${url}${storeApiPrefix}/watch?key=/b`),
    ]
    const refused = await request(`${url}${storeApiPrefix}/watch?key=/c`)
    expect(refused.statusCode).toBe(503)
    expect(await refused.body.json()).toMatchObject({ code: 'KV_WATCHERS_MAX' })
    for (const response of open) hangUp(response)
  })

  it('a client that stops reading is cancelled as too slow, not buffered', async () => {
    const { store, sm } = newTestStore({ watcherEventsMax: 8 })
    const { url } = await startServer(store)
    const response = await request(`${url}${storeApiPrefix}/watch?key=/s&recursive=true`)
    // The body is not read: undici stops reading the socket, the server's socket stops draining.
    const value = 'x'.repeat(256 * 1024)
    let puts = 0
    while (sm.watcherCount > 0) {
      if (puts >= 2_000) throw new Error('the slow watcher was never cancelled')
      await store.put({ key: `/s/${puts++ % 16}`, value })
      await turn() // lets the stream's pump write what the watcher took
    }
    const lines = await readLines(response.body)
    const events = lines.filter((line) => 'action' in line)
    expect(events.length).toBeLessThan(puts)
    expect(events.map((e) => e.revision)).toEqual(events.map((_, i) => i + 1))
    expect(lines.at(-1)).toMatchObject({ canceled: { code: 'KV_WATCHER_SLOW' } })
  })
})
