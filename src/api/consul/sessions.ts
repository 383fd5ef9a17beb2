/**
 * Consul sessions as records in the keyspace, each bound to a lease, and the lock-delay an agent
 * keeps in memory.
 *
 * Layout: `/_cairn/consul/sessions/<id>` holds a SessionRecord (Consul's fields plus the lease it is
 * attached to); `<id>` is a random UUID v4, lower-case. CreateIndex and ModifyIndex are the key's
 * revisions (a session is never rewritten, so they are equal).
 *
 * Lifetime: the session key, its lock keys (kv-records.ts) and, for Behavior "delete", the value
 * keys it holds are all attached to ONE lease, so the keyspace ends them together, atomically,
 * when the lease goes:
 * - With a TTL (10s..86400s): its own lease of exactly that TTL; renew is a lease keep-alive. Consul
 *   may take up to 2 x TTL to reap; Cairn ends it at TTL (the leader's expiry timer).
 * - Without a TTL, NodeChecks including serfHealth (the default) and a node that has a machine key
 *   (an agent's liveness, catalog/records.ts): the machine key's lease. The session ends when its
 *   node's agent fails, as Consul's serfHealth does.
 * - Otherwise: its own lease of sessionLeaseMsWithoutTtl (about 285 years), so it lives until it is
 *   destroyed.
 * Destroy revokes an own lease; a session on a machine lease is deleted with its lock keys in one
 * transaction that compares each lock key still names it.
 *
 * Lock-delay is not replicated (in Consul neither): each agent keeps, in memory and bounded by
 * lockDelayKeysMax, the keys whose lock ended with its session, for min(LockDelay, 60s). It learns
 * them from destroys it serves and from a watch on the sessions and locks directories (a session
 * key and its lock keys deleted in one revision: expiry, revocation, destroy elsewhere). An agent
 * that was down, or whose watch was cancelled (fell behind), misses those delays.
 *
 * Invariants:
 * - A session key exists exactly while its lease does; its lease id is in the record and equals
 *   the key's lease.
 * - Only NodeChecks [] or ["serfHealth"] and no ServiceChecks are accepted: a session bound to a
 *   check Cairn cannot yet watch is refused rather than silently never invalidated.
 */
import { randomUUID } from 'node:crypto'
import { parseDurationNs } from '../../catalog/durations.ts'
import { machineKey, nameProblem, nodeKey } from '../../catalog/records.ts'
import { machineCheckId } from '../../catalog/state.ts'
import { CairnError } from '../../errors.ts'
import type { KvEvent } from '../../kv/events.ts'
import { isKvError } from '../../kv/kv-error.ts'
import type { KvStore, ReadOptions } from '../../kv/kv-store.ts'
import { kvLimits } from '../../kv/limits.ts'
import type { Compare, KeyValue, TxnOp, TxnRequest } from '../../kv/mvcc.ts'
import type { Watcher } from '../../kv/watcher.ts'
import type { ConsulApiDeps } from './deps.ts'
import { invalid } from './http.ts'
import {
  consulDir,
  consulKeyOf,
  isLockStoreKey,
  kvStoreKey,
  type LockOwner,
  lockStoreKey,
  locksDir,
} from './kv-records.ts'

export const sessionsDir = `${consulDir}/sessions`
/** Consul's session_ttl_min default and its SessionTTLMax. */
export const sessionTtlMsMin = 10_000
export const sessionTtlMsMax = 86_400_000
export const lockDelayMsDefault = 15_000
/** Consul's MaxLockDelay: a longer LockDelay is capped to it. */
export const lockDelayMsMax = 60_000
/** Consul reads a LockDelay below 1000 (ns) as seconds: users write 15 meaning 15s. */
const lockDelaySecondsBelowNs = 1000n
export const sessionNameBytesMax = 256
/** The lease of a session without a TTL or a machine: as long as a lease may be. */
export const sessionLeaseMsWithoutTtl = kvLimits.ttlMsMax
/** Reads and transactions a create or destroy tries before it reports contention. */
export const sessionWriteAttemptsMax = 8
/** Lock keys one destroy transaction deletes (each costs a compare and up to two deletes). */
const destroyLocksPerTxnMax = 40
/** Transactions one destroy of a machine-bound session may take (lost races included): 10,000 locks. */
const destroyRoundsMax = sessionWriteAttemptsMax + 250
/** Keys under lock-delay this agent remembers; past it the oldest entry is dropped. */
export const lockDelayKeysMax = 10_000

