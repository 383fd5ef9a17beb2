/**
 * Proves RemoteKvStore against real servers over real sockets: fastify apps on port 0 with
 * registerStoreRoutes over a LocalKvStore (several apps over the same store stand for several
 * servers of one cluster), plus hand-written HTTP servers for the failures a store server cannot
 * be made to show (a connection dropped after the request, no answer, a stream cut inside a
 * revision, a silent stream).
 *
 *   - every operation answers exactly what the LocalKvStore answers when called directly, and
 *     typed errors come back as the same class with the same code, message, index, oldestIndex;
 *   - calls fail over: anything retries when the connection was refused; reads and keep-alives also
 *     after a lost connection, a timeout or RAFT_STOPPED; writes then fail with a clear error and are
 *     applied at most once;
 *   - a watch is a real Watcher: events in order, status mirrored, one-shots, live watches sharing
 *     one upstream; it resumes across server loss (graceful close and abrupt death) with no gap and
 *     no duplicate, even when the stream was cut between two events of one revision; a quiet watch
 *     resumes from the heartbeats' progress mark, and one whose resume point was compacted is
 *     cancelled with KV_EVENT_INDEX_CLEARED exactly as a local one; a slow local consumer is
 *     cancelled alone; a silent stream is noticed; limits and close() hold.
 */
import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { registerStoreRoutes, type StoreApiLimits } from '../api/store/index.ts'
import { CairnError, type ErrorCode } from '../errors.ts'
import type { KvEvent } from './events.ts'
import { KvError } from './kv-error.ts'
import type { KvStore } from './kv-store.ts'
import { kvLimits } from './limits.ts'
import { LocalKvStore } from './local-kv-store.ts'
import { type RemoteKvLimits, RemoteKvStore } from './remote-kv-store.ts'
import { KvStateMachine } from './state-machine.ts'
import { watchLineOf } from './store-wire.ts'
import { errorOf, newTestStore } from './test-support.ts'
import type { Watcher } from './watcher.ts'

interface TestServer {
  url: string
  /** Graceful: open watch streams end with a KV_WATCHER_CLEARED line, then the app closes. */
  stop(): Promise<void>
  /** Abrupt: every connection is cut and the listener closes, as if the process died. */
  kill(): void
}

const cleanups: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startServer(store: KvStore, limits: Partial<StoreApiLimits> = {}): Promise<TestServer> {
  const app: FastifyInstance = Fastify()
  const sockets = new Set<Socket>()
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  registerStoreRoutes(app, store, new AbortController().signal, limits)
  await app.listen({ host: '127.0.0.1', port: 0 })
  let down = false
  const server: TestServer = {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    stop: async () => {
      if (down) return
      down = true
      await app.close()
    },
    kill: () => {
      if (down) return
      down = true
      app.server.close()
      for (const socket of sockets) socket.destroy()
    },
  }
  cleanups.push(() => server.stop())
  return server
}

