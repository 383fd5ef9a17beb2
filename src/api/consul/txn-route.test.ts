/**
 * Proves PUT /v1/txn over real HTTP against an in-process store: Consul's result and error shapes,
 * each verb's semantics (set, cas, lock, unlock, get, get-or-empty, get-tree, check-index,
 * check-session, check-not-exists, delete, delete-tree, delete-cas), that ops see the earlier ops of
 * the same transaction, all-or-nothing (a failing op changes nothing and is named by OpIndex),
 * lock-delay, the limits (128 ops, value size, body size, one write per key) and bad input (400 with
 * nothing changed), plus a fuzz of random bodies that never crashes the server.
 */
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeRecord } from '../../catalog/records.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { KvStateMachine } from '../../kv/state-machine.ts'
import { FakeClock } from '../../kv/test-support.ts'
import { kvValueBytesMax } from './kv-records.ts'
import { registerKvRoutes } from './kv-route.ts'
import { registerSessionRoutes } from './session-route.ts'
import { testDeps } from './test-support.ts'
import { registerTxnRoutes, txnOpsMax } from './txn-route.ts'

interface Api {
  app: FastifyInstance
  store: LocalKvStore
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
  const app = Fastify({ bodyLimit: 4 * 1024 * 1024 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  registerKvRoutes(app, deps, closing.signal)
  registerSessionRoutes(app, deps, closing.signal)
  registerTxnRoutes(app, deps)
  await deps.writer.register({ node: nodeRecord({ Node: 'n1', Address: '127.0.0.1' }) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const api = {
    app,
    store,
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

const b64 = (text: string) => Buffer.from(text).toString('base64')

interface KvResult {
  Key: string
  Value: string | null
  Flags: number
  LockIndex: number
  Session?: string
  CreateIndex: number
  ModifyIndex: number
}

async function txn(api: Api, ops: unknown, raw?: string) {
  const res = await fetch(`${api.url}/v1/txn`, {
    method: 'PUT',
    body: raw ?? JSON.stringify(ops),
    headers: { 'content-type': 'application/json' },
  })
  const text = await res.text()
  let body:
    | { Results: { KV: KvResult }[] | null; Errors: { OpIndex: number; What: string }[] | null }
    | undefined
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  return { status: res.status, text, body }
}

async function kvPut(api: Api, key: string, value: string, query = ''): Promise<string> {
  return (await fetch(`${api.url}/v1/kv/${key}${query}`, { method: 'PUT', body: value })).text()
}

async function session(api: Api, body: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${api.url}/v1/session/create`, { method: 'PUT', body: JSON.stringify(body) })
  return ((await res.json()) as { ID: string }).ID
}

async function keys(api: Api): Promise<string[]> {
  return (await fetch(`${api.url}/v1/kv/?keys`)).json() as Promise<string[]>
}

describe('/v1/txn', () => {
  it("applies writes and reads in order and answers Consul's shape", async () => {
    const api = await startApi()
    const res = await txn(api, [
      { KV: { Verb: 'set', Key: 'a', Value: b64('1'), Flags: 7 } },
      { KV: { Verb: 'get', Key: 'a' } },
      { KV: { Verb: 'set', Key: 'dir/x', Value: b64('x') } },
      { KV: { Verb: 'set', Key: 'dir/y', Value: b64('y'), Flags: '18446744073709551615' } },
      { KV: { Verb: 'get-tree', Key: 'dir/' } },
      { KV: { Verb: 'get-or-empty', Key: 'nope' } },
      { KV: { Verb: 'check-not-exists', Key: 'nope' } },
    ])
    expect(res.status, res.text).toBe(200)
    expect(res.body?.Errors).toBeNull()
    const results = res.body?.Results?.map((r) => r.KV) ?? []
    const revision = api.store.stateMachine.revision
    expect(results.map((r) => [r.Key, r.Value])).toEqual([
      ['a', null],
      ['a', b64('1')],
      ['dir/x', null],
      ['dir/y', null],
      ['dir/x', b64('x')],
      ['dir/y', b64('y')],
      ['nope', null],
    ])
    expect(results[0]).toEqual({
      LockIndex: 0,
      Key: 'a',
      Flags: 7,
      Value: null,
      CreateIndex: revision,
      ModifyIndex: revision,
    })
    expect(res.text).toContain('"Flags":18446744073709551615')
    expect(results[6]).toMatchObject({ CreateIndex: 0, ModifyIndex: 0 })
    expect(await keys(api)).toEqual(['a', 'dir/x', 'dir/y'])
  })

  it('is all-or-nothing: the first failing op is named, nothing changes', async () => {
    const api = await startApi()
    await kvPut(api, 'existing', 'v')
    const before = api.store.stateMachine.revision
    const res = await txn(api, [
      { KV: { Verb: 'set', Key: 'new', Value: b64('n') } },
      { KV: { Verb: 'check-index', Key: 'existing', Index: 1 } },
      { KV: { Verb: 'delete', Key: 'existing' } },
    ])
    expect(res.status).toBe(409)
    expect(res.body).toEqual({
      Results: null,
      Errors: [
        { OpIndex: 1, What: `failed index check for key "existing", current modify index ${before} != 1` },
      ],
    })
    expect(api.store.stateMachine.revision).toBe(before)
    expect(await keys(api)).toEqual(['existing'])
  })

  it('cas, check-index and delete-cas compare ModifyIndex; check-not-exists and get fail as in Consul', async () => {
    const api = await startApi()
    await kvPut(api, 'k', 'v')
    const index = api.store.stateMachine.revision
    const cases: [unknown, string | undefined][] = [
      [{ Verb: 'cas', Key: 'k', Value: b64('x'), Index: index + 1 }, 'failed to set key "k", index is stale'],
      [{ Verb: 'cas', Key: 'k', Value: b64('x'), Index: 0 }, 'failed to set key "k", index is stale'],
      [{ Verb: 'delete-cas', Key: 'k', Index: index - 1 }, 'failed to delete key "k", index is stale'],
      [{ Verb: 'check-not-exists', Key: 'k' }, 'key "k" exists'],
      [{ Verb: 'get', Key: 'missing' }, 'key "missing" doesn\'t exist'],
      [
        { Verb: 'check-index', Key: 'missing', Index: 3 },
        'failed to check index, key "missing" doesn\'t exist',
      ],
      [{ Verb: 'check-index', Key: 'k', Index: index }, undefined],
      [{ Verb: 'cas', Key: 'fresh', Value: b64('f'), Index: 0 }, undefined],
    ]
    for (const [op, what] of cases) {
      const res = await txn(api, [{ KV: op }])
      if (what === undefined) expect(res.status, res.text).toBe(200)
      else expect(res.body?.Errors?.[0]?.What, JSON.stringify(op)).toBe(what)
    }
    const ok = await txn(api, [{ KV: { Verb: 'delete-cas', Key: 'k', Index: index } }])
    expect(ok.status).toBe(200)
    expect(ok.body?.Results).toEqual([])
    expect(await keys(api)).toEqual(['fresh'])
  })

  it('lock, check-session and unlock follow Consul, with LockIndex and lock-delay', async () => {
    const api = await startApi()
    const s1 = await session(api, { LockDelay: '2s' })
    const s2 = await session(api)
    const locked = await txn(api, [
      { KV: { Verb: 'lock', Key: 'l', Value: b64('held'), Session: s1 } },
      { KV: { Verb: 'check-session', Key: 'l', Session: s1 } },
      { KV: { Verb: 'get', Key: 'l' } },
    ])
    expect(locked.status, locked.text).toBe(200)
    expect(locked.body?.Results?.map((r) => [r.KV.LockIndex, r.KV.Session])).toEqual([
      [1, s1],
      [1, s1],
      [1, s1],
    ])
    const other = await txn(api, [{ KV: { Verb: 'lock', Key: 'l', Session: s2 } }])
    expect(other.body?.Errors?.[0]?.What).toBe('failed to lock key "l", lock is already held')
    const wrongCheck = await txn(api, [{ KV: { Verb: 'check-session', Key: 'l', Session: s2 } }])
    expect(wrongCheck.body?.Errors?.[0]?.What).toBe(
      `failed session check for key "l", current session "${s1}" != "${s2}"`,
    )
    const badUnlock = await txn(api, [{ KV: { Verb: 'unlock', Key: 'l', Session: s2 } }])
    expect(badUnlock.status).toBe(409)
    const unlocked = await txn(api, [{ KV: { Verb: 'unlock', Key: 'l', Value: b64('free'), Session: s1 } }])
    expect(unlocked.body?.Results?.[0]?.KV).toMatchObject({ LockIndex: 1, Value: null })
    expect(unlocked.body?.Results?.[0]?.KV.Session).toBeUndefined()
    await txn(api, [{ KV: { Verb: 'lock', Key: 'l', Session: s1 } }])
    await fetch(`${api.url}/v1/session/destroy/${s1}`, { method: 'PUT' })
    const delayed = await txn(api, [{ KV: { Verb: 'lock', Key: 'l', Session: s2 } }])
    expect(delayed.body?.Errors?.[0]?.What).toBe('failed to lock key "l" due to lock delay')
    api.clock.advance(2_001)
    const taken = await txn(api, [{ KV: { Verb: 'lock', Key: 'l', Session: s2 } }])
    expect(taken.body?.Results?.[0]?.KV).toMatchObject({ LockIndex: 3, Session: s2 })
    const unknown = await txn(api, [
      { KV: { Verb: 'lock', Key: 'z', Session: '00000000-0000-4000-8000-000000000000' } },
    ])
    expect(unknown.body?.Errors?.[0]?.What).toBe('invalid session "00000000-0000-4000-8000-000000000000"')
  })

  it('delete-tree removes a prefix and its locks; set keeps a lock holder', async () => {
    const api = await startApi()
    const s = await session(api, { LockDelay: '0s' })
    await kvPut(api, 'p/a', 'a', `?acquire=${s}`)
    await kvPut(api, 'p/b', 'b')
    await kvPut(api, 'q', 'q', `?acquire=${s}`)
    const res = await txn(api, [
      { KV: { Verb: 'delete-tree', Key: 'p/' } },
      { KV: { Verb: 'set', Key: 'q', Value: b64('q2') } },
      { KV: { Verb: 'get-tree', Key: 'p' } },
      { KV: { Verb: 'get-tree', Key: 'q' } },
    ])
    expect(res.status, res.text).toBe(200)
    expect(res.body?.Results?.map((r) => [r.KV.Key, r.KV.Session])).toEqual([
      ['q', s],
      ['q', s],
    ])
    await kvPut(api, 'p/a', 'again')
    const again = (await (await fetch(`${api.url}/v1/kv/p/a`)).json()) as { Session?: string }[]
    expect(again[0]?.Session).toBeUndefined()
  })

  it('refuses a key written twice with 409, and bad input with 400/413, changing nothing', async () => {
    const api = await startApi()
    const twice = await txn(api, [
      { KV: { Verb: 'set', Key: 'a', Value: b64('1') } },
      { KV: { Verb: 'set', Key: 'a', Value: b64('2') } },
    ])
    expect(twice.status).toBe(409)
    expect(twice.body?.Errors?.[0]).toMatchObject({
      OpIndex: 1,
      What: expect.stringMatching(/written twice/),
    })
    const refused: [unknown, number, RegExp][] = [
      [[{ KV: { Verb: 'explode', Key: 'a' } }], 400, /unknown KV verb "explode"/],
      [[{ KV: { Verb: 'set', Key: 'a', Value: 'not base64!' } }], 400, /failed to decode value/],
      [[{ KV: { Verb: 'set', Key: 'a', Flags: -1 } }], 400, /Flags must be an unsigned integer/],
      [[{ KV: { Verb: 'set', Key: 'a', Flags: 2 ** 64 } }], 400, /decimal string/],
      [
        [{ KV: { Verb: 'set', Key: 'a', Flags: '18446744073709551616' } }],
        400,
        /Flags must be an unsigned 64-bit/,
      ],
      [[{ KV: { Verb: 'set', Key: 7 } }], 400, /Key must be a string/],
      [[{ KV: { Verb: 'set', Key: 'k'.repeat(3000) } }], 400, /longer than 2048/],
      [[{ Node: { Verb: 'set', Node: { Node: 'x' } } }], 400, /Node operations are not supported yet/],
      [[{ Check: { Verb: 'get' } }], 400, /Check operations are not supported yet/],
      [[{}], 400, /no operation specified/],
      [[null], 400, /expected an object/],
      [{ KV: {} }, 400, /expected a JSON array/],
      [
        Array.from({ length: txnOpsMax + 1 }, (_, i) => ({ KV: { Verb: 'get-or-empty', Key: `k${i}` } })),
        413,
        /too many operations \(129 > 128\)/,
      ],
      [
        [{ KV: { Verb: 'set', Key: 'big', Value: Buffer.alloc(kvValueBytesMax + 1).toString('base64') } }],
        413,
        /Value for key "big" is too large/,
      ],
      [
        Array.from({ length: 100 }, (_, i) => ({ KV: { Verb: 'delete', Key: `d${i}` } })),
        413,
        /expands to 200 store operations/,
      ],
    ]
    for (const [body, status, message] of refused) {
      const res = await txn(api, body)
      expect(res.status, res.text).toBe(status)
      expect(res.text).toMatch(message)
    }
    const malformed = await txn(api, undefined, '[{"KV":')
    expect(malformed.status).toBe(400)
    expect(malformed.text).toMatch(/^Failed to parse body/)
    const huge = await txn(api, undefined, `[${' '.repeat(1024 * 1024)}]`)
    expect(huge.status).toBe(413)
    expect((await txn(api, [{ KV: { Verb: 'get', Key: '' } }])).body?.Errors?.[0]?.What).toBe(
      'Must provide key',
    )
    expect(await keys(api)).toEqual([])
    expect((await txn(api, [])).body).toEqual({ Results: [], Errors: null })
    const full = Array.from({ length: txnOpsMax }, (_, i) => ({
      KV: { Verb: 'set', Key: `s${i}`, Value: b64('v') },
    }))
    expect((await txn(api, full)).status).toBe(200)
  })

  it('answers every random body with a status below 500', async () => {
    const api = await startApi()
    const verb = fc.constantFrom(
      'set',
      'cas',
      'lock',
      'unlock',
      'get',
      'get-tree',
      'check-index',
      'check-session',
      'check-not-exists',
      'delete',
      'delete-tree',
      'delete-cas',
      'get-or-empty',
      'nope',
    )
    const kvOp = fc.record(
      {
        Verb: verb,
        Key: fc.constantFrom('', 'a', 'a/b', '%', 'a/'),
        Value: fc.oneof(fc.constant(null), fc.constant('dg=='), fc.string({ maxLength: 6 }), fc.integer()),
        Flags: fc.oneof(fc.nat(), fc.constant(-1), fc.constant('12'), fc.constant(1e30)),
        Index: fc.oneof(fc.nat({ max: 50 }), fc.constant('x')),
        Session: fc.oneof(fc.constant(''), fc.uuid(), fc.constant('x')),
      },
      { requiredKeys: ['Verb'] },
    )
    const body = fc.oneof(
      fc.array(fc.record({ KV: kvOp }), { maxLength: 6 }),
      fc.jsonValue({ maxDepth: 3 }),
      fc.array(fc.oneof(fc.record({ KV: kvOp }), fc.anything()), { maxLength: 4 }),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          body.map((b) => JSON.stringify(b) ?? 'null'),
          fc.string({ maxLength: 40 }),
        ),
        async (text) => {
          const res = await api.app.inject({
            method: 'PUT',
            url: '/v1/txn',
            payload: text,
            headers: { 'content-type': 'application/json' },
          })
          expect(res.statusCode, `${text} -> ${res.body}`).toBeLessThan(500)
        },
      ),
      { numRuns: 400 },
    )
  })
})