export interface SessionRecord {
  ID: string
  Name: string
  Node: string
  /** Nanoseconds, as Consul's JSON has it. */
  LockDelay: number
  Behavior: 'release' | 'delete'
  /** As given ('' for none). */
  TTL: string
  NodeChecks: string[]
  ServiceChecks: { ID: string }[] | null
  /** The lease the session key is attached to. */
  Lease: number
  /** The lease is the node's machine lease (not the session's own). */
  LeaseOfMachine: boolean
}

export interface StoredSession {
  record: SessionRecord
  createRevision: number
  modRevision: number
}

/** A create request after validation. */
export interface SessionSpec {
  name: string
  node: string
  lockDelayNs: bigint
  behavior: 'release' | 'delete'
  ttl: string
  ttlMs: number | undefined
  nodeChecks: string[]
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A session id in canonical form (lower-case UUID), or undefined if `id` is not one. */
export function normalizeSessionId(id: string): string | undefined {
  const lower = id.toLowerCase()
  return uuidPattern.test(lower) ? lower : undefined
}

export function sessionStoreKey(id: string): string {
  return `${sessionsDir}/${id}`
}

/** GET /v1/session/* JSON of one session. */
export function sessionView(s: StoredSession): Record<string, unknown> {
  const r = s.record
  return {
    ID: r.ID,
    Name: r.Name,
    Node: r.Node,
    LockDelay: r.LockDelay,
    Behavior: r.Behavior,
    TTL: r.TTL,
    NodeChecks: r.NodeChecks,
    ServiceChecks: r.ServiceChecks,
    CreateIndex: s.createRevision,
    ModifyIndex: s.modRevision,
  }
}

export function lockOwnerOf(s: StoredSession): LockOwner {
  return {
    id: s.record.ID,
    lease: s.record.Lease,
    behavior: s.record.Behavior,
    storeKey: sessionStoreKey(s.record.ID),
    createRevision: s.createRevision,
  }
}

export function decodeSession(kv: KeyValue): StoredSession | undefined {
  let o: unknown
  try {
    o = JSON.parse(kv.value)
  } catch {
    return undefined
  }
  if (typeof o !== 'object' || o === null) return undefined
  const r = o as Record<string, unknown>
  const { ID, Name, Node, LockDelay, Behavior, TTL, NodeChecks, ServiceChecks, Lease, LeaseOfMachine } = r
  if (typeof ID !== 'string' || typeof Name !== 'string' || typeof Node !== 'string') return undefined
  if (typeof LockDelay !== 'number' || (Behavior !== 'release' && Behavior !== 'delete')) return undefined
  if (typeof TTL !== 'string' || !Array.isArray(NodeChecks) || typeof Lease !== 'number') return undefined
  if (typeof LeaseOfMachine !== 'boolean' || (ServiceChecks !== null && !Array.isArray(ServiceChecks)))
    return undefined
  const record: SessionRecord = {
    ID,
    Name,
    Node,
    LockDelay,
    Behavior,
    TTL,
    NodeChecks: NodeChecks.filter((c): c is string => typeof c === 'string'),
    ServiceChecks: ServiceChecks as SessionRecord['ServiceChecks'],
    Lease,
    LeaseOfMachine,
  }
  return { record, createRevision: kv.createRevision, modRevision: kv.modRevision }
}

// ---- create request ----

/** The value of `name` in a JSON object, matched case-insensitively as Consul's decoder does. */
function field(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name]
  const lower = name.toLowerCase()
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v
  return undefined
}

function hasField(o: Record<string, unknown>, name: string): boolean {
  const lower = name.toLowerCase()
  return Object.keys(o).some((k) => k.toLowerCase() === lower)
}

function sessionInvalid(detail: string): CairnError {
  return new CairnError('SESSION_INVALID', detail)
}

