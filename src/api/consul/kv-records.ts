/**
 * Consul KV entries as records in the keyspace: where a Consul key is stored, what its value record
 * holds, how entries render as Consul JSON, and KvTxnPlan, the pure planner that turns Consul KV
 * verbs (set, cas, lock, unlock, get, check-*, delete*) into the compares and ops of ONE store
 * transaction. The routes (kv-route.ts, txn-route.ts) only read, plan, submit and retry.
 *
 * Layout (under the hidden prefix, so etcd v2 listings do not show it):
 *
 *   /_cairn/consul/kv/k<esc(K)>      the value record of Consul key K
 *   /_cairn/consul/locks/k<esc(K)>   the id of the session holding K's lock, attached to its lease
 *
 * esc(K) replaces "%" with "%25" and "/" with "%2F", character by character. So esc(K) is one
 * clean key segment for any K ("", empty segments and a trailing "/" included), the leading "k"
 * keeps the segment non-empty and never "." or "..", and a prefix P of K escapes to a prefix of
 * esc(K): a Consul prefix read is the store range [base + esc(P), prefixEnd). Store order is not
 * Consul's order, so answers are decoded and sorted by the raw key's UTF-8 bytes.
 *
 * Value record: `{"v": base64 of the value, "f": flags as a decimal uint64 string, "l": LockIndex}`.
 * Flags stay a string end to end, so 2^64 - 1 round-trips. CreateIndex and ModifyIndex are the
 * value key's createRevision and modRevision; `Session` is read from the lock key.
 *
 * Invariants:
 * - A lock key exists only while its session does: it is attached to the session's lease, so the
 *   keyspace deletes it, atomically with the session key, when the session ends (no reaper).
 * - The value key has a lease only while it is locked by a session with Behavior "delete", and
 *   then it is that session's lease: the keyspace deletes the key with the session.
 * - Every acquire and release writes the value key, so a compare on the value key's modRevision
 *   covers every lock change but one: a session's end, which deletes the lock key alone.
 * - A plan decides every condition (cas index, lock holder, check-*) against one read of its keys
 *   (the views) and guards that read with compares; if a guard fails, something changed since the
 *   read, and the caller reads again and re-plans. A condition that fails is answered as Consul
 *   does (false, or a txn error naming the op); a failed guard never is.
 * - decodeValueRecord never throws: a value that is not a record (written by hand through the etcd
 *   API) makes the key absent to Consul.
 */
import { prefixEnd } from '../../kv/key-path.ts'
import type { Compare, KeyValue, TxnOp, TxnRequest } from '../../kv/mvcc.ts'

export const consulDir = '/_cairn/consul'
export const kvDir = `${consulDir}/kv`
export const locksDir = `${consulDir}/locks`
const kvBase = `${kvDir}/k`
const lockBase = `${locksDir}/k`

/** Consul's kv_max_value_size default (512 KiB): a larger value is refused with 413. */
export const kvValueBytesMax = 512 * 1024
/**
 * UTF-8 bytes of a Consul key (Consul has no limit of its own). Escaping at most triples it, which
 * keeps the store key within kvLimits.keyBytesMax (8 KiB).
 */
export const kvKeyBytesMax = 2048
/** Flags are a uint64. */
export const flagsMax = (1n << 64n) - 1n

export interface ValueRecord {
  /** The value, base64 (Consul's JSON shape, so reads copy it as is). */
  v: string
  /** Flags, a decimal uint64 without leading zeros. */
  f: string
  /** LockIndex: successful acquisitions so far. */
  l: number
}

// ---- layout ----

export function escapeKey(key: string): string {
  return key.replace(/[%/]/g, (c) => (c === '%' ? '%25' : '%2F'))
}

/** The inverse of escapeKey, or undefined for a segment escapeKey cannot produce. */
export function unescapeKey(escaped: string): string | undefined {
  let out = ''
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i] as string
    if (c !== '%') {
      if (c === '/') return undefined
      out += c
      continue
    }
    const code = escaped.slice(i + 1, i + 3)
    if (code === '25') out += '%'
    else if (code === '2F') out += '/'
    else return undefined
    i += 2
  }
  return out
}

