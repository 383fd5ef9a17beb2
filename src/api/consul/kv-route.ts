/**
 * The Consul KV endpoints, GET/PUT/DELETE /v1/kv/<key>, and the store plumbing the session and txn
 * routes share: blocking reads over store watches (answerStoreQuery), the optimistic read of keys
 * (readKeyViews) and the error replies for codes the shared table does not map (kvErrorReply).
 *
 * Reads (docs/api-consul-kv.md):
 * - `?stale` reads this member's state; default and `?consistent` wait for deps.readBarrier first.
 *   The value and lock ranges are read together and read again (up to pairedReadAttemptsMax times)
 *   until both report one revision, so an entry's Session is from the same moment as its value.
 * - X-Consul-Index is the store revision the answer was read at (Consul uses the largest
 *   ModifyIndex under the prefix); every KV, lock and session change bumps it.
 * - `?index=N` blocks: a store watch from revision N + 1 on the value and lock keys (a prefix read
 *   watches both directories and filters by the escaped prefix, since a Consul prefix need not end
 *   at a segment boundary). The first matching event ends the wait and the answer is read again
 *   (its revision, >= the event's, is the new index); otherwise the wait ends after `wait` plus a
 *   jitter of up to wait/16 with index N. N ahead of the store, or N + 1 older than the history
 *   kept, answers at once with the current revision. A wait ends when its client goes away or the
 *   server closes (`closing`).
 *
 * Writes: read the key's views (linearizable), plan (kv-records.ts), submit one txn whose compares
 * guard the read; if a guard failed, read and plan again, at most writeAttemptsMax times
 * (CONSUL_WRITE_CONTENDED, 503, after that). A failed condition of the request itself (cas, a lock
 * held by another session, lock-delay) answers `false`, as Consul does.
 *
 * Invariants: a route never throws past its error reply; nothing is written before every parameter
 * and the body are validated; a blocking wait holds no watcher after it answers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CairnError, isCairnError } from '../../errors.ts'
import { isKvError } from '../../kv/kv-error.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { KeyValue, RangeRequest, RangeResult } from '../../kv/mvcc.ts'
import type { Watcher } from '../../kv/watcher.ts'
import type { ConsulApiDeps } from './deps.ts'
import {
  consulErrorReply,
  invalid,
  queryValue,
  type ReadParams,
  readParams,
  setReadHeaders,
  settle,
} from './http.ts'
import {
  compareKeys,
  consulKeyOf,
  entriesOf,
  type KeyView,
  KvTxnPlan,
  keyProblem,
  keyViewOf,
  kvDir,
  kvPrefixRange,
  kvStoreKey,
  kvValueBytesMax,
  type LockOwner,
  lockPrefixRange,
  lockStoreKey,
  locksDir,
  parseFlags,
  renderEntry,
  type Step,
} from './kv-records.ts'
import { lockDelaysOf, lockOwnerOf, readSession } from './sessions.ts'

/** Reads and transactions one KV write tries before it reports contention. */
export const writeAttemptsMax = 8
/** Reads of a value range and a lock range until both come from one revision. */
const pairedReadAttemptsMax = 4

type Query = Record<string, string | string[] | undefined>

export function registerKvRoutes(app: FastifyInstance, deps: ConsulApiDeps, closing: AbortSignal): void {
  app.get('/v1/kv/*', async (request, reply) => {
    try {
      return await handleGet(request, reply, deps, closing)
    } catch (error) {
      return kvErrorReply(reply, error)
    }
  })
  app.put('/v1/kv/*', async (request, reply) => {
    try {
      return await handlePut(request, reply, deps)
    } catch (error) {
      return kvErrorReply(reply, error)
    }
  })
  app.delete('/v1/kv/*', async (request, reply) => {
    try {
      return await handleDelete(request, reply, deps)
    } catch (error) {
      return kvErrorReply(reply, error)
    }
  })
}

// ---- shared plumbing ----

/** Answers errors, mapping the codes the shared table (http.ts) does not know. */
export function kvErrorReply(reply: FastifyReply, error: unknown): FastifyReply {
  const text = (status: number, message: string) =>
    reply.code(status).type('text/plain; charset=utf-8').send(message)
  if (isCairnError(error, 'CONSUL_WRITE_CONTENDED')) return text(503, error.message)
  if (isKvError(error, 'KV_TXN_DUPLICATE_KEY')) return text(409, error.message)
  return consulErrorReply(reply, error)
}

function missingKey(reply: FastifyReply): FastifyReply {
  return reply.code(400).type('text/plain; charset=utf-8').send('Missing key name')
}