/** Validates a PUT /v1/session/create body (parsed JSON, or undefined for none). */
export function parseSessionRequest(body: unknown, defaultNode: string): SessionSpec {
  if (body === undefined || body === null) body = {}
  if (typeof body !== 'object' || Array.isArray(body))
    throw invalid('Request decode failed: the body must be a JSON object')
  const o = body as Record<string, unknown>
  const node = field(o, 'Node') ?? defaultNode
  const nodeIssue = nameProblem(node, 'Node')
  if (nodeIssue !== undefined) throw sessionInvalid(nodeIssue)
  const name = field(o, 'Name') ?? ''
  if (typeof name !== 'string') throw sessionInvalid('Name must be a string')
  if (Buffer.byteLength(name) > sessionNameBytesMax)
    throw sessionInvalid(`Name is longer than ${sessionNameBytesMax} bytes`)
  const behavior = field(o, 'Behavior') ?? ''
  if (behavior !== '' && behavior !== 'release' && behavior !== 'delete')
    throw sessionInvalid(`Invalid Behavior setting '${String(behavior).slice(0, 64)}'`)
  const { ttl, ttlMs } = readTtl(field(o, 'TTL'))
  return {
    name,
    node: node as string,
    lockDelayNs: readLockDelay(field(o, 'LockDelay')),
    behavior: behavior === 'delete' ? 'delete' : 'release',
    ttl,
    ttlMs,
    nodeChecks: readChecks(o),
  }
}

function readTtl(value: unknown): { ttl: string; ttlMs: number | undefined } {
  if (value === undefined || value === null || value === '') return { ttl: '', ttlMs: undefined }
  if (typeof value !== 'string') throw sessionInvalid('TTL must be a duration string like "30s"')
  const ns = parseDurationNs(value)
  if (typeof ns === 'string') throw sessionInvalid(`Session TTL '${value.slice(0, 64)}' invalid: ${ns}`)
  if (ns === 0n) return { ttl: '', ttlMs: undefined }
  const ms = Math.ceil(Number(ns) / 1e6)
  if (ms < sessionTtlMsMin || ms > sessionTtlMsMax) {
    throw sessionInvalid(`Invalid Session TTL '${value}', must be between [10s=24h0m0s]`)
  }
  return { ttl: value, ttlMs: ms }
}

/** Consul's FixupLockDelay: a duration string or nanoseconds; below 1000 means seconds; capped at 60s. */
function readLockDelay(value: unknown): bigint {
  if (value === undefined || value === null) return BigInt(lockDelayMsDefault) * 1_000_000n
  let ns: bigint
  if (typeof value === 'string') {
    const parsed = parseDurationNs(value)
    if (typeof parsed === 'string') throw sessionInvalid(`LockDelay: ${parsed}`)
    ns = parsed
  } else if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    ns = BigInt(Math.min(Math.trunc(value), Number.MAX_SAFE_INTEGER))
  } else {
    throw sessionInvalid('LockDelay must be a duration string like "15s" or a number')
  }
  if (ns < lockDelaySecondsBelowNs) ns *= 1_000_000_000n
  const max = BigInt(lockDelayMsMax) * 1_000_000n
  return ns > max ? max : ns
}

/** NodeChecks (or the older Checks) replace the default ["serfHealth"] when given. */
function readChecks(o: Record<string, unknown>): string[] {
  const services = field(o, 'ServiceChecks')
  if (services !== undefined && services !== null && (!Array.isArray(services) || services.length > 0)) {
    throw sessionInvalid('ServiceChecks are not supported yet (only the serfHealth node check is)')
  }
  if (!hasField(o, 'NodeChecks') && !hasField(o, 'Checks')) return [machineCheckId]
  const checks = new Set<string>()
  for (const name of ['NodeChecks', 'Checks']) {
    const list = field(o, name)
    if (list === undefined || list === null) continue
    if (!Array.isArray(list)) throw sessionInvalid(`${name} must be a list of check ids`)
    for (const check of list) {
      if (check !== machineCheckId) {
        throw sessionInvalid(
          `check ${JSON.stringify(check)} is not supported yet: sessions may only name the serfHealth node check`,
        )
      }
      checks.add(check)
    }
  }
  return [...checks]
}