export function kvStoreKey(key: string): string {
  return kvBase + escapeKey(key)
}

export function lockStoreKey(key: string): string {
  return lockBase + escapeKey(key)
}

/** The Consul key of a value or lock store key, or undefined for a key outside the layout. */
export function consulKeyOf(storeKey: string): string | undefined {
  if (storeKey.startsWith(kvBase)) return unescapeKey(storeKey.slice(kvBase.length))
  if (storeKey.startsWith(lockBase)) return unescapeKey(storeKey.slice(lockBase.length))
  return undefined
}

export function isLockStoreKey(storeKey: string): boolean {
  return storeKey.startsWith(lockBase)
}

/** [key, rangeEnd) of every value key whose Consul key starts with `prefix`. */
export function kvPrefixRange(prefix: string): { key: string; rangeEnd: string } {
  const key = kvStoreKey(prefix)
  return { key, rangeEnd: prefixEnd(key) }
}

export function lockPrefixRange(prefix: string): { key: string; rangeEnd: string } {
  const key = lockStoreKey(prefix)
  return { key, rangeEnd: prefixEnd(key) }
}

/** Why `key` cannot be a Consul key, or undefined. */
export function keyProblem(key: string): string | undefined {
  const bytes = Buffer.byteLength(key, 'utf8')
  if (bytes > kvKeyBytesMax) return `key is ${bytes} bytes, longer than ${kvKeyBytesMax}`
  return undefined
}

/** Consul's key order: the raw keys' UTF-8 bytes (Go compares strings bytewise). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

// ---- records ----

/** Parses a uint64 given as decimal text; returns it without leading zeros, or undefined. */
export function parseFlags(text: string): string | undefined {
  if (!/^[0-9]{1,20}$/.test(text)) return undefined
  const value = BigInt(text)
  return value > flagsMax ? undefined : value.toString()
}

export function encodeValueRecord(record: ValueRecord): string {
  return JSON.stringify({ v: record.v, f: record.f, l: record.l })
}

export function decodeValueRecord(text: string): ValueRecord | undefined {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof o !== 'object' || o === null) return undefined
  const { v, f, l } = o as Record<string, unknown>
  if (typeof v !== 'string' || typeof f !== 'string' || parseFlags(f) !== f) return undefined
  if (typeof l !== 'number' || !Number.isSafeInteger(l) || l < 0) return undefined
  return { v, f, l }
}

/** One KV entry as Consul shows it. */
export interface KvEntry {
  key: string
  record: ValueRecord
  createIndex: number
  modifyIndex: number
  /** The lock holder, if any. */
  session: string | undefined
}

/**
 * Consul's DirEntry JSON, fields in Consul's order. Built as text so that Flags (a uint64) is
 * written digit for digit; `Value` is null for an empty value and for write results, as in Consul.
 */
export function renderEntry(entry: KvEntry, withValue: boolean): string {
  const { record } = entry
  const value = withValue && record.v !== '' ? JSON.stringify(record.v) : 'null'
  const session = entry.session === undefined ? '' : `"Session":${JSON.stringify(entry.session)},`
  return (
    `{"LockIndex":${record.l},"Key":${JSON.stringify(entry.key)},"Flags":${record.f},"Value":${value},` +
    `${session}"CreateIndex":${entry.createIndex},"ModifyIndex":${entry.modifyIndex}}`
  )
}

/** Entries of a value range and a lock range read together, sorted in Consul's key order. */
export function entriesOf(kvs: readonly KeyValue[], locks: readonly KeyValue[]): KvEntry[] {
  const holders = new Map<string, string>()
  for (const kv of locks) {
    const key = consulKeyOf(kv.key)
    if (key !== undefined) holders.set(key, kv.value)
  }
  const out: KvEntry[] = []
  for (const kv of kvs) {
    const key = consulKeyOf(kv.key)
    const record = decodeValueRecord(kv.value)
    if (key === undefined || record === undefined) continue
    out.push({
      key,
      record,
      createIndex: kv.createRevision,
      modifyIndex: kv.modRevision,
      session: holders.get(key),
    })
  }
  return out.sort((a, b) => compareKeys(a.key, b.key))
}