/** The Consul key of a /v1/kv request (fastify has URL-decoded the path). */
function keyOf(request: FastifyRequest): string {
  const key = (request.params as Record<string, string | undefined>)['*'] ?? ''
  const problem = keyProblem(key)
  if (problem !== undefined) throw invalid(problem)
  return key
}

/** Reads two ranges until both report the same revision (a consistent pair). */
async function readPair(
  store: KvStore,
  a: RangeRequest,
  b: RangeRequest,
  serializable: boolean,
): Promise<[RangeResult, RangeResult]> {
  const options = { serializable }
  let pair = await Promise.all([store.range(a, options), store.range(b, options)])
  for (let i = 1; i < pairedReadAttemptsMax && pair[0].revision !== pair[1].revision; i++) {
    pair = await Promise.all([store.range(a, options), store.range(b, options)])
  }
  return pair
}

/** Linearizable views of Consul keys (value and lock key each), for a plan. */
export async function readKeyViews(store: KvStore, keys: Iterable<string>): Promise<KeyView[]> {
  const distinct = [...new Set(keys)]
  const reads = await Promise.all(
    distinct.map((key) => readPair(store, { key: kvStoreKey(key) }, { key: lockStoreKey(key) }, false)),
  )
  return distinct.map((key, i) => {
    const [kv, lock] = reads[i] as [RangeResult, RangeResult]
    return keyViewOf(key, kv.kvs[0], lock.kvs[0])
  })
}

export interface WatchTarget {
  key: string
  recursive: boolean
  /** A recursive watch reports only events whose key starts with this. */
  prefix?: string
}

export interface StoreAnswer {
  /** The store revision it was read at. */
  revision: number
  send(reply: FastifyReply): FastifyReply
}

export interface StoreQuery {
  /** What a change to the answer touches. */
  watches: readonly WatchTarget[]
  /** Reads the answer from this member's state (consistency was settled before). */
  read(): Promise<StoreAnswer>
}

/** Answers a read, blocking on `?index` as the file header describes. */
export async function answerStoreQuery(
  reply: FastifyReply,
  deps: ConsulApiDeps,
  params: ReadParams,
  query: StoreQuery,
  closing: AbortSignal,
): Promise<FastifyReply> {
  await settle(deps, params.consistency)
  let answer = await query.read()
  let index = answer.revision
  const asked = params.index
  if (asked !== undefined && asked > 0 && asked <= answer.revision) {
    const random = deps.random ?? Math.random
    const waitMs = params.waitMs + Math.floor(random() * (params.waitMs / 16))
    const outcome = await waitForChange(deps.store, query.watches, asked + 1, waitMs, reply, closing)
    if (outcome === 'changed') {
      answer = await query.read()
      index = answer.revision
    } else if (outcome !== 'cleared') {
      index = asked
    }
  }
  setReadHeaders(reply, deps, index, params.consistency)
  return answer.send(reply)
}

type WaitOutcome = 'changed' | 'timeout' | 'aborted' | 'cleared'

/** Waits for an event on one of the targets from revision `since` on. */
async function waitForChange(
  store: KvStore,
  targets: readonly WatchTarget[],
  since: number,
  waitMs: number,
  reply: FastifyReply,
  closing: AbortSignal,
): Promise<WaitOutcome> {
  const watchers: Watcher[] = []
  try {
    for (const t of targets) {
      watchers.push(
        store.watch({
          key: t.key,
          recursive: t.recursive,
          stream: true,
          includeHidden: true,
          sinceRevision: since,
        }),
      )
    }
  } catch (error) {
    for (const w of watchers) w.cancel()
    if (isKvError(error, 'KV_EVENT_INDEX_CLEARED')) return 'cleared'
    throw error
  }
  return new Promise<WaitOutcome>((resolve) => {
    let settled = false
    let scheduled = false
    const finish = (outcome: WaitOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reply.raw.off('close', onClose)
      closing.removeEventListener('abort', onClose)
      for (const w of watchers) {
        w.setListener(undefined)
        w.cancel()
      }
      resolve(outcome)
    }
    const onClose = (): void => finish('aborted')
    const check = (): void => {
      scheduled = false
      if (!settled && anyMatch(watchers, targets)) finish('changed')
    }
    const timer = setTimeout(() => finish('timeout'), waitMs)
    reply.raw.once('close', onClose)
    closing.addEventListener('abort', onClose, { once: true })
    if (closing.aborted) {
      finish('aborted')
      return
    }
    for (const w of watchers) {
      w.setListener(() => {
        if (scheduled || settled) return
        scheduled = true
        queueMicrotask(check)
      })
    }
    check()
  })
}