// ---- store operations ----

function contended(what: string): CairnError {
  return new CairnError('CONSUL_WRITE_CONTENDED', what)
}

export async function readSession(
  store: KvStore,
  id: string,
  options?: ReadOptions,
): Promise<StoredSession | undefined> {
  const canonical = normalizeSessionId(id)
  if (canonical === undefined) return undefined
  const result = await store.range({ key: sessionStoreKey(canonical) }, options)
  const kv = result.kvs[0]
  return kv === undefined ? undefined : decodeSession(kv)
}

export async function listSessions(
  store: KvStore,
  options?: ReadOptions,
): Promise<{ revision: number; sessions: StoredSession[] }> {
  const result = await store.range({ key: `${sessionsDir}/`, rangeEnd: `${sessionsDir}0` }, options)
  const sessions: StoredSession[] = []
  for (const kv of result.kvs) {
    const s = decodeSession(kv)
    if (s !== undefined) sessions.push(s)
  }
  sessions.sort((a, b) => (a.record.ID < b.record.ID ? -1 : a.record.ID > b.record.ID ? 1 : 0))
  return { revision: result.revision, sessions }
}

/** Creates the session; returns its id. Throws CATALOG_NODE_NOT_FOUND for an unregistered node. */
export async function createSession(store: KvStore, spec: SessionSpec): Promise<string> {
  const id = randomUUID()
  const record: SessionRecord = {
    ID: id,
    Name: spec.name,
    Node: spec.node,
    LockDelay: Number(spec.lockDelayNs),
    Behavior: spec.behavior,
    TTL: spec.ttl,
    NodeChecks: spec.nodeChecks,
    ServiceChecks: null,
    Lease: 0,
    LeaseOfMachine: false,
  }
  for (let attempt = 0; attempt < sessionWriteAttemptsMax; attempt++) {
    const node = (await store.range({ key: nodeKey(spec.node) })).kvs[0]
    if (node === undefined) {
      throw new CairnError('CATALOG_NODE_NOT_FOUND', `Missing node registration: ${spec.node}`)
    }
    const nodeExists: Compare = {
      key: nodeKey(spec.node),
      target: 'createRevision',
      result: 'equal',
      value: node.createRevision,
    }
    const machine =
      spec.ttlMs === undefined && spec.nodeChecks.includes(machineCheckId)
        ? (await store.range({ key: machineKey(spec.node) })).kvs[0]
        : undefined
    if (machine !== undefined && machine.lease !== 0) {
      const onMachine = { ...record, Lease: machine.lease, LeaseOfMachine: true }
      const machineSame: Compare = {
        key: machine.key,
        target: 'modRevision',
        result: 'equal',
        value: machine.modRevision,
      }
      if (await putSession(store, onMachine, [nodeExists, machineSame])) return id
      continue
    }
    const lease = await store.leaseGrant({ ttlMs: spec.ttlMs ?? sessionLeaseMsWithoutTtl })
    let created = false
    try {
      created = await putSession(store, { ...record, Lease: lease.id }, [nodeExists])
    } finally {
      if (!created) await store.leaseRevoke(lease.id).catch(() => undefined)
    }
    if (created) return id
  }
  throw contended(`session create for node ${spec.node}`)
}

async function putSession(store: KvStore, record: SessionRecord, compare: Compare[]): Promise<boolean> {
  const result = await store.txn({
    compare,
    success: [
      { type: 'put', key: sessionStoreKey(record.ID), value: JSON.stringify(record), lease: record.Lease },
    ],
    failure: [],
  })
  return result.succeeded
}

/** The Consul keys whose lock the session holds (read through its lease's keys). */
export async function heldLocks(store: KvStore, s: StoredSession): Promise<string[]> {
  const info = await store.leaseTimeToLive(s.record.Lease)
  if (info === undefined) return []
  let lockKeys = info.keys.filter(isLockStoreKey)
  if (s.record.LeaseOfMachine) {
    // The machine lease also carries the node's other sessions' locks: keep this session's.
    const reads = await Promise.all(lockKeys.map((key) => store.range({ key })))
    lockKeys = lockKeys.filter((_, i) => reads[i]?.kvs[0]?.value === s.record.ID)
  }
  return lockKeys.map((key) => consulKeyOf(key)).filter((key): key is string => key !== undefined)
}