// ---- planning ----

/** One Consul key as a plan sees it: read from the store, then changed by the plan's earlier ops. */
export interface KeyView {
  key: string
  /** undefined: the key is absent (to Consul). */
  record: ValueRecord | undefined
  /** The value key's revisions as read (0 when absent); meaningless once `written`. */
  createRevision: number
  modRevision: number
  /** The value key's lease. */
  lease: number
  holder: string | undefined
  /** Written by an earlier op of the plan: its revisions become the transaction's. */
  written: boolean
  /** The holder was set by an earlier op of the plan (not read). */
  holderPlanned: boolean
}

/** A view of a key from one read of its value key and its lock key. */
export function keyViewOf(key: string, kv: KeyValue | undefined, lock: KeyValue | undefined): KeyView {
  return {
    key,
    record: kv === undefined ? undefined : decodeValueRecord(kv.value),
    createRevision: kv?.createRevision ?? 0,
    modRevision: kv?.modRevision ?? 0,
    lease: kv?.lease ?? 0,
    holder: lock?.value,
    written: false,
    holderPlanned: false,
  }
}

/** A live session, as a lock needs it. */
export interface LockOwner {
  id: string
  lease: number
  behavior: 'release' | 'delete'
  /** The session's store key and createRevision: a lock compares them, so a dead session takes nothing. */
  storeKey: string
  createRevision: number
}

export type PlanResult =
  | { kind: 'none' }
  /** An entry after a write or a check (Value null). */
  | { kind: 'entry'; view: KeyView }
  /** get / get-or-empty: the success ops at these positions read the value and lock keys. */
  | { kind: 'get'; key: string; kvOp: number; lockOp: number; orEmpty: boolean }
  | { kind: 'tree'; kvOp: number; lockOp: number }

export type Step = { ok: true; result: PlanResult } | { ok: false; what: string }

const fail = (what: string): Step => ({ ok: false, what })
const none: Step = { ok: true, result: { kind: 'none' } }

export class KvTxnPlan {
  readonly #views = new Map<string, KeyView>()
  readonly #read = new Map<string, KeyView>()
  readonly #compares = new Map<string, Compare>()
  readonly #ops: TxnOp[] = []
  readonly #puts = new Set<string>()
  readonly #deletes = new Set<string>()
  readonly #deleteRanges: { key: string; rangeEnd: string }[] = []
  #writes = 0

  /** `views`: every key an op of the plan names (delete, get-tree and delete-tree need none: they are blind). */
  constructor(views: Iterable<KeyView>) {
    for (const view of views) {
      this.#views.set(view.key, { ...view })
      this.#read.set(view.key, view)
    }
  }

  get writes(): number {
    return this.#writes
  }

  get opCount(): number {
    return this.#ops.length
  }

  get compareCount(): number {
    return this.#compares.size
  }