/** Takes every watcher's events; whether one matches its target (or a watcher was cancelled by the hub). */
function anyMatch(watchers: readonly Watcher[], targets: readonly WatchTarget[]): boolean {
  let matched = false
  for (const [i, w] of watchers.entries()) {
    const prefix = targets[i]?.prefix
    for (let events = w.take(); events.length > 0; events = w.take()) {
      if (prefix === undefined || events.some((e) => e.key.startsWith(prefix))) matched = true
    }
    // Cancelled by the hub (fell behind, history cleared, store closing): answer now.
    if (w.status === 'canceled' || w.status === 'done') matched = true
  }
  return matched
}

// ---- GET ----

async function handleGet(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
  closing: AbortSignal,
): Promise<FastifyReply> {
  const query = request.query as Query
  const key = keyOf(request)
  const params = readParams(query)
  const keysOnly = query.keys !== undefined
  if (keysOnly) {
    const separator = queryValue(query, 'separator') ?? queryValue(query, 'seperator') ?? ''
    return answerStoreQuery(reply, deps, params, keysQuery(deps.store, key, separator), closing)
  }
  if (query.recurse !== undefined)
    return answerStoreQuery(reply, deps, params, treeQuery(deps.store, key), closing)
  if (key === '') return missingKey(reply)
  return answerStoreQuery(reply, deps, params, entryQuery(deps.store, key, query.raw !== undefined), closing)
}

// Reads are serializable: answerStoreQuery settles the consistency mode before each one.

function entryQuery(store: KvStore, key: string, raw: boolean): StoreQuery {
  const kvKey = kvStoreKey(key)
  const lockKey = lockStoreKey(key)
  return {
    watches: [
      { key: kvKey, recursive: false },
      { key: lockKey, recursive: false },
    ],
    read: async () => {
      const [kv, lock] = await readPair(store, { key: kvKey }, { key: lockKey }, true)
      const entry = entriesOf(kv.kvs, lock.kvs)[0]
      return {
        revision: kv.revision,
        send: (r) => {
          if (entry === undefined) return r.code(404).send()
          if (raw) return sendRaw(r, Buffer.from(entry.record.v, 'base64'))
          return r.type('application/json').send(`[${renderEntry(entry, true)}]`)
        },
      }
    },
  }
}

function prefixWatches(prefix: string): WatchTarget[] {
  return [
    { key: kvDir, recursive: true, prefix: kvPrefixRange(prefix).key },
    { key: locksDir, recursive: true, prefix: lockPrefixRange(prefix).key },
  ]
}

function treeQuery(store: KvStore, prefix: string): StoreQuery {
  return {
    watches: prefixWatches(prefix),
    read: async () => {
      const [kv, lock] = await readPair(store, kvPrefixRange(prefix), lockPrefixRange(prefix), true)
      const entries = entriesOf(kv.kvs, lock.kvs)
      const body = `[${entries.map((e) => renderEntry(e, true)).join(',')}]`
      return {
        revision: kv.revision,
        send: (r) => (entries.length === 0 ? r.code(404).send() : r.type('application/json').send(body)),
      }
    },
  }
}

function keysQuery(store: KvStore, prefix: string, separator: string): StoreQuery {
  return {
    watches: prefixWatches(prefix),
    read: async () => {
      const kv = await store.range({ ...kvPrefixRange(prefix), keysOnly: true }, { serializable: true })
      const keys = listKeys(kv.kvs, prefix, separator)
      return {
        revision: kv.revision,
        // Consul lists [] at the root, and 404 for a prefix with no keys.
        send: (r) =>
          keys.length === 0 && prefix !== ''
            ? r.code(404).send()
            : r.type('application/json').send(JSON.stringify(keys)),
      }
    },
  }
}

/** Consul's ?raw: the bytes as text/plain, with the headers that stop a browser from running them. */
function sendRaw(reply: FastifyReply, body: Buffer): FastifyReply {
  return reply
    .type('text/plain')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', 'sandbox')
    .send(body)
}

/** Consul's ListKeys: keys under `prefix`, each cut after the first `separator` past the prefix. */
export function listKeys(kvs: readonly KeyValue[], prefix: string, separator: string): string[] {
  const keys = kvs.map((kv) => consulKeyOf(kv.key)).filter((k): k is string => k !== undefined)
  keys.sort(compareKeys)
  if (separator === '') return keys
  const out: string[] = []
  for (const key of keys) {
    const at = key.indexOf(separator, prefix.length)
    const listed = at < 0 ? key : key.slice(0, at + separator.length)
    if (out[out.length - 1] !== listed) out.push(listed)
  }
  return out
}

// ---- PUT and DELETE ----

/** The request body as bytes (the plugin's raw parser gives a Buffer; a string is UTF-8). */
function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0)
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (body instanceof Uint8Array) return Buffer.from(body)
  throw invalid('the request body must be the raw value')
}