/** A plain HTTP server behaving as the test needs. */
async function startRawServer(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: HttpServer = createServer(handle)
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A URL nothing listens on (connections are refused). */
async function deadUrl(): Promise<string> {
  const server = createNetServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

function newRemote(
  servers: string[],
  limits: Partial<RemoteKvLimits> = {},
  requestTimeoutMs?: number,
): RemoteKvStore {
  const remote = new RemoteKvStore({
    servers,
    limits: { retryDelayMs: 10, ...limits },
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  })
  cleanups.push(() => remote.close())
  return remote
}

/** Takes a watcher's events as its consumer contract says (listener, then take until []). */
class Collector {
  readonly events: KvEvent[] = []
  readonly watcher: Watcher

  constructor(watcher: Watcher) {
    this.watcher = watcher
    watcher.setListener(() => queueMicrotask(() => this.drain()))
    this.drain()
  }

  drain(): void {
    for (let batch = this.watcher.take(); batch.length > 0; batch = this.watcher.take())
      this.events.push(...batch)
  }

  get revisions(): number[] {
    return this.events.map((e) => e.revision)
  }

  get lines(): string[] {
    return this.events.map((e) => e.json())
  }
}

async function until(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the call to fail')
}

function errorFields(error: Error) {
  const kv = error instanceof KvError ? error : undefined
  return {
    class: error.constructor.name,
    name: error.name,
    code: (error as CairnError).code,
    message: error.message,
    index: kv?.index,
    oldestIndex: kv?.oldestIndex,
    errorCode: kv?.errorCode,
    etcdCause: kv?.etcdCause,
  }
}

describe('calls answer what the local store answers', () => {
  it('every operation round-trips with identical results', async () => {
    const local = newTestStore().store
    const served = newTestStore().store
    const server = await startServer(served)
    const remote = newRemote([server.url])
    const both = async <T>(call: (store: KvStore) => Promise<T>): Promise<T> => {
      const expected = await call(local)
      const actual = await call(remote)
      expect(actual).toStrictEqual(expected)
      return actual
    }
    await both((s) => s.put({ key: '/a/1', value: 'one' }))
    await both((s) => s.put({ key: '/a/1', value: 'uno', prevKv: true }))
    await both((s) => s.put({ key: '/a/2', value: 'two' }))
    await both((s) => s.put({ key: '/b', value: 'é\u0000\ud800' }))
    await both((s) => s.range({ key: '/a/1' }))
    await both((s) => s.range({ key: '/a/', rangeEnd: '/a0' }, { serializable: true }))
    await both((s) => s.range({ key: '/', rangeEnd: '\0', limit: 2 }))
    await both((s) => s.range({ key: '/', rangeEnd: '\0', countOnly: true }))
    await both((s) => s.range({ key: '/', rangeEnd: '\0', keysOnly: true }))
    await both((s) => s.range({ key: '/missing' }))
    const lease = await both((s) => s.leaseGrant({ ttlMs: 30_000 }))
    await both((s) => s.leaseGrant({ lease: 77, ttlMs: 5_000 }))
    await both((s) => s.put({ key: '/leased', value: 'v', lease: lease.id }))
    await both((s) => s.leaseKeepAlive(lease.id))
    await both((s) => s.leaseTimeToLive(lease.id))
    await both((s) => s.leaseTimeToLive(12345, { serializable: true }))
    await both((s) =>
      s.txn({
        compare: [{ key: '/a/1', target: 'value', result: 'equal', value: 'uno' }],
        success: [
          { type: 'put', key: '/c', value: 'c', prevKv: true },
          { type: 'delete', key: '/a/2', prevKv: true },
          { type: 'range', key: '/', rangeEnd: '\0' },
        ],
        failure: [{ type: 'put', key: '/never', value: 'x' }],
      }),
    )
    await both((s) =>
      s.txn({
        compare: [{ key: '/a/1', target: 'version', result: 'greater', value: 5 }],
        success: [],
        failure: [{ type: 'range', key: '/c' }],
      }),
    )
    await both((s) => s.delete({ key: '/a/', rangeEnd: '/a0', prevKv: true }))
    await both((s) => s.delete({ key: '/nothing' }))
    await both((s) => s.leaseRevoke(lease.id))
    await both((s) => s.range({ key: '/', rangeEnd: '\0' }))
    expect(remote.knownRevision).toBe(served.stateMachine.revision)
  })

  it('typed errors round-trip: same class, code, message, index and fields', async () => {
    const local = newTestStore({ historyRevisionsMax: 3 }).store
    const served = newTestStore({ historyRevisionsMax: 3 }).store
    const server = await startServer(served)
    const remote = newRemote([server.url])
    const bothFail = async (call: (store: KvStore) => Promise<unknown>, code: ErrorCode) => {
      const expected = await rejection(call(local))
      const actual = await rejection(call(remote))
      expect(errorFields(expected).code).toBe(code)
      expect(errorFields(actual)).toEqual(errorFields(expected))
    }
    for (const s of [local, served]) for (let i = 0; i < 6; i++) await s.put({ key: '/k', value: `${i}` })
    await bothFail((s) => s.leaseKeepAlive(42), 'KV_LEASE_NOT_FOUND')
    await bothFail((s) => s.leaseRevoke(42), 'KV_LEASE_NOT_FOUND')
    await bothFail((s) => s.put({ key: '/x', value: 'v', lease: 9 }), 'KV_LEASE_NOT_FOUND')
    await bothFail(
      (s) =>
        s.txn({
          compare: [],
          success: [
            { type: 'put', key: '/d', value: '1' },
            { type: 'put', key: '/d', value: '2' },
          ],
          failure: [],
        }),
      'KV_TXN_DUPLICATE_KEY',
    )
    await bothFail(
      (s) => s.put({ key: '/big', value: 'x'.repeat(kvLimits.valueBytesMax + 1) }),
      'KV_VALUE_TOO_LARGE',
    )
    await bothFail((s) => s.put({ key: 'a//b/', value: 'v' }), 'KV_KEY_INVALID')
    await bothFail((s) => s.leaseGrant({ ttlMs: -1 }), 'KV_TTL_INVALID')
    await bothFail((s) => s.put({ key: '/k/under', value: 'v' }), 'KV_NOT_DIR')
    await leaseExistsOnBoth(local, served, remote)
    // A compacted sinceRevision: the local hub throws; the remote watcher is cancelled with the same.
    const expected = errorOf(() => local.watch({ key: '/k', stream: true, sinceRevision: 1 }))
    const watcher = remote.watch({ key: '/k', stream: true, sinceRevision: 1 })
    await until(() => watcher.status === 'canceled', 'the watcher to be cancelled')
    expect(errorFields(watcher.error as KvError)).toEqual(errorFields(expected))
    expect(expected).toMatchObject({ code: 'KV_EVENT_INDEX_CLEARED', oldestIndex: 4 })
  })
})

/** KV_LEASE_EXISTS after both stores granted lease 5. */
async function leaseExistsOnBoth(local: KvStore, served: KvStore, remote: KvStore): Promise<void> {
  await local.leaseGrant({ lease: 5, ttlMs: 1_000 })
  await served.leaseGrant({ lease: 5, ttlMs: 1_000 })
  const expected = await rejection(local.leaseGrant({ lease: 5, ttlMs: 1_000 }))
  const actual = await rejection(remote.leaseGrant({ lease: 5, ttlMs: 1_000 }))
  expect(errorFields(actual)).toEqual(errorFields(expected))
  expect(errorFields(actual).code).toBe('KV_LEASE_EXISTS')
}

/** A LocalKvStore whose every call fails with one Raft error, as a member that cannot serve. */
class FailingStore extends LocalKvStore {
  readonly #code: ErrorCode
  calls = 0

  constructor(code: ErrorCode) {
    super(new KvStateMachine())
    this.#code = code
  }

  #fail(): never {
    this.calls++
    throw new CairnError(this.#code, 'as the test asked')
  }

  override async range(): Promise<never> {
    this.#fail()
  }

  override async put(): Promise<never> {
    this.#fail()
  }

  override async leaseKeepAlive(): Promise<never> {
    this.#fail()
  }
}

describe('failover of calls', () => {
  it('any call moves to the next server when the connection is refused', async () => {
    const { store } = newTestStore()
    const live = await startServer(store)
    const remote = newRemote([await deadUrl(), live.url])
    expect(await remote.put({ key: '/a', value: '1' })).toEqual({ revision: 1 })
    expect(remote.currentServer).toBe(live.url)
    expect((await remote.range({ key: '/a' })).kvs.map((kv) => kv.value)).toEqual(['1'])
  })

  it('after a connection lost mid-request, reads retry elsewhere and writes fail, applied at most once', async () => {
    const { store, sm } = newTestStore()
    const live = await startServer(store)
    let dropped = 0
    const dropper = await startRawServer((req) => {
      req.resume()
      req.on('end', () => {
        dropped++
        req.socket.destroy()
      })
    })
    const remote = newRemote([dropper, live.url])
    const error = await rejection(remote.put({ key: '/a', value: '1' }))
    expect(error).toBeInstanceOf(CairnError)
    expect((error as CairnError).code).toBe('RAFT_REQUEST_TIMEOUT')
    expect(error.message).toContain(`${dropper} failed`)
    expect(error.message).toContain('it may or may not be applied')
    expect([dropped, sm.revision]).toEqual([1, 0])
    await store.put({ key: '/a', value: 'from elsewhere' })
    const remote2 = newRemote([dropper, live.url])
    expect((await remote2.range({ key: '/a' })).kvs[0]?.value).toBe('from elsewhere')
    const { id } = await store.leaseGrant({ ttlMs: 10_000 })
    const remote3 = newRemote([dropper, live.url])
    expect((await remote3.leaseKeepAlive(id)).id).toBe(id)
  })

  it('a server that does not answer within requestTimeoutMs: reads move on, writes fail clearly', async () => {
    const { store, sm } = newTestStore()
    const live = await startServer(store)
    const silent = await startRawServer(() => {})
    const reader = newRemote([silent, live.url], {}, 200)
    expect((await reader.range({ key: '/a' })).revision).toBe(0)
    const writer = newRemote([silent, live.url], {}, 200)
    const error = await rejection(writer.put({ key: '/a', value: '1' }))
    expect((error as CairnError).code).toBe('RAFT_REQUEST_TIMEOUT')
    expect(error.message).toContain('gave no answer within 200 ms')
    expect(sm.revision).toBe(0)
  })

  it.each<[ErrorCode, boolean]>([
    ['RAFT_STOPPED', false],
    ['RAFT_REQUEST_TIMEOUT', false],
    ['RAFT_NO_LEADER', true],
    ['RAFT_NOT_MEMBER', true],
  ])('a server answering %s: reads retry elsewhere; writes retry: %s', async (code, writesRetry) => {
    const { store, sm } = newTestStore()
    const failing = new FailingStore(code)
    const bad = await startServer(failing)
    const live = await startServer(store)
    await store.put({ key: '/a', value: '1' })
    expect((await newRemote([bad.url, live.url]).range({ key: '/a' })).count).toBe(1)
    const { id } = await store.leaseGrant({ ttlMs: 10_000 })
    expect((await newRemote([bad.url, live.url]).leaseKeepAlive(id)).id).toBe(id)
    const put = newRemote([bad.url, live.url]).put({ key: '/b', value: '2' })
    if (writesRetry) {
      expect(await put).toEqual({ revision: 2 })
    } else {
      expect(((await rejection(put)) as CairnError).code).toBe(code)
      expect(sm.revision).toBe(1)
    }
  })

  it('an answer over responseBytesMax fails the read at once (another server would answer the same)', async () => {
    const { store } = newTestStore()
    for (let i = 0; i < 20; i++) await store.put({ key: `/big/${i}`, value: 'x'.repeat(1_000) })
    const [a, b] = [await startServer(store), await startServer(store)]
    const remote = newRemote([a.url, b.url], { responseBytesMax: 10_000 })
    const error = await rejection(remote.range({ key: '/big/', rangeEnd: '/big0' }))
    expect([(error as KvError).code, remote.currentServer]).toEqual(['KV_VALUE_TOO_LARGE', a.url])
    expect(error.message).toContain(`${a.url} answered more than responseBytesMax (10000 bytes)`)
    expect((await remote.range({ key: '/big/1' })).count).toBe(1)
  })

  it('KvErrors are answers, never retried', async () => {
    const { store: first } = newTestStore()
    const { store: second } = newTestStore()
    await second.leaseGrant({ lease: 42, ttlMs: 10_000 })
    const remote = newRemote([(await startServer(first)).url, (await startServer(second)).url])
    expect(((await rejection(remote.leaseKeepAlive(42))) as KvError).code).toBe('KV_LEASE_NOT_FOUND')
  })

  it('when no server can be reached the call fails with RAFT_NO_LEADER naming them', async () => {
    const servers = [await deadUrl(), await deadUrl()]
    const remote = newRemote(servers, { attemptsMax: 4 })
    const error = await rejection(remote.put({ key: '/a', value: '1' }))
    expect((error as CairnError).code).toBe('RAFT_NO_LEADER')
    expect(error.message).toContain(`no store server answered (${servers.join(', ')})`)
    expect(error.message).toContain('ECONNREFUSED')
  })
})

describe('watches', () => {
  it('a remote watch sees what a local watch sees, in order, with its status mirrored', async () => {
    const { store, sm } = newTestStore()
    await store.put({ key: '/w/before', value: '0' })
    const remote = newRemote([(await startServer(store)).url])
    const spec = { key: '/w', recursive: true, stream: true, sinceRevision: 1 }
    const local = new Collector(sm.watch(spec))
    const far = new Collector(remote.watch(spec))
    expect(far.watcher.status).toBe('syncing')
    await until(() => far.watcher.status === 'live', 'the remote watcher to be live')
    await store.txn({
      compare: [],
      success: [
        { type: 'put', key: '/w/a', value: '1' },
        { type: 'put', key: '/w/_hidden/b', value: '2' },
        { type: 'put', key: '/w/c', value: '3' },
      ],
      failure: [],
    })
    await store.put({ key: '/elsewhere', value: 'x' })
    await store.delete({ key: '/w/a' })
    await until(() => far.events.length === local.events.length, 'the remote events')
    expect(far.lines).toEqual(local.lines)
    expect(far.revisions).toEqual([1, 2, 2, 4])
    expect(far.watcher.sinceRevision).toBe(1)
  })

  it('a one-shot watch completes with its first event', async () => {
    const { store } = newTestStore()
    const remote = newRemote([(await startServer(store)).url])
    const once = new Collector(remote.watch({ key: '/k' }))
    await until(() => remote.upstreamCount === 1 && store.stateMachine.watcherCount === 1, 'the upstream')
    await store.put({ key: '/k', value: '1' })
    await store.put({ key: '/k', value: '2' })
    await until(() => once.watcher.status === 'done', 'the one-shot to complete')
    expect(once.revisions).toEqual([1])
    expect(remote.watcherCount).toBe(0)
  })

  it('live watches with the same request share one upstream; each ends alone', async () => {
    const { store, sm } = newTestStore()
    const remote = newRemote([(await startServer(store)).url])
    const spec = { key: '/s', recursive: true, stream: true }
    const a = new Collector(remote.watch(spec))
    const b = new Collector(remote.watch(spec))
    const other = new Collector(remote.watch({ ...spec, includeHidden: true }))
    expect(remote.upstreamCount).toBe(2)
    await until(() => sm.watcherCount === 2, 'two server watchers')
    await store.put({ key: '/s/1', value: '1' })
    await until(() => b.events.length === 1 && other.events.length === 1, 'the first event')
    a.watcher.cancel()
    await store.put({ key: '/s/2', value: '2' })
    await until(() => b.events.length === 2, 'the second event')
    expect([a.revisions, b.revisions, other.revisions]).toEqual([[1], [1, 2], [1, 2]])
    b.watcher.cancel()
    other.watcher.cancel()
    expect(remote.upstreamCount).toBe(0)
    await until(() => sm.watcherCount === 0, 'the server watchers to be released')
  })

  it('one-shots and watches from a revision join a live upstream of the same request when it covers them', async () => {
    const { store, sm } = newTestStore()
    const remote = newRemote([(await startServer(store)).url])
    const spec = { key: '/s', recursive: true }
    const live = new Collector(remote.watch({ ...spec, stream: true }))
    await until(() => live.watcher.status === 'live', 'the first upstream to go live')
    await store.put({ key: '/s/1', value: '1' })
    await until(() => live.events.length === 1, 'the first event')
    const once = new Collector(remote.watch(spec)) // a one-shot: joins
    const fromNext = new Collector(remote.watch({ ...spec, sinceRevision: 2 })) // covered: joins
    expect([once.watcher.status, fromNext.watcher.status]).toEqual(['live', 'live'])
    const fromPast = new Collector(remote.watch({ ...spec, sinceRevision: 1 })) // before it: its own
    expect([remote.upstreamCount, sm.watcherCount]).toEqual([2, 1])
    await store.put({ key: '/s/2', value: '2' })
    await until(() => once.watcher.status === 'done' && fromPast.watcher.status === 'done', 'the one-shots')
    await until(() => fromNext.watcher.status === 'done', 'the one-shot from 2')
    expect([live.revisions, once.revisions, fromNext.revisions, fromPast.revisions]).toEqual([
      [1, 2],
      [2],
      [2],
      [1],
    ])
    live.watcher.cancel()
    await until(() => remote.upstreamCount === 0 && sm.watcherCount === 0, 'every upstream to close')
  })

  it('lastChange says whether a watch from a revision would have seen anything, judged linearizably', async () => {
    const { store } = newTestStore()
    const remote = newRemote([(await startServer(store)).url])
    await store.put({ key: '/c/a', value: '1' })
    await store.put({ key: '/x', value: '2' })
    await store.put({ key: '/c/_hidden', value: '3' })
    const spec = { key: '/c', recursive: true, includeHidden: false }
    expect(await remote.lastChange(spec, 1)).toEqual({ revision: 3, lastRevision: 1 })
    expect(await remote.lastChange(spec, 2)).toEqual({ revision: 3, lastRevision: 0 })
    expect(await remote.lastChange({ ...spec, includeHidden: true }, 2)).toEqual({
      revision: 3,
      lastRevision: 3,
    })
    expect(await remote.lastChange(spec, 9)).toEqual({ revision: 3, lastRevision: 0 })
    expect(remote.knownRevision).toBe(3)
  })

  it('lastChange from a compacted revision is KV_EVENT_INDEX_CLEARED, as a watch from there', async () => {
    const sm = new KvStateMachine({ historyRevisionsMax: 2 })
    const store = new LocalKvStore(sm)
    const remote = newRemote([(await startServer(store)).url])
    for (const value of ['1', '2', '3', '4']) await store.put({ key: '/k', value })
    const error = (await rejection(
      remote.lastChange({ key: '/k', recursive: false, includeHidden: false }, 1),
    )) as KvError
    expect([error.code, error.oldestIndex]).toEqual(['KV_EVENT_INDEX_CLEARED', 3])
  })

  it('a consumer that does not take is cancelled as too slow; the others sharing its upstream go on', async () => {
    const { store } = newTestStore()
    const remote = newRemote([(await startServer(store)).url], { watcherEventsMax: 4 })
    const spec = { key: '/s', recursive: true, stream: true }
    const slow = remote.watch(spec)
    const fast = new Collector(remote.watch(spec))
    await until(() => fast.watcher.status === 'live', 'live')
    for (let i = 0; i < 10; i++) await store.put({ key: `/s/${i}`, value: `${i}` })
    await until(() => fast.events.length === 10, 'every event for the fast consumer')
    expect(slow.status).toBe('canceled')
    expect(slow.error?.code).toBe('KV_WATCHER_SLOW')
    expect(slow.take().map((e) => e.revision)).toEqual([1, 2, 3, 4])
    expect(fast.revisions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  })
})

describe('watches across server loss', () => {
  it('sees every event in order, no gap and no duplicate, across a graceful close and a crash', async () => {
    const { store, sm } = newTestStore()
    const [a, b, c] = [await startServer(store), await startServer(store), await startServer(store)]
    const remote = newRemote([a.url, b.url, c.url])
    const far = new Collector(remote.watch({ key: '/f', recursive: true, stream: true }))
    await until(() => far.watcher.status === 'live', 'live')
    const expected = new Collector(sm.watch({ key: '/f', recursive: true, stream: true }))
    for (let i = 1; i <= 90; i++) {
      if (i % 3 === 0) {
        const success = [0, 1, 2].map((j) => ({ type: 'put' as const, key: `/f/t${i}/${j}`, value: `${i}` }))
        await store.txn({ compare: [], success, failure: [] })
      } else {
        await store.put({ key: `/f/k${i % 7}`, value: `${i}` })
      }
      if (i === 30) await a.stop()
      if (i === 60) b.kill()
      await turn()
    }
    await until(() => far.events.length >= expected.events.length, 'every event')
    await turn()
    expect(far.lines).toEqual(expected.lines)
    expect(expected.events.length).toBe(150)
    expect(remote.currentServer).toBe(c.url)
    expect(far.watcher.status).toBe('live')
  })

  it('a live watch broken before its first stream opened misses nothing written meanwhile', async () => {
    const { store } = newTestStore()
    const held: ServerResponse[] = []
    const hanging = await startRawServer((_req, res) => held.push(res))
    const live = await startServer(store)
    const remote = newRemote([hanging, live.url])
    const far = new Collector(remote.watch({ key: '/l', recursive: true, stream: true }))
    await until(() => held.length === 1, 'the watch waiting on the first server')
    // Written while the watch has no stream yet; then that server dies.
    await store.put({ key: '/l/a', value: '1' })
    for (const res of held) res.socket?.destroy()
    await until(() => far.watcher.status === 'live', 'live on the second server')
    await store.put({ key: '/l/b', value: '2' })
    await until(() => far.events.length >= 2, 'both events')
    expect(far.events.map((e) => [e.revision, e.node.key])).toEqual([
      [1, '/l/a'],
      [2, '/l/b'],
    ])
  })

  it('resumes inside a revision cut between two of its events, without repeating them', async () => {
    const { store, sm } = newTestStore()
    await store.put({ key: '/m/x', value: '0' })
    const three = ['a', 'b', 'c'].map((k) => ({ type: 'put' as const, key: `/m/${k}`, value: k }))
    await store.txn({ compare: [], success: three, failure: [] })
    await store.put({ key: '/m/d', value: 'd' })
    const history = sm.watch({ key: '/m', recursive: true, stream: true, sinceRevision: 2 }).take()
    expect(history.map((e) => e.key)).toEqual(['/m/a', '/m/b', '/m/c', '/m/d'])
    const cut = await startRawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-cairn-since-revision': '2' })
      res.write(`${watchLineOf(history[0] as KvEvent)}\n${watchLineOf(history[1] as KvEvent)}\n`)
      setTimeout(() => res.socket?.destroy(), 20)
    })
    const remote = newRemote([cut, (await startServer(store)).url])
    const far = new Collector(remote.watch({ key: '/m', recursive: true, stream: true, sinceRevision: 2 }))
    await until(() => far.events.length >= 4 && far.watcher.status === 'live', 'the resumed stream')
    await store.put({ key: '/m/e', value: 'e' })
    await until(() => far.events.length === 5, 'the next event')
    expect(far.events.map((e) => `${e.revision}${e.key}`)).toEqual([
      '2/m/a',
      '2/m/b',
      '2/m/c',
      '3/m/d',
      '4/m/e',
    ])
  })

  it('a quiet watch whose resume point was compacted is cancelled as a local one would be', async () => {
    const { store, sm } = newTestStore({ historyRevisionsMax: 5 })
    const a = await startServer(store, { heartbeatMs: 1_000_000 })
    const b = await startServer(store)
    const remote = newRemote([a.url, b.url])
    const far = new Collector(remote.watch({ key: '/q', stream: true }))
    await until(() => far.watcher.status === 'live', 'live')
    await store.put({ key: '/q', value: '1' })
    await until(() => far.events.length === 1, 'the first event')
    for (let i = 0; i < 20; i++) await store.put({ key: '/other', value: `${i}` })
    // Its resume point is revision 1 (it cannot know that revision 1 had no second event for it).
    const expected = errorOf(() => sm.watch({ key: '/q', stream: true, sinceRevision: 1 }))
    a.kill()
    await until(() => far.watcher.status === 'canceled', 'the watcher to be cancelled')
    expect(errorFields(far.watcher.error as KvError)).toEqual(errorFields(expected))
    expect(expected).toMatchObject({ code: 'KV_EVENT_INDEX_CLEARED', oldestIndex: 17, index: 21 })
  })

  it('heartbeats carry the resume point forward, so a quiet watch resumes past the compaction', async () => {
    const { store } = newTestStore({ historyRevisionsMax: 5 })
    const a = await startServer(store, { heartbeatMs: 20 })
    const b = await startServer(store)
    const remote = newRemote([a.url, b.url])
    const far = new Collector(remote.watch({ key: '/q', stream: true }))
    await until(() => far.watcher.status === 'live', 'live')
    await store.put({ key: '/q', value: '1' })
    for (let i = 0; i < 20; i++) await store.put({ key: '/other', value: `${i}` })
    await until(() => remote.knownRevision === 21, 'a heartbeat at the head')
    a.kill()
    await until(() => remote.currentServer === b.url && far.watcher.status === 'live', 'the resumed stream')
    await store.put({ key: '/q', value: '2' })
    await until(() => far.events.length === 2, 'the next event')
    expect(far.revisions).toEqual([1, 22])
  })

  it('a stream that goes silent past watchIdleMsMax is dropped and resumed elsewhere', async () => {
    const { store } = newTestStore()
    let silentStreams = 0
    const silent = await startRawServer((_req, res) => {
      silentStreams++
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-cairn-since-revision': '1' })
      res.flushHeaders()
    })
    const remote = newRemote([silent, (await startServer(store)).url], { watchIdleMsMax: 200 })
    const far = new Collector(remote.watch({ key: '/i', stream: true }))
    await until(() => silentStreams === 1, 'the silent stream')
    await store.put({ key: '/i', value: '1' })
    await until(() => far.events.length === 1, 'the event, through the other server')
    expect(far.watcher.status).toBe('live')
  })

  it('a server that answers the head and hangs up at once is retried with backoff, not in a loop', async () => {
    let streams = 0
    const flapping = await startRawServer((_req, res) => {
      streams++
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-cairn-since-revision': '1' })
      res.end()
    })
    const remote = newRemote([flapping], { retryDelayMs: 10, watchResumeMsMax: 400 })
    const watcher = remote.watch({ key: '/k', stream: true })
    await until(() => watcher.status === 'canceled', 'the watcher to give up')
    expect(watcher.error?.code).toBe('KV_WATCHER_CLEARED')
    expect(streams).toBeGreaterThan(2)
    expect(streams).toBeLessThan(12) // 0, 10, 20, 40, 80, 160 ms... within 400 ms
  })

  it('a watch no server serves for watchResumeMsMax is cancelled with KV_WATCHER_CLEARED', async () => {
    const remote = newRemote([await deadUrl()], { watchResumeMsMax: 200 })
    const watcher = remote.watch({ key: '/k', stream: true })
    await until(() => watcher.status === 'canceled', 'the watcher to give up')
    expect(watcher.error?.code).toBe('KV_WATCHER_CLEARED')
    expect(watcher.error?.message).toContain('no store server served the watch for 200 ms')
    expect(remote.upstreamCount).toBe(0)
  })
})

describe("forward (a client agent sending another surface's request)", () => {
  const rangeOf = (key: string, idempotent: boolean) => ({
    method: 'POST',
    path: '/_cairn/store/v1/range',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
    idempotent,
  })

  it("answers with the server's whole reply, after moving past a server that refuses connections", async () => {
    const { store } = newTestStore()
    await store.put({ key: '/f', value: 'v' })
    const live = await startServer(store)
    const remote = newRemote([await deadUrl(), live.url])
    const answer = await remote.forward(rangeOf('/f', false))
    expect([answer.statusCode, answer.server]).toEqual([200, live.url])
    expect(JSON.parse(answer.body.toString()).kvs[0].value).toBe('v')
  })

  it('moves on after a server says it did not propose (X-Cairn-Error-Code), even for a write', async () => {
    const { store } = newTestStore()
    let refused = 0
    const noLeader = await startRawServer((_req, res) => {
      refused++
      res.writeHead(500, { 'content-type': 'application/json', 'x-cairn-error-code': 'RAFT_NO_LEADER' })
      res.end('{"errorCode":300}')
    })
    const live = await startServer(store)
    const remote = newRemote([noLeader, live.url])
    const answer = await remote.forward(rangeOf('/f', false))
    expect([answer.statusCode, answer.server, refused]).toEqual([200, live.url, 1])
  })

  it('a non-idempotent request whose connection broke fails clearly; an idempotent one moves on', async () => {
    const { store } = newTestStore()
    let cut = 0
    const cutter = await startRawServer((req) => {
      cut++
      req.socket.destroy()
    })
    const live = await startServer(store)
    const remote = newRemote([cutter, live.url])
    const error = (await rejection(remote.forward(rangeOf('/f', false)))) as CairnError
    expect(error.code).toBe('RAFT_REQUEST_TIMEOUT')
    expect(error.message).toContain('may or may not be applied')
    const answer = await remote.forward(rangeOf('/f', true))
    expect(answer.statusCode).toBe(200)
    expect(cut).toBeGreaterThanOrEqual(1)
  })

  it('returns the last answer when every server answered 5xx to an idempotent request', async () => {
    const failing = await startRawServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('busy')
    })
    const remote = newRemote([failing], { attemptsMax: 3 })
    const answer = await remote.forward(rangeOf('/f', true))
    expect([answer.statusCode, answer.body.toString()]).toEqual([503, 'busy'])
  })
})

