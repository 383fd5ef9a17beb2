/**
 * Proves the Consul KV endpoints over real HTTP against an in-process store: Consul's answers for
 * reads (entries, ?raw, ?recurse, ?keys with ?separator, 404s, X-Consul-Index), writes (flags as
 * uint64, cas, the value limit, conflicting flags), locks (acquire, release, LockIndex, advisory
 * puts, release on session end, Behavior "delete", lock-delay), blocking queries (wake on a
 * matching change only, index ahead or compacted, client gone, server closing), the real `consul`
 * npm client, a fuzz of paths, queries and bodies (never a crash), and a property test that random
 * set/cas/delete/acquire/release sequences answer as a small in-memory model of Consul does.
 */
import Consul from 'consul'
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeRecord } from '../../catalog/records.ts'
import type { KvConfig } from '../../kv/limits.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { KvStateMachine } from '../../kv/state-machine.ts'
import { FakeClock } from '../../kv/test-support.ts'
import type { ConsulApiDeps } from './deps.ts'
import { kvValueBytesMax } from './kv-records.ts'
import { registerKvRoutes } from './kv-route.ts'
import { registerSessionRoutes } from './session-route.ts'
import { testDeps } from './test-support.ts'
import { registerTxnRoutes } from './txn-route.ts'

interface Api {
  app: FastifyInstance
  store: LocalKvStore
  deps: ConsulApiDeps
  clock: FakeClock
  url: string
  closing: AbortController
  close(): Promise<void>
}

const opened: Api[] = []
afterEach(async () => {
  for (const api of opened.splice(0)) await api.close()
})

