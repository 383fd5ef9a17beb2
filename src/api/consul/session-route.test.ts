/**
 * Proves the Consul session endpoints over real HTTP against an in-process store: Consul's
 * defaults and JSON shape, info/list/node (and blocking on them), idempotent destroy, renew (404
 * once gone), the validation Consul does (TTL range, Behavior, LockDelay in seconds or
 * nanoseconds, a registered node) plus Cairn's refusal of checks it cannot watch yet, TTL expiry
 * and renewal on a fake clock, sessions bound to a node's machine lease (they end when the agent's
 * lease does, and their destroy leaves the machine alone), and lock-delay learned from the store
 * watch when a session ends without this agent (lease revoked directly).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeRecord } from '../../catalog/records.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { KvStateMachine } from '../../kv/state-machine.ts'
import { FakeClock } from '../../kv/test-support.ts'
import type { ConsulApiDeps } from './deps.ts'
import { registerKvRoutes } from './kv-route.ts'
import { registerSessionRoutes } from './session-route.ts'
import { testDeps } from './test-support.ts'

interface Api {
  app: FastifyInstance
  store: LocalKvStore
  deps: ConsulApiDeps
  clock: FakeClock
  url: string
  close(): Promise<void>
}

const opened: Api[] = []
afterEach(async () => {
  for (const api of opened.splice(0)) await api.close()
})

async function startApi(): Promise<Api> {
  const clock = new FakeClock()
  const store = new LocalKvStore(new KvStateMachine(), () => clock.nowMs)
  const deps = testDeps({
    store,
    clock: () => clock.nowMs,
  })
  const closing = new AbortController()
  const app = Fastify()
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  registerKvRoutes(app, deps, closing.signal)
  registerSessionRoutes(app, deps, closing.signal)
  await deps.writer.register({ node: nodeRecord({ Node: 'n1', Address: '127.0.0.1' }) })
  await deps.writer.register({ node: nodeRecord({ Node: 'Web-2', Address: '127.0.0.2' }) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const api = {
    app,
    store,
    deps,
    clock,
    url,
    close: async () => {
      closing.abort()
      await app.close()
    },
  }
  opened.push(api)
  return api
}

async function call(api: Api, method: string, path: string, body?: string) {
  const res = await fetch(api.url + path, { method, ...(body === undefined ? {} : { body }) })
  const text = await res.text()
  return {
    status: res.status,
    text,
    index: Number(res.headers.get('x-consul-index')),
    json: () => JSON.parse(text),
  }
}

async function create(api: Api, body?: Record<string, unknown>): Promise<string> {
  const res = await call(
    api,
    'PUT',
    '/v1/session/create',
    body === undefined ? undefined : JSON.stringify(body),
  )
  expect(res.status, res.text).toBe(200)
  return res.json().ID as string
}

async function info(api: Api, id: string): Promise<Record<string, unknown>[]> {
  const res = await call(api, 'GET', `/v1/session/info/${id}`)
  expect(res.status).toBe(200)
  return res.json()
}

describe('sessions', () => {
  it("creates with Consul's defaults and shows them in info, list and node", async () => {
    const api = await startApi()
    const id = await create(api)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    const [s] = await info(api, id)
    expect(s).toEqual({
      ID: id,
      Name: '',
      Node: 'n1',
      LockDelay: 15e9,
      Behavior: 'release',
      TTL: '',
      NodeChecks: ['serfHealth'],
      ServiceChecks: null,
      CreateIndex: s?.CreateIndex,
      ModifyIndex: s?.CreateIndex,
    })
    const other = await create(api, {
      Node: 'web-2',
      Name: 'db-lock',
      Behavior: 'delete',
      TTL: '30s',
      NodeChecks: [],
    })
    const list = (await call(api, 'GET', '/v1/session/list')).json() as { ID: string }[]
    expect(list.map((x) => x.ID)).toEqual([id, other].sort())
    const onNode = (await call(api, 'GET', '/v1/session/node/WEB-2')).json() as Record<string, unknown>[]
    expect(onNode).toEqual([
      expect.objectContaining({ ID: other, Name: 'db-lock', Behavior: 'delete', TTL: '30s', NodeChecks: [] }),
    ])
    expect(await info(api, '00000000-0000-4000-8000-000000000000')).toEqual([])
    expect(await info(api, 'not-a-uuid')).toEqual([])
    expect((await call(api, 'GET', '/v1/session/info/')).status).toBe(400)
  })

  it('destroy is idempotent; renew answers 404 once the session is gone', async () => {
    const api = await startApi()
    const id = await create(api, { TTL: '10s' })
    const renewed = await call(api, 'PUT', `/v1/session/renew/${id}`)
    expect(renewed.status).toBe(200)
    expect(renewed.json()).toEqual([expect.objectContaining({ ID: id, TTL: '10s' })])
    expect((await call(api, 'PUT', `/v1/session/destroy/${id}`)).text).toBe('true')
    expect((await call(api, 'PUT', `/v1/session/destroy/${id}`)).text).toBe('true')
    expect((await call(api, 'PUT', '/v1/session/destroy/whatever')).text).toBe('true')
    const gone = await call(api, 'PUT', `/v1/session/renew/${id}`)
    expect(gone.status).toBe(404)
    expect(gone.text).toBe(`Session id '${id}' not found`)
    expect(await info(api, id)).toEqual([])
  })

  it('validates the body as Consul does, and refuses checks it cannot watch', async () => {
    const api = await startApi()
    const refused: [unknown, RegExp][] = [
      [{ TTL: '5s' }, /Invalid Session TTL '5s'/],
      [{ TTL: '86401s' }, /Invalid Session TTL/],
      [{ TTL: 'soon' }, /Session TTL 'soon' invalid/],
      [{ TTL: 30 }, /TTL must be a duration string/],
      [{ Behavior: 'explode' }, /Invalid Behavior setting 'explode'/],
      [{ Node: 'nowhere' }, /Missing node registration: nowhere/],
      [{ Node: '' }, /Node is required/],
      [{ Name: 'x'.repeat(300) }, /Name is longer than 256 bytes/],
      [{ NodeChecks: ['service:web'] }, /not supported yet/],
      [{ Checks: 'serfHealth' }, /must be a list/],
      [{ ServiceChecks: [{ ID: 'web' }] }, /ServiceChecks are not supported yet/],
      [{ LockDelay: 'later' }, /LockDelay/],
      [{ LockDelay: -1 }, /LockDelay/],
      [[1, 2], /body must be a JSON object/],
    ]
    for (const [body, message] of refused) {
      const res = await call(api, 'PUT', '/v1/session/create', JSON.stringify(body))
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.text).toMatch(message)
    }
    const malformed = await call(api, 'PUT', '/v1/session/create', '{"TTL":')
    expect(malformed.status).toBe(400)
    expect((await call(api, 'GET', '/v1/session/list')).json()).toEqual([])
    // Accepted variants: seconds below 1000 (Consul's fixup), nanoseconds, "0s" TTL, lower-case fields.
    const seconds = await create(api, { LockDelay: 5 })
    expect((await info(api, seconds))[0]?.LockDelay).toBe(5e9)
    const nanos = await create(api, { lockdelay: 2_500_000_000, ttl: '0s', checks: [] })
    expect((await info(api, nanos))[0]).toMatchObject({ LockDelay: 2.5e9, TTL: '', NodeChecks: [] })
  })

  it('a TTL session lives while renewed and ends at its TTL', async () => {
    const api = await startApi()
    const id = await create(api, { TTL: '10s' })
    for (let i = 0; i < 3; i++) {
      api.clock.advance(8_000)
      api.store.expire()
      expect((await call(api, 'PUT', `/v1/session/renew/${id}`)).status).toBe(200)
    }
    api.clock.advance(9_999)
    api.store.expire()
    expect(await info(api, id)).toHaveLength(1)
    api.clock.advance(2)
    api.store.expire()
    expect(await info(api, id)).toEqual([])
  })

  it("a session without TTL on an agent's node ends with the machine lease; destroy leaves the machine", async () => {
    const api = await startApi()
    const machineLease = await api.store.leaseGrant({ ttlMs: 30_000 })
    await api.deps.writer.putMachine({ Node: 'n1', Lease: machineLease.id, SinceMs: api.clock.nowMs })
    const bound = await create(api, { LockDelay: '0s' })
    const other = await create(api, { LockDelay: '0s', Behavior: 'delete' })
    const ttl = await create(api, { TTL: '60s' })
    expect((await call(api, 'PUT', `/v1/kv/a?acquire=${bound}`, 'a')).text).toBe('true')
    expect((await call(api, 'PUT', `/v1/kv/b?acquire=${other}`, 'b')).text).toBe('true')
    // Destroying one bound session releases its lock only; the machine and the other stay.
    expect((await call(api, 'PUT', `/v1/session/destroy/${bound}`)).text).toBe('true')
    expect(JSON.parse((await call(api, 'GET', '/v1/kv/a')).text)[0].Session).toBeUndefined()
    expect(JSON.parse((await call(api, 'GET', '/v1/kv/b')).text)[0].Session).toBe(other)
    expect((await api.store.range({ key: '/_cairn/catalog/machines/n1' })).count).toBe(1)
    // The agent dies: its lease expires, and its sessions (not the TTL one) end with it.
    api.clock.advance(30_001)
    api.store.expire()
    expect(await info(api, other)).toEqual([])
    expect((await call(api, 'GET', '/v1/kv/b')).status).toBe(404) // Behavior "delete"
    expect(await info(api, ttl)).toHaveLength(1)
  })

  it('destroys a machine-bound session holding more locks than one transaction deletes', async () => {
    const api = await startApi()
    const machineLease = await api.store.leaseGrant({ ttlMs: 30_000 })
    await api.deps.writer.putMachine({ Node: 'n1', Lease: machineLease.id, SinceMs: api.clock.nowMs })
    const id = await create(api, { LockDelay: '1s', Behavior: 'delete' })
    const keys = Array.from({ length: 95 }, (_, i) => `many/${i}`)
    for (const key of keys)
      expect((await call(api, 'PUT', `/v1/kv/${key}?acquire=${id}`, 'v')).text).toBe('true')
    await call(api, 'PUT', '/v1/kv/unlocked', 'v')
    expect((await call(api, 'PUT', `/v1/session/destroy/${id}`)).text).toBe('true')
    expect(await info(api, id)).toEqual([])
    expect((await call(api, 'GET', '/v1/kv/many/?keys')).status).toBe(404)
    expect((await call(api, 'GET', '/v1/kv/unlocked')).status).toBe(200)
    // Every key it held is under lock-delay here, the first batch's too.
    const waiter = await create(api, { NodeChecks: [] })
    expect((await call(api, 'PUT', `/v1/kv/many/0?acquire=${waiter}`, 'w')).text).toBe('false')
    expect((await call(api, 'PUT', `/v1/kv/many/94?acquire=${waiter}`, 'w')).text).toBe('false')
  })

  it('learns lock-delay from the store when a session ends elsewhere', async () => {
    const api = await startApi()
    const holder = await create(api, { LockDelay: '3s', TTL: '60s' })
    const waiter = await create(api)
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${holder}`, 'v')).text).toBe('true')
    const [s] = await info(api, holder)
    const session = await api.store.range({ key: `/_cairn/consul/sessions/${s?.ID}` })
    await api.store.leaseRevoke(session.kvs[0]?.lease as number) // as another agent's destroy would
    await new Promise((resolve) => setImmediate(resolve))
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('false')
    api.clock.advance(3_001)
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('true')
  })

  it('blocking list and info wake on a session change', async () => {
    const api = await startApi()
    const first = await call(api, 'GET', '/v1/session/list')
    const waiting = call(api, 'GET', `/v1/session/list?index=${first.index}&wait=30s`)
    await new Promise((resolve) => setTimeout(resolve, 30))
    await api.store.put({ key: '/elsewhere', value: 'x' })
    const id = await create(api)
    const woken = await waiting
    expect(woken.json().map((x: { ID: string }) => x.ID)).toEqual([id])
    const seen = await call(api, 'GET', `/v1/session/info/${id}`)
    const gone = call(api, 'GET', `/v1/session/info/${id}?index=${seen.index}&wait=30s`)
    await new Promise((resolve) => setTimeout(resolve, 30))
    await call(api, 'PUT', `/v1/session/destroy/${id}`)
    expect((await gone).json()).toEqual([])
    const timeout = await call(api, 'GET', `/v1/session/node/n1?index=${seen.index + 100}&wait=10ms`)
    expect(timeout.status).toBe(200)
  })
})