/**
 * Destroys the session (idempotent). Returns what ended, with the keys it held, or undefined if
 * there was no such session.
 */
export async function destroySession(
  store: KvStore,
  id: string,
): Promise<{ session: StoredSession; keys: string[] } | undefined> {
  let seen: StoredSession | undefined
  const released: string[] = []
  let lostRaces = 0
  for (let round = 0; round < destroyRoundsMax; round++) {
    const session = await readSession(store, id)
    if (session === undefined) return seen === undefined ? undefined : { session: seen, keys: released }
    seen = session
    const keys = await heldLocks(store, session)
    if (!session.record.LeaseOfMachine) {
      try {
        await store.leaseRevoke(session.record.Lease)
      } catch (error) {
        if (!isKvError(error, 'KV_LEASE_NOT_FOUND')) throw error
      }
      return { session, keys: [...released, ...keys] }
    }
    const batch = keys.slice(0, destroyLocksPerTxnMax)
    const last = batch.length === keys.length
    if (await store.txn(destroyTxn(session, batch, last)).then((r) => r.succeeded)) {
      released.push(...batch)
      if (last) return { session, keys: released }
    } else if (++lostRaces >= sessionWriteAttemptsMax) {
      break
    }
  }
  throw contended(`session destroy ${id}`)
}

/** Deletes a machine-bound session's lock keys in `batch` (each still naming it), and the session if `last`. */
function destroyTxn(session: StoredSession, batch: readonly string[], last: boolean): TxnRequest {
  const id = session.record.ID
  const compare: Compare[] = batch.map((key) => ({
    key: lockStoreKey(key),
    target: 'value',
    result: 'equal',
    value: id,
  }))
  const success: TxnOp[] = []
  for (const key of batch) {
    success.push({ type: 'delete', key: lockStoreKey(key) })
    if (session.record.Behavior === 'delete') success.push({ type: 'delete', key: kvStoreKey(key) })
  }
  if (last) {
    compare.push({
      key: sessionStoreKey(id),
      target: 'createRevision',
      result: 'equal',
      value: session.createRevision,
    })
    success.push({ type: 'delete', key: sessionStoreKey(id) })
  }
  return { compare, success, failure: [] }
}

/** Renews a TTL session's lease; returns the session, or undefined if it does not exist. */
export async function renewSession(store: KvStore, id: string): Promise<StoredSession | undefined> {
  const session = await readSession(store, id)
  if (session === undefined) return undefined
  if (session.record.TTL === '' || session.record.LeaseOfMachine) return session
  try {
    await store.leaseKeepAlive(session.record.Lease)
  } catch (error) {
    if (isKvError(error, 'KV_LEASE_NOT_FOUND')) return undefined
    throw error
  }
  return session
}

// ---- lock-delay ----

/** Keys that may not be locked until a deadline (this agent's memory, bounded). */
export class LockDelays {
  readonly #untilMs = new Map<string, number>()
  readonly #keysMax: number

  constructor(keysMax = lockDelayKeysMax) {
    if (!Number.isSafeInteger(keysMax) || keysMax < 1) throw new Error('lock delays: keysMax must be >= 1')
    this.#keysMax = keysMax
  }

  get size(): number {
    return this.#untilMs.size
  }