/** A fastify app with the KV, session and txn routes on a LocalKvStore, node n1 registered. */
async function startApi(config: Partial<KvConfig> = {}): Promise<Api> {
  const clock = new FakeClock()
  const store = new LocalKvStore(new KvStateMachine(config), () => clock.nowMs)
  const deps = testDeps({
    store,
    clock: () => clock.nowMs,
  })
  const closing = new AbortController()
  // Close never waits on a client's kept-alive or aborted connection (the agent's own app does the same).
  const app = Fastify({ bodyLimit: 2 * 1024 * 1024, forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  registerKvRoutes(app, deps, closing.signal)
  registerSessionRoutes(app, deps, closing.signal)
  registerTxnRoutes(app, deps)
  await deps.writer.register({ node: nodeRecord({ Node: 'n1', Address: '127.0.0.1' }) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const api: Api = {
    app,
    store,
    deps,
    clock,
    url,
    closing,
    close: async () => {
      closing.abort()
      await app.close()
    },
  }
  opened.push(api)
  return api
}

async function call(api: Api, method: string, path: string, body?: string | Buffer) {
  const res = await fetch(api.url + path, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/octet-stream' } }),
  })
  const bytes = Buffer.from(await res.arrayBuffer())
  const text = bytes.toString('utf8')
  return {
    status: res.status,
    text,
    bytes,
    headers: res.headers,
    index: Number(res.headers.get('x-consul-index')),
    json: () => JSON.parse(text) as unknown,
  }
}

async function entry(api: Api, key: string): Promise<Record<string, unknown> | undefined> {
  const res = await call(api, 'GET', `/v1/kv/${encodeURIComponent(key)}`)
  if (res.status === 404) return undefined
  expect(res.status).toBe(200)
  return (res.json() as Record<string, unknown>[])[0]
}

async function newSession(api: Api, body: Record<string, unknown> = {}): Promise<string> {
  const res = await call(api, 'PUT', '/v1/session/create', JSON.stringify(body))
  expect(res.status, res.text).toBe(200)
  return (res.json() as { ID: string }).ID
}

describe('KV reads and writes', () => {
  it("answers Consul's entry shape, 404 with an empty body, and X-Consul-Index", async () => {
    const api = await startApi()
    const put = await call(api, 'PUT', '/v1/kv/web/config', 'hello')
    expect(put.status).toBe(200)
    expect(put.text).toBe('true')
    expect(put.headers.get('content-type')).toMatch(/application\/json/)
    const get = await call(api, 'GET', '/v1/kv/web/config')
    expect(get.status).toBe(200)
    const [e] = get.json() as Record<string, unknown>[]
    expect(e).toEqual({
      LockIndex: 0,
      Key: 'web/config',
      Flags: 0,
      Value: Buffer.from('hello').toString('base64'),
      CreateIndex: e?.CreateIndex,
      ModifyIndex: e?.CreateIndex,
    })
    expect(get.index).toBe(api.store.stateMachine.revision)
    expect(get.headers.get('x-consul-knownleader')).toBe('true')
    const missing = await call(api, 'GET', '/v1/kv/nope')
    expect(missing.status).toBe(404)
    expect(missing.text).toBe('')
    expect(missing.index).toBeGreaterThan(0)
  })

  it('default and ?consistent reads wait for the read barrier; ?stale does not', async () => {
    const api = await startApi()
    let barriers = 0
    api.deps.readBarrier = async () => {
      barriers++
    }
    await call(api, 'PUT', '/v1/kv/k', 'v')
    const stale = await call(api, 'GET', '/v1/kv/k?stale')
    expect(stale.headers.get('x-consul-effective-consistency')).toBe('stale')
    expect(barriers).toBe(0)
    await call(api, 'GET', '/v1/kv/k')
    await call(api, 'GET', '/v1/kv/k?consistent')
    expect(barriers).toBe(2)
    expect((await call(api, 'GET', '/v1/kv/k?stale&consistent')).status).toBe(400)
  })

  it('stores any key: empty segments, trailing slash, %, unicode; sorted by UTF-8 bytes', async () => {
    const api = await startApi()
    const keys = ['a//b/', 'a%2Fb', 'a/%', 'a/😀', 'a/～', 'a', 'a/ b']
    for (const key of keys)
      expect((await call(api, 'PUT', `/v1/kv/${encodeURIComponent(key)}`, key)).text).toBe('true')
    const all = (await call(api, 'GET', '/v1/kv/?recurse')).json() as { Key: string; Value: string }[]
    expect(all.map((e) => e.Key)).toEqual(['a', 'a%2Fb', 'a/ b', 'a/%', 'a//b/', 'a/～', 'a/😀'])
    for (const e of all) expect(Buffer.from(e.Value, 'base64').toString()).toBe(e.Key)
  })

  it('?raw returns the bytes as text/plain with nosniff; an empty value is Value null', async () => {
    const api = await startApi()
    const bytes = Buffer.from([0, 255, 10, 13, 1])
    await call(api, 'PUT', '/v1/kv/bin', bytes)
    const raw = await call(api, 'GET', '/v1/kv/bin?raw')
    expect(raw.bytes.equals(bytes)).toBe(true)
    expect(raw.headers.get('content-type')).toBe('text/plain')
    expect(raw.headers.get('x-content-type-options')).toBe('nosniff')
    await call(api, 'PUT', '/v1/kv/empty')
    expect((await entry(api, 'empty'))?.Value).toBeNull()
    expect((await call(api, 'GET', '/v1/kv/empty?raw')).text).toBe('')
  })

  it('?recurse treats the key as a prefix that need not end at a /', async () => {
    const api = await startApi()
    for (const key of ['apple', 'ap/x', 'apricot/y', 'b']) await call(api, 'PUT', `/v1/kv/${key}`, 'v')
    const ap = (await call(api, 'GET', '/v1/kv/ap?recurse')).json() as { Key: string }[]
    expect(ap.map((e) => e.Key)).toEqual(['ap/x', 'apple', 'apricot/y'])
    expect((await call(api, 'GET', '/v1/kv/zz?recurse')).status).toBe(404)
  })

  it('?keys lists keys, grouped at ?separator; [] at the root, 404 for an empty prefix', async () => {
    const api = await startApi()
    for (const key of ['web/bar', 'web/subdir/a', 'web/subdir/b', 'web2', 'x'])
      await call(api, 'PUT', `/v1/kv/${key}`, 'v')
    expect((await call(api, 'GET', '/v1/kv/web/?keys&separator=/')).json()).toEqual([
      'web/bar',
      'web/subdir/',
    ])
    expect((await call(api, 'GET', '/v1/kv/web?keys')).json()).toEqual([
      'web/bar',
      'web/subdir/a',
      'web/subdir/b',
      'web2',
    ])
    expect((await call(api, 'GET', '/v1/kv/?keys&separator=/')).json()).toEqual(['web/', 'web2', 'x'])
    expect((await call(api, 'GET', '/v1/kv/nothing?keys')).status).toBe(404)
    const fresh = await startApi()
    expect((await call(fresh, 'GET', '/v1/kv/?keys')).json()).toEqual([])
  })

  it('keeps uint64 flags exactly; refuses bad flags with 400 and changes nothing', async () => {
    const api = await startApi()
    await call(api, 'PUT', '/v1/kv/f?flags=18446744073709551615', 'v')
    expect((await call(api, 'GET', '/v1/kv/f')).text).toContain('"Flags":18446744073709551615')
    for (const bad of ['18446744073709551616', '-1', 'x', '1.5']) {
      const res = await call(api, 'PUT', `/v1/kv/g?flags=${bad}`, 'v')
      expect(res.status).toBe(400)
      expect(res.text).toMatch(/invalid flags parameter/)
    }
    expect(await entry(api, 'g')).toBeUndefined()
    await call(api, 'PUT', '/v1/kv/f', 'w')
    expect((await entry(api, 'f'))?.Flags).toBe(0) // a put without ?flags sets 0, as Consul does
  })

  it('cas=0 creates only if absent; cas=N writes only at ModifyIndex N', async () => {
    const api = await startApi()
    expect((await call(api, 'PUT', '/v1/kv/c?cas=0', 'one')).text).toBe('true')
    expect((await call(api, 'PUT', '/v1/kv/c?cas=0', 'two')).text).toBe('false')
    const index = (await entry(api, 'c'))?.ModifyIndex as number
    expect((await call(api, 'PUT', `/v1/kv/c?cas=${index + 1}`, 'three')).text).toBe('false')
    expect((await call(api, 'PUT', `/v1/kv/c?cas=${index}`, 'four')).text).toBe('true')
    expect((await call(api, 'PUT', '/v1/kv/c?cas=99999999999999999999', 'x')).status).toBe(400)
    expect((await call(api, 'GET', '/v1/kv/c?raw')).text).toBe('four')
  })

  it('refuses a value over 512 KiB with 413 and writes nothing', async () => {
    const api = await startApi()
    const res = await call(api, 'PUT', '/v1/kv/big', Buffer.alloc(kvValueBytesMax + 1, 1))
    expect(res.status).toBe(413)
    expect(res.text).toMatch(/too large, max size: 524288 bytes/)
    expect(await entry(api, 'big')).toBeUndefined()
    expect((await call(api, 'PUT', '/v1/kv/big', Buffer.alloc(kvValueBytesMax, 1))).text).toBe('true')
  })

  it('an empty key needs ?recurse; conflicting flags are 400', async () => {
    const api = await startApi()
    for (const [method, path] of [
      ['PUT', '/v1/kv/'],
      ['GET', '/v1/kv/'],
      ['DELETE', '/v1/kv/'],
    ] as const) {
      const res = await call(api, method, path)
      expect(res.status).toBe(400)
      expect(res.text).toBe('Missing key name')
    }
    expect((await call(api, 'PUT', '/v1/kv/x?cas=0&acquire=abc', 'v')).text).toMatch(/^Conflicting flags/)
    expect((await call(api, 'DELETE', '/v1/kv/x?cas=0&recurse')).status).toBe(400)
    expect((await call(api, 'PUT', `/v1/kv/${'k'.repeat(3000)}`, 'v')).status).toBe(400)
  })

  it('DELETE removes one key, ?recurse a prefix, ?cas only at the index (absent: true)', async () => {
    const api = await startApi()
    for (const key of ['d/a', 'd/b', 'd', 'e']) await call(api, 'PUT', `/v1/kv/${key}`, 'v')
    expect((await call(api, 'DELETE', '/v1/kv/d')).text).toBe('true')
    expect(await entry(api, 'd')).toBeUndefined()
    expect(await entry(api, 'd/a')).toBeDefined()
    await call(api, 'DELETE', '/v1/kv/d/?recurse')
    expect((await call(api, 'GET', '/v1/kv/d?recurse')).status).toBe(404)
    const index = (await entry(api, 'e'))?.ModifyIndex as number
    expect((await call(api, 'DELETE', `/v1/kv/e?cas=${index - 1}`)).text).toBe('false')
    expect((await call(api, 'DELETE', `/v1/kv/e?cas=${index}`)).text).toBe('true')
    expect((await call(api, 'DELETE', '/v1/kv/e?cas=5')).text).toBe('true')
    await call(api, 'PUT', '/v1/kv/f', 'v')
    expect((await call(api, 'DELETE', '/v1/kv/?recurse')).text).toBe('true')
    expect((await call(api, 'GET', '/v1/kv/?recurse')).status).toBe(404)
  })
})

describe('locks', () => {
  it('acquire counts LockIndex, shows Session; the holder re-acquires; others get false', async () => {
    const api = await startApi()
    const s1 = await newSession(api)
    const s2 = await newSession(api)
    expect((await call(api, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'a')).text).toBe('true')
    expect(await entry(api, 'lock')).toMatchObject({ LockIndex: 1, Session: s1 })
    expect((await call(api, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'b')).text).toBe('true')
    expect(await entry(api, 'lock')).toMatchObject({ LockIndex: 1, Session: s1 })
    expect((await call(api, 'PUT', `/v1/kv/lock?acquire=${s2}`, 'c')).text).toBe('false')
    // Locks are advisory: a plain put succeeds and keeps the holder.
    expect((await call(api, 'PUT', '/v1/kv/lock', 'd')).text).toBe('true')
    expect(await entry(api, 'lock')).toMatchObject({ LockIndex: 1, Session: s1 })
    expect((await call(api, 'PUT', `/v1/kv/lock?release=${s2}`, 'e')).text).toBe('false')
    const before = (await entry(api, 'lock'))?.ModifyIndex as number
    expect((await call(api, 'PUT', `/v1/kv/lock?release=${s1}`, 'f')).text).toBe('true')
    const released = await entry(api, 'lock')
    expect(released).toMatchObject({ LockIndex: 1, Value: Buffer.from('f').toString('base64') })
    expect(released?.Session).toBeUndefined()
    expect(released?.ModifyIndex).toBeGreaterThan(before)
    expect((await call(api, 'PUT', `/v1/kv/lock?acquire=${s2}`, 'g')).text).toBe('true')
    expect(await entry(api, 'lock')).toMatchObject({ LockIndex: 2, Session: s2 })
    expect((await call(api, 'PUT', '/v1/kv/nokey?release=' + s1, 'x')).text).toBe('false')
  })

  it('acquire with an unknown session is 400; deleting a locked key unlocks it', async () => {
    const api = await startApi()
    const res = await call(api, 'PUT', '/v1/kv/k?acquire=5b0e5b5e-0000-4000-8000-000000000000', 'v')
    expect(res.status).toBe(400)
    expect(res.text).toMatch(/invalid session/)
    expect((await call(api, 'PUT', '/v1/kv/k?acquire=not-a-uuid', 'v')).status).toBe(400)
    const s = await newSession(api, { LockDelay: '0s' })
    await call(api, 'PUT', `/v1/kv/k?acquire=${s}`, 'v')
    await call(api, 'DELETE', '/v1/kv/k')
    await call(api, 'PUT', '/v1/kv/k', 'again')
    expect((await entry(api, 'k'))?.Session).toBeUndefined()
  })

  it('a destroyed session releases its locks (release) or deletes its keys (delete)', async () => {
    const api = await startApi()
    const release = await newSession(api, { LockDelay: '0s' })
    const remove = await newSession(api, { LockDelay: '0s', Behavior: 'delete' })
    await call(api, 'PUT', `/v1/kv/r?acquire=${release}`, 'r')
    await call(api, 'PUT', `/v1/kv/d?acquire=${remove}`, 'd')
    await call(api, 'PUT', '/v1/kv/d', 'written by someone else') // keeps the key on the session
    expect((await call(api, 'PUT', `/v1/session/destroy/${release}`)).text).toBe('true')
    expect((await call(api, 'PUT', `/v1/session/destroy/${remove}`)).text).toBe('true')
    const r = await entry(api, 'r')
    expect(r).toMatchObject({ LockIndex: 1, Value: Buffer.from('r').toString('base64') })
    expect(r?.Session).toBeUndefined()
    expect(await entry(api, 'd')).toBeUndefined()
  })

  it('a TTL session that expires releases its locks, and lock-delay holds the key', async () => {
    const api = await startApi()
    const holder = await newSession(api, { TTL: '10s', LockDelay: '5s' })
    const waiter = await newSession(api)
    await call(api, 'PUT', `/v1/kv/job?acquire=${holder}`, 'v')
    api.clock.advance(10_001)
    api.store.expire()
    await new Promise((resolve) => setImmediate(resolve))
    expect((await entry(api, 'job'))?.Session).toBeUndefined()
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('false')
    api.clock.advance(5_001)
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('true')
  })

  it('lock-delay after a destroy, capped at 60s', async () => {
    const api = await startApi()
    const holder = await newSession(api, { LockDelay: '10m' })
    const waiter = await newSession(api)
    expect(
      ((await call(api, 'GET', `/v1/session/info/${holder}`)).json() as { LockDelay: number }[])[0]
        ?.LockDelay,
    ).toBe(60e9)
    await call(api, 'PUT', `/v1/kv/job?acquire=${holder}`, 'v')
    await call(api, 'PUT', `/v1/session/destroy/${holder}`)
    api.clock.advance(59_000)
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('false')
    api.clock.advance(1_001)
    expect((await call(api, 'PUT', `/v1/kv/job?acquire=${waiter}`, 'w')).text).toBe('true')
  })
})

describe('concurrent writers', () => {
  it('exactly one of many concurrent acquires wins; concurrent cas increments lose no update', async () => {
    const api = await startApi()
    const sessions = await Promise.all(Array.from({ length: 12 }, () => newSession(api)))
    const answers = await Promise.all(sessions.map((s) => call(api, 'PUT', `/v1/kv/leader?acquire=${s}`, s)))
    expect(answers.filter((a) => a.text === 'true')).toHaveLength(1)
    const e = await entry(api, 'leader')
    expect(e?.LockIndex).toBe(1)
    expect(Buffer.from(e?.Value as string, 'base64').toString()).toBe(e?.Session)
    await call(api, 'PUT', '/v1/kv/counter', '0')
    const increment = async (): Promise<void> => {
      for (;;) {
        const current = await entry(api, 'counter')
        const next = Number(Buffer.from(current?.Value as string, 'base64').toString()) + 1
        const res = await call(api, 'PUT', `/v1/kv/counter?cas=${current?.ModifyIndex}`, String(next))
        if (res.text === 'true') return
      }
    }
    await Promise.all(Array.from({ length: 10 }, () => increment()))
    expect((await call(api, 'GET', '/v1/kv/counter?raw')).text).toBe('10')
  })
})

describe('blocking reads', () => {
  it('wakes on a change to the key, not on another key, and times out with the same index', async () => {
    const api = await startApi()
    await call(api, 'PUT', '/v1/kv/watched', 'v1')
    const first = await call(api, 'GET', '/v1/kv/watched')
    const timedOut = call(api, 'GET', `/v1/kv/watched?index=${first.index}&wait=300ms`)
    await call(api, 'PUT', '/v1/kv/other', 'x')
    const timeout = await timedOut
    expect(timeout.index).toBe(first.index)
    const waiting = call(api, 'GET', `/v1/kv/watched?index=${first.index}&wait=30s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call(api, 'PUT', '/v1/kv/other', 'y')
    await call(api, 'PUT', '/v1/kv/watched', 'v2')
    const woken = await waiting
    expect(woken.index).toBe(api.store.stateMachine.revision)
    expect(Buffer.from((woken.json() as { Value: string }[])[0]?.Value ?? '', 'base64').toString()).toBe('v2')
  })

  it('an older index whose change already happened answers at once', async () => {
    const api = await startApi()
    await call(api, 'PUT', '/v1/kv/k', 'v1')
    const first = await call(api, 'GET', '/v1/kv/k')
    await call(api, 'PUT', '/v1/kv/k', 'v2')
    const res = await call(api, 'GET', `/v1/kv/k?index=${first.index}&wait=30s`)
    expect(res.index).toBeGreaterThan(first.index)
  })

  it('a prefix read wakes on a key under the prefix (not at a segment boundary) and on lock changes', async () => {
    const api = await startApi()
    await call(api, 'PUT', '/v1/kv/svc-a', 'x')
    const first = await call(api, 'GET', '/v1/kv/svc?recurse')
    const waiting = call(api, 'GET', `/v1/kv/svc?recurse&index=${first.index}&wait=30s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call(api, 'PUT', '/v1/kv/sv', 'outside the prefix')
    await call(api, 'PUT', '/v1/kv/svcb', 'inside')
    const woken = await waiting
    expect((woken.json() as { Key: string }[]).map((e) => e.Key)).toEqual(['svc-a', 'svcb'])
    // A session's end changes only the lock key: a reader of the key wakes too.
    const s = await newSession(api, { LockDelay: '0s' })
    await call(api, 'PUT', `/v1/kv/svcb?acquire=${s}`, 'v')
    const locked = await call(api, 'GET', '/v1/kv/svcb')
    const unlocking = call(api, 'GET', `/v1/kv/svcb?index=${locked.index}&wait=30s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call(api, 'PUT', `/v1/session/destroy/${s}`)
    expect(((await unlocking).json() as { Session?: string }[])[0]?.Session).toBeUndefined()
  })

  it('an index ahead of the store or older than the history answers at once', async () => {
    const api = await startApi({ historyRevisionsMax: 3 })
    for (let i = 0; i < 10; i++) await call(api, 'PUT', `/v1/kv/n${i}`, 'v')
    const ahead = await call(api, 'GET', '/v1/kv/n1?index=999999&wait=30s')
    expect(ahead.index).toBe(api.store.stateMachine.revision)
    const cleared = await call(api, 'GET', '/v1/kv/n1?index=2&wait=30s')
    expect(cleared.status).toBe(200)
    expect(cleared.index).toBe(api.store.stateMachine.revision)
  })

  it('ends the wait and its watchers when the client goes away or the server closes', async () => {
    const api = await startApi()
    await call(api, 'PUT', '/v1/kv/k', 'v')
    const index = (await call(api, 'GET', '/v1/kv/k')).index
    const baseline = api.store.stateMachine.watcherCount
    const aborted = new AbortController()
    const gone = fetch(`${api.url}/v1/kv/k?index=${index}&wait=60s`, { signal: aborted.signal }).catch(
      () => 'aborted',
    )
    await until(() => api.store.stateMachine.watcherCount === baseline + 2)
    aborted.abort()
    expect(await gone).toBe('aborted')
    await until(() => api.store.stateMachine.watcherCount === baseline)
    const waiting = call(api, 'GET', `/v1/kv/k?index=${index}&wait=60s`)
    await until(() => api.store.stateMachine.watcherCount === baseline + 2)
    api.closing.abort()
    const res = await waiting
    expect(res.index).toBe(index)
    expect(api.store.stateMachine.watcherCount).toBe(0)
  })
})

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('the consul npm client', () => {
  it('sets, gets, lists and deletes keys, and takes and releases a lock with a session', async () => {
    const api = await startApi()
    const { port } = new URL(api.url)
    const consul = new Consul({ host: '127.0.0.1', port: Number(port) })
    expect(await consul.kv.set('app/config', 'v1')).toBe(true)
    expect(await consul.kv.set({ key: 'app/flags', value: 'x', flags: 42 })).toBe(true)
    const got = await consul.kv.get('app/config')
    expect(got).toMatchObject({ Key: 'app/config', Value: 'v1', Flags: 0, LockIndex: 0 })
    expect(await consul.kv.get('app/missing')).toBeUndefined()
    expect(await consul.kv.keys('app/')).toEqual(['app/config', 'app/flags'])
    const all = (await consul.kv.get({ key: 'app/', recurse: true })) as unknown as {
      Key: string
      Flags: number
    }[]
    expect(all.map((e) => [e.Key, e.Flags])).toEqual([
      ['app/config', 0],
      ['app/flags', 42],
    ])
    const { ID } = await consul.session.create({ name: 'leader', ttl: '15s', lockdelay: '1s' })
    expect(await consul.kv.set({ key: 'app/leader', value: 'me', acquire: ID })).toBe(true)
    const other = await consul.session.create()
    // The client resolves a `false` body as undefined (papi drops falsy values).
    expect(await consul.kv.set({ key: 'app/leader', value: 'you', acquire: other.ID })).not.toBe(true)
    expect(await consul.kv.get('app/leader')).toMatchObject({ Session: ID, LockIndex: 1, Value: 'me' })
    expect(await consul.kv.set({ key: 'app/leader', value: 'bye', release: ID })).toBe(true)
    expect(await consul.kv.set({ key: 'app/leader', value: 'you', acquire: other.ID })).toBe(true)
    await consul.session.destroy(ID)
    expect(await consul.session.info(ID)).toBeUndefined()
    expect(await consul.kv.del({ key: 'app/', recurse: true })).toBe(true)
    expect(await consul.kv.keys('')).toEqual([])
    // The package's typings describe flat ops; at run time it sends the array as given (Consul's shape).
    const operations = [
      { KV: { Verb: 'set', Key: 't', Value: Buffer.from('tv').toString('base64') } },
      { KV: { Verb: 'get', Key: 't' } },
    ]
    const results = (await consul.transaction.create(operations as never, {} as never)) as unknown as {
      Results: { KV: { Value: string | null } }[]
    }
    expect(results.Results.map((r) => r.KV.Value)).toEqual([null, Buffer.from('tv').toString('base64')])
    consul.destroy()
  })
})

describe('robustness', () => {
  const pathChar = fc.constantFrom(
    'a',
    '/',
    '%',
    '%2F',
    '%25',
    '%00',
    '.',
    '..',
    '?',
    '&',
    '=',
    '😀',
    ' ',
    '%zz',
  )
  const queryPart = fc.constantFrom(
    'recurse',
    'keys',
    'raw',
    'separator=/',
    'flags=1',
    'flags=99999999999999999999999',
    'flags=-1',
    'cas=0',
    'cas=x',
    'cas=18446744073709551615',
    'acquire=x',
    'release=',
    'index=1&wait=1ms',
    'index=abc',
    'wait=1ms',
    'wait=bogus',
    'stale',
    'consistent',
    'dc=x',
  )

  it('answers every random request with a status below 500, or a clean 500 text', async () => {
    const api = await startApi()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'),
        fc.array(pathChar, { maxLength: 8 }),
        fc.array(queryPart, { maxLength: 4 }),
        fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
        async (method, path, query, body) => {
          const url = `/v1/kv/${path.join('')}${query.length > 0 ? `?${query.join('&')}` : ''}`
          const res = await api.app.inject({
            method: method as 'GET',
            url,
            ...(body === undefined ? {} : { payload: Buffer.from(body), headers: { 'content-type': 'x/y' } }),
          })
          if (res.statusCode >= 500) expect(res.body).not.toMatch(/internal error/)
          expect(res.statusCode).toBeLessThan(500)
        },
      ),
      { numRuns: 300 },
    )
  })

  /** Consul's KV semantics for a few keys, as a reference. */
  interface ModelEntry {
    value: string
    flags: string
    lockIndex: number
    modifyIndex: number
    session: string | undefined
  }

  it('random set/cas/delete/acquire/release sequences answer as an in-memory model of Consul', async () => {
    const key = fc.constantFrom('a', 'a/b', 'b%')
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, value: fc.string({ maxLength: 4 }) }),
      fc.record({
        kind: fc.constant('cas' as const),
        key,
        value: fc.string({ maxLength: 4 }),
        delta: fc.integer({ min: -1, max: 1 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), key }),
      fc.record({ kind: fc.constant('acquire' as const), key, session: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ kind: fc.constant('release' as const), key, session: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ kind: fc.constant('end' as const), session: fc.integer({ min: 0, max: 1 }) }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
        const api = await startApi()
        const sessions = [
          await newSession(api, { LockDelay: '0s' }),
          await newSession(api, { LockDelay: '0s' }),
        ]
        const model = new Map<string, ModelEntry>()
        for (const o of ops) {
          let expected: boolean
          let res: Awaited<ReturnType<typeof call>>
          if (o.kind === 'end') {
            // The session ends (destroyed): its locks are released; a new session takes its place.
            const ended = sessions[o.session] as string
            res = await call(api, 'PUT', `/v1/session/destroy/${ended}`)
            expected = true
            for (const m of model.values()) if (m.session === ended) m.session = undefined
            sessions[o.session] = await newSession(api, { LockDelay: '0s' })
          } else if (o.kind === 'set' || o.kind === 'cas') {
            const path = `/v1/kv/${encodeURIComponent(o.key)}`
            const current = model.get(o.key)
            const cas = o.kind === 'cas' ? Math.max(0, (current?.modifyIndex ?? 0) + o.delta) : undefined
            res = await call(api, 'PUT', cas === undefined ? path : `${path}?cas=${cas}`, o.value)
            expected = cas === undefined || (cas === 0 ? current === undefined : current?.modifyIndex === cas)
            if (expected)
              model.set(o.key, {
                value: o.value,
                flags: '0',
                lockIndex: current?.lockIndex ?? 0,
                modifyIndex: -1,
                session: current?.session,
              })
          } else if (o.kind === 'delete') {
            res = await call(api, 'DELETE', `/v1/kv/${encodeURIComponent(o.key)}`)
            expected = true
            model.delete(o.key)
          } else {
            const path = `/v1/kv/${encodeURIComponent(o.key)}`
            const current = model.get(o.key)
            const session = sessions[o.session] as string
            const param = o.kind === 'acquire' ? 'acquire' : 'release'
            res = await call(api, 'PUT', `${path}?${param}=${session}`, 'L')
            if (o.kind === 'acquire') {
              expected = current?.session === undefined || current.session === session
              const lockIndex = (current?.lockIndex ?? 0) + (current?.session === session ? 0 : 1)
              if (expected) model.set(o.key, { value: 'L', flags: '0', lockIndex, modifyIndex: -1, session })
            } else {
              expected = current !== undefined && current.session === session
              if (expected && current !== undefined)
                model.set(o.key, { ...current, value: 'L', modifyIndex: -1, session: undefined })
            }
          }
          expect(res.text, `${JSON.stringify(o)}`).toBe(String(expected))
          // Learn the index the store gave the write, then compare the whole entry.
          for (const [k, m] of model) {
            const e = await entry(api, k)
            expect(e, k).toBeDefined()
            if (m.modifyIndex === -1) m.modifyIndex = e?.ModifyIndex as number
            expect(e).toMatchObject({
              Key: k,
              LockIndex: m.lockIndex,
              ModifyIndex: m.modifyIndex,
              Value: m.value === '' ? null : Buffer.from(m.value).toString('base64'),
            })
            expect(e?.Session).toBe(m.session)
          }
          const listed = (await call(api, 'GET', '/v1/kv/?keys')).json()
          expect(listed).toEqual([...model.keys()].sort())
        }
        await api.close()
        opened.splice(opened.indexOf(api), 1)
      }),
      { numRuns: 30 },
    )
  })
})