describe('limits and close', () => {
  it('local watchers and upstream streams are bounded (KV_WATCHERS_MAX)', async () => {
    const remote = newRemote([await deadUrl()], { watchersMax: 4, watchStreamsMax: 2 })
    expect(errorOf(() => remote.watch({ key: '/a'.repeat(5_000) })).code).toBe('KV_KEY_INVALID')
    remote.watch({ key: '/a', stream: true })
    remote.watch({ key: '/a', stream: true }) // shares the first upstream
    remote.watch({ key: '/b', stream: true, sinceRevision: 5 })
    expect([remote.watcherCount, remote.upstreamCount]).toEqual([3, 2])
    const noStream = errorOf(() => remote.watch({ key: '/c', stream: true }))
    expect([noStream.code, noStream.etcdCause]).toEqual([
      'KV_WATCHERS_MAX',
      'watchStreamsMax: 2 upstream watches',
    ])
    remote.watch({ key: '/a', stream: true })
    expect(errorOf(() => remote.watch({ key: '/a', stream: true })).etcdCause).toBe('4 watchers')
  })

  it('close() cancels every watcher, releases the server side and refuses further calls', async () => {
    const { store, sm } = newTestStore()
    const remote = newRemote([(await startServer(store)).url])
    const watcher = remote.watch({ key: '/k', stream: true })
    await until(() => watcher.status === 'live', 'live')
    await remote.close()
    expect([watcher.status, watcher.error?.code]).toEqual(['canceled', 'KV_WATCHER_CLEARED'])
    await until(() => sm.watcherCount === 0, 'the server watcher to be released')
    expect(((await rejection(remote.range({ key: '/k' }))) as CairnError).code).toBe('RAFT_STOPPED')
    expect(errorOf(() => remote.watch({ key: '/k' })).code).toBe('KV_WATCHER_CLEARED')
  })
})