/** A uint64 query parameter (Consul's strconv.ParseUint); undefined when absent. */
function queryUint64(query: Query, name: string): bigint | undefined {
  const text = queryValue(query, name)
  if (text === undefined) return undefined
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) > (1n << 64n) - 1n) {
    throw invalid(`invalid ${name} parameter: ${JSON.stringify(text.slice(0, 64))}`)
  }
  return BigInt(text)
}

/** Consul answers 400 when flags that do not compose are given together. */
function conflicting(query: Query, names: readonly string[]): boolean {
  return names.filter((name) => query[name] !== undefined).length > 1
}

function conflictReply(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : ''
  return reply.code(400).type('text/plain; charset=utf-8').send(`Conflicting flags: ${search}\n`)
}

function sendBool(reply: FastifyReply, value: boolean): FastifyReply {
  return reply.type('application/json').send(value ? 'true' : 'false')
}

async function handlePut(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
): Promise<FastifyReply> {
  const query = request.query as Query
  const key = keyOf(request)
  if (key === '') return missingKey(reply)
  if (conflicting(query, ['cas', 'acquire', 'release'])) return conflictReply(request, reply)
  const flagsText = queryValue(query, 'flags')
  const flags = flagsText === undefined ? '0' : parseFlags(flagsText)
  if (flags === undefined)
    throw invalid(`invalid flags parameter: ${JSON.stringify(flagsText?.slice(0, 64))}`)
  const cas = queryUint64(query, 'cas')
  const body = bodyBytes(request.body)
  if (body.length > kvValueBytesMax) {
    return reply
      .code(413)
      .type('text/plain; charset=utf-8')
      .send(`Request body(${body.length} bytes) too large, max size: ${kvValueBytesMax} bytes`)
  }
  const value = body.toString('base64')
  const acquire = queryValue(query, 'acquire')
  const release = queryValue(query, 'release')?.toLowerCase() // session ids are stored lower-case
  if (acquire !== undefined) {
    if (lockDelaysOf(deps).blocks(key, (deps.clock ?? Date.now)())) return sendBool(reply, false)
    const ok = await applyKvWrite(deps, key, acquire, (plan, owner) =>
      plan.lock(key, value, flags, acquire, owner),
    )
    return sendBool(reply, ok)
  }
  const ok = await applyKvWrite(deps, key, undefined, (plan) => {
    if (release !== undefined) return plan.unlock(key, value, flags, release)
    if (cas !== undefined) return plan.cas(key, value, flags, cas)
    return plan.set(key, value, flags)
  })
  return sendBool(reply, ok)
}

async function handleDelete(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ConsulApiDeps,
): Promise<FastifyReply> {
  const query = request.query as Query
  const key = keyOf(request)
  if (conflicting(query, ['recurse', 'cas'])) return conflictReply(request, reply)
  const recurse = query.recurse !== undefined
  if (!recurse && key === '') return missingKey(reply)
  const cas = queryUint64(query, 'cas')
  if (cas !== undefined) {
    return sendBool(reply, await applyKvWrite(deps, key, undefined, (plan) => plan.deleteCas(key, cas)))
  }
  // Blind deletes: no read, no compare, so they cannot lose a race.
  const plan = new KvTxnPlan([])
  if (recurse) plan.deleteTree(key)
  else plan.delete(key)
  await deps.store.txn(plan.request())
  return sendBool(reply, true)
}

/**
 * One single-key KV write: read, plan, submit, retry on a failed guard. Returns false when the
 * request's own condition failed. `sessionId` (acquire) is read with the key and must exist.
 */
async function applyKvWrite(
  deps: ConsulApiDeps,
  key: string,
  sessionId: string | undefined,
  plan: (plan: KvTxnPlan, owner: LockOwner | undefined) => Step,
): Promise<boolean> {
  const store = deps.store
  for (let attempt = 0; attempt < writeAttemptsMax; attempt++) {
    const [views, session] = await Promise.all([
      readKeyViews(store, [key]),
      sessionId === undefined ? undefined : readSession(store, sessionId),
    ])
    if (sessionId !== undefined && session === undefined) {
      throw new CairnError('SESSION_NOT_FOUND', `invalid session ${JSON.stringify(sessionId.slice(0, 64))}`)
    }
    const txn = new KvTxnPlan(views)
    const step = plan(txn, session === undefined ? undefined : lockOwnerOf(session))
    if (!step.ok) return false
    if (txn.writes === 0) return true
    if ((await store.txn(txn.request())).succeeded) return true
  }
  throw new CairnError('CONSUL_WRITE_CONTENDED', `key ${JSON.stringify(key.slice(0, 256))}`)
}