  /** No lock of `key` until `untilMs`. Past keysMax, expired entries go, then the oldest. */
  set(key: string, untilMs: number, nowMs: number): void {
    this.#untilMs.delete(key)
    if (untilMs <= nowMs) return
    if (this.#untilMs.size >= this.#keysMax) {
      for (const [k, until] of this.#untilMs) if (until <= nowMs) this.#untilMs.delete(k)
    }
    if (this.#untilMs.size >= this.#keysMax) {
      const oldest = this.#untilMs.keys().next().value as string
      this.#untilMs.delete(oldest)
    }
    this.#untilMs.set(key, untilMs)
  }

  /** Whether a lock of `key` is refused now. */
  blocks(key: string, nowMs: number): boolean {
    const until = this.#untilMs.get(key)
    if (until === undefined) return false
    if (until > nowMs) return true
    this.#untilMs.delete(key)
    return false
  }

  /** Records the delay of every key a session held when it ended. */
  sessionEnded(keys: readonly string[], lockDelayNs: number, nowMs: number): void {
    const delayMs = Math.min(lockDelayNs / 1e6, lockDelayMsMax)
    if (!(delayMs > 0)) return
    for (const key of keys) this.set(key, nowMs + delayMs, nowMs)
  }
}

const lockDelaysByDeps = new WeakMap<ConsulApiDeps, LockDelays>()

/** The lock delays of the agent these deps serve (one per deps object: KV and session routes share it). */
export function lockDelaysOf(deps: ConsulApiDeps): LockDelays {
  let delays = lockDelaysByDeps.get(deps)
  if (delays === undefined) {
    delays = new LockDelays()
    lockDelaysByDeps.set(deps, delays)
  }
  return delays
}

/**
 * Watches the sessions and locks directories and records a lock-delay for every lock key deleted
 * in the same revision as its session key (the session ended: expiry, revocation or a destroy
 * served by any agent). Runs until `closing` aborts; a cancelled watch is restarted from now.
 */
export function startLockDelayFeed(
  store: Pick<KvStore, 'watch'>,
  delays: LockDelays,
  clock: () => number,
  closing: AbortSignal,
  onError: (error: unknown) => void = () => {},
): void {
  let watchers: [Watcher, Watcher] | undefined
  let scheduled = false
  const schedule = (): void => {
    if (scheduled) return
    scheduled = true
    queueMicrotask(drain)
  }
  const start = (): void => {
    const open = (key: string): Watcher => {
      const w = store.watch({ key, recursive: true, stream: true, includeHidden: true })
      w.setListener(schedule)
      return w
    }
    watchers = [open(sessionsDir), open(locksDir)]
  }
  const drain = (): void => {
    scheduled = false
    if (watchers === undefined || closing.aborted) return
    const [sessions, locks] = watchers
    // Sessions first: a revision's events reach both watchers within one apply, before this runs.
    const ended = new Map<string, { revision: number; lockDelayNs: number }>()
    for (const event of takeAll(sessions)) {
      if (!isRemoval(event.action) || event.prevNode?.value === undefined) continue
      const s = decodeSession({ ...blankKv, key: event.key, value: event.prevNode.value })
      if (s !== undefined)
        ended.set(s.record.ID, { revision: event.revision, lockDelayNs: s.record.LockDelay })
    }
    const now = clock()
    for (const event of takeAll(locks)) {
      if (!isRemoval(event.action)) continue
      const end = ended.get(event.prevNode?.value ?? '')
      const key = consulKeyOf(event.key)
      if (end === undefined || end.revision !== event.revision || key === undefined) continue
      delays.sessionEnded([key], end.lockDelayNs, now)
    }
    if (sessions.status === 'canceled' || locks.status === 'canceled') {
      sessions.cancel()
      locks.cancel()
      try {
        start()
      } catch (error) {
        watchers = undefined
        onError(error)
      }
    }
  }
  closing.addEventListener(
    'abort',
    () => {
      watchers?.[0].cancel()
      watchers?.[1].cancel()
      watchers = undefined
    },
    { once: true },
  )
  if (closing.aborted) return
  try {
    start()
  } catch (error) {
    onError(error)
  }
}

function takeAll(watcher: Watcher): KvEvent[] {
  const out: KvEvent[] = []
  for (let events = watcher.take(); events.length > 0; events = watcher.take()) out.push(...events)
  return out
}

const blankKv: KeyValue = { key: '', value: '', createRevision: 0, modRevision: 0, version: 0, lease: 0 }

function isRemoval(action: string): boolean {
  return action === 'delete' || action === 'expire' || action === 'compareAndDelete'
}