  request(): TxnRequest {
    return { compare: [...this.#compares.values()], success: [...this.#ops], failure: [] }
  }

  set(key: string, value: string, flags: string): Step {
    const v = this.#guarded(key)
    const overlap = this.#checkPut(kvStoreKey(key), key)
    if (overlap !== undefined) return overlap
    const record = { v: value, f: flags, l: v.record?.l ?? 0 }
    // A locked key keeps its lease: with Behavior "delete" it must still go with its session.
    this.#putValue(v, record, v.holder === undefined ? 0 : v.lease)
    return this.#entry(v)
  }

  /** Consul's cas: index 0 creates only if absent; otherwise ModifyIndex must equal `index`. */
  cas(key: string, value: string, flags: string, index: bigint): Step {
    const v = this.#guarded(key)
    const stale = fail(`failed to set key ${JSON.stringify(key)}, index is stale`)
    if (index === 0n ? v.record !== undefined : v.record === undefined || !this.#indexIs(v, index))
      return stale
    return this.set(key, value, flags)
  }

  lock(key: string, value: string, flags: string, sessionId: string, owner: LockOwner | undefined): Step {
    if (owner === undefined) return fail(`invalid session ${JSON.stringify(sessionId)}`)
    const v = this.#guarded(key)
    this.#compares.set(`s${owner.storeKey}`, {
      key: owner.storeKey,
      target: 'createRevision',
      result: 'equal',
      value: owner.createRevision,
    })
    if (v.holder !== undefined && v.holder !== owner.id)
      return fail(`failed to lock key ${JSON.stringify(key)}, lock is already held`)
    const held = v.holder === owner.id
    const overlap =
      this.#checkPut(kvStoreKey(key), key) ?? (held ? undefined : this.#checkPut(lockStoreKey(key), key))
    if (overlap !== undefined) return overlap
    const lockIndex = (v.record?.l ?? 0) + (held && v.record !== undefined ? 0 : 1)
    this.#putValue(v, { v: value, f: flags, l: lockIndex }, owner.behavior === 'delete' ? owner.lease : 0)
    if (!held) this.#ops.push({ type: 'put', key: lockStoreKey(key), value: owner.id, lease: owner.lease })
    v.holder = owner.id
    v.holderPlanned = true
    return this.#entry(v)
  }

  unlock(key: string, value: string, flags: string, sessionId: string): Step {
    const v = this.#guarded(key)
    if (v.record === undefined || v.holder !== sessionId) {
      return fail(
        `failed to unlock key ${JSON.stringify(key)}, lock isn't held, or is held by another session`,
      )
    }
    const overlap = this.#checkPut(kvStoreKey(key), key) ?? this.#checkDelete(lockStoreKey(key), key)
    if (overlap !== undefined) return overlap
    this.#putValue(v, { v: value, f: flags, l: v.record.l }, 0)
    this.#ops.push({ type: 'delete', key: lockStoreKey(key) })
    v.holder = undefined
    v.holderPlanned = true
    return this.#entry(v)
  }

  get(key: string, orEmpty: boolean): Step {
    const v = this.#guarded(key)
    if (!orEmpty && v.record === undefined) return fail(`key ${JSON.stringify(key)} doesn't exist`)
    const kvOp = this.#ops.push({ type: 'range', key: kvStoreKey(key) }) - 1
    const lockOp = this.#ops.push({ type: 'range', key: lockStoreKey(key) }) - 1
    return { ok: true, result: { kind: 'get', key, kvOp, lockOp, orEmpty } }
  }

  getTree(prefix: string): Step {
    const kvOp = this.#ops.push({ type: 'range', ...kvPrefixRange(prefix) }) - 1
    const lockOp = this.#ops.push({ type: 'range', ...lockPrefixRange(prefix) }) - 1
    return { ok: true, result: { kind: 'tree', kvOp, lockOp } }
  }

  checkIndex(key: string, index: bigint): Step {
    const v = this.#guarded(key)
    const name = JSON.stringify(key)
    if (v.record === undefined) return fail(`failed to check index, key ${name} doesn't exist`)
    if (!this.#indexIs(v, index)) {
      const current = v.written ? "this transaction's" : String(v.modRevision)
      return fail(`failed index check for key ${name}, current modify index ${current} != ${index}`)
    }
    return this.#entry(v)
  }

  checkSession(key: string, sessionId: string): Step {
    const v = this.#guarded(key)
    const name = JSON.stringify(key)
    if (v.record === undefined) return fail(`failed to check session, key ${name} doesn't exist`)
    if ((v.holder ?? '') !== sessionId) {
      return fail(
        `failed session check for key ${name}, current session ${JSON.stringify(v.holder ?? '')} != ${JSON.stringify(sessionId)}`,
      )
    }
    // The value key's guard misses one change of the holder, its session's end: compare the lock key.
    if (!v.holderPlanned) {
      const lockKey = lockStoreKey(key)
      this.#compares.set(
        `l${lockKey}`,
        v.holder === undefined
          ? { key: lockKey, target: 'createRevision', result: 'equal', value: 0 }
          : { key: lockKey, target: 'value', result: 'equal', value: v.holder },
      )
    }
    return this.#entry(v)
  }

  checkNotExists(key: string): Step {
    const v = this.#guarded(key)
    return v.record === undefined ? none : fail(`key ${JSON.stringify(key)} exists`)
  }

  /** Deletes the key and its lock (a deleted key is unlocked, as in Consul). */
  delete(key: string): Step {
    const overlap = this.#checkDelete(kvStoreKey(key), key) ?? this.#checkDelete(lockStoreKey(key), key)
    if (overlap !== undefined) return overlap
    this.#ops.push({ type: 'delete', key: kvStoreKey(key) }, { type: 'delete', key: lockStoreKey(key) })
    this.#writes++
    const v = this.#views.get(key)
    if (v !== undefined) this.#clear(v)
    return none
  }

  /** Consul's delete-cas: true for an absent key; otherwise ModifyIndex must equal `index`. */
  deleteCas(key: string, index: bigint): Step {
    const v = this.#guarded(key)
    if (v.record === undefined) return none
    if (!this.#indexIs(v, index)) return fail(`failed to delete key ${JSON.stringify(key)}, index is stale`)
    return this.delete(key)
  }

  deleteTree(prefix: string): Step {
    const ranges = [kvPrefixRange(prefix), lockPrefixRange(prefix)]
    for (const range of ranges) {
      for (const put of this.#puts) {
        if (put >= range.key && put < range.rangeEnd) return this.#overlap(consulKeyOf(put) ?? prefix)
      }
    }
    for (const range of ranges) {
      this.#deleteRanges.push(range)
      this.#ops.push({ type: 'delete', ...range })
    }
    this.#writes++
    for (const v of this.#views.values()) if (v.key.startsWith(prefix)) this.#clear(v)
    return none
  }

  #view(key: string): KeyView {
    const v = this.#views.get(key)
    if (v === undefined) throw new Error(`kv plan: no view of key ${JSON.stringify(key)}`)
    return v
  }

  /** The view, with a compare that the value key is as read (dedupe: one per key). */
  #guarded(key: string): KeyView {
    const v = this.#view(key)
    const read = this.#read.get(key) as KeyView
    const storeKey = kvStoreKey(key)
    if (!this.#compares.has(`k${storeKey}`)) {
      this.#compares.set(`k${storeKey}`, {
        key: storeKey,
        target: 'modRevision',
        result: 'equal',
        value: read.modRevision,
      })
    }
    return v
  }

  #indexIs(v: KeyView, index: bigint): boolean {
    return !v.written && BigInt(v.modRevision) === index
  }

  #putValue(v: KeyView, record: ValueRecord, lease: number): void {
    const created = v.record === undefined
    this.#ops.push({ type: 'put', key: kvStoreKey(v.key), value: encodeValueRecord(record), lease })
    this.#writes++
    v.record = record
    v.lease = lease
    v.written = true
    if (created) v.createRevision = 0
  }

  #clear(v: KeyView): void {
    v.record = undefined
    v.holder = undefined
    v.holderPlanned = true
    v.lease = 0
    v.written = true
    v.createRevision = 0
  }

  #entry(v: KeyView): Step {
    return { ok: true, result: { kind: 'entry', view: { ...v } } }
  }

  #checkPut(storeKey: string, key: string): Step | undefined {
    if (this.#puts.has(storeKey) || this.#deletes.has(storeKey)) return this.#overlap(key)
    for (const range of this.#deleteRanges)
      if (storeKey >= range.key && storeKey < range.rangeEnd) return this.#overlap(key)
    this.#puts.add(storeKey)
    return undefined
  }

  #checkDelete(storeKey: string, key: string): Step | undefined {
    if (this.#puts.has(storeKey)) return this.#overlap(key)
    this.#deletes.add(storeKey)
    return undefined
  }

  #overlap(key: string): Step {
    return fail(
      `key ${JSON.stringify(key)} is written twice in one transaction: Cairn applies a transaction's ` +
        'writes together, so each key may be written once (and not inside a delete-tree of the same transaction)',
    )
  }
}
