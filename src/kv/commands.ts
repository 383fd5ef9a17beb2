/**
 * The replicated commands: what a normal entry's data holds, msgpack-encoded.
 *
 * Every command carries `id`, a request id chosen by the proposer (the driver routes the apply
 * result back with it), and `now`, the proposer's wall clock in ms, the only clock apply ever sees
 * (TTL deadlines are `now + ttlMs`; expiry compares deadlines with the expire command's `now`).
 *
 * decodeCommand is safe on untrusted bytes: it checks the size, the shape, every type and every
 * state-independent limit, and throws a KvError (KV_COMMAND_INVALID or a more specific code) rather
 * than crash. encodeCommand runs the same checks, so a proposer learns of a bad command before it
 * reaches the log, and only normalized commands (no undefined fields) are encoded.
 */
import { describeValue, FieldReader, stringList } from './field-reader.ts'
import { isCleanKey, normalizeKey, rootKey, selfAndAncestors } from './key-path.ts'
import { KvError } from './kv-error.ts'
import type { LeaseGrantRequest, LeaseRevokeResult, LeaseState } from './lease-ops.ts'
import { kvLimits } from './limits.ts'
import type { Member, MemberAttributes } from './members.ts'
import { packValue, unpackValue } from './msgpack.ts'
import type {
  Compare,
  DeleteRequest,
  DeleteResult,
  PutRequest,
  PutResult,
  RangeRequest,
  TxnOp,
  TxnRequest,
  TxnResult,
} from './mvcc.ts'
import type { V2Result } from './v2-node.ts'
import type { V2CadArgs, V2CasArgs, V2CreateArgs, V2DeleteArgs, V2SetArgs, V2UpdateArgs } from './v2-store.ts'

/** A key with a TTL that the leader found due: expire it if it is still at `modRevision`. */
export interface ExpireKey {
  key: string
  modRevision: number
}

export interface ExpireResult {
  revision: number
  expiredKeys: number
  expiredLeases: number
}

export interface CompactResult {
  compactedRevision: number
}

interface Stamp {
  id: string
  now: number
}

export type Command = Stamp &
  (
    | ({ op: 'v2.set' } & V2SetArgs)
    | ({ op: 'v2.create' } & V2CreateArgs)
    | ({ op: 'v2.update' } & V2UpdateArgs)
    | ({ op: 'v2.cas' } & V2CasArgs)
    | ({ op: 'v2.delete' } & V2DeleteArgs)
    | ({ op: 'v2.cad' } & V2CadArgs)
    | ({ op: 'put' } & PutRequest)
    | ({ op: 'delete' } & DeleteRequest)
    | ({ op: 'txn' } & TxnRequest)
    | ({ op: 'lease.grant' } & LeaseGrantRequest)
    | { op: 'lease.keepAlive'; lease: number }
    | { op: 'lease.revoke'; lease: number }
    | { op: 'expire'; keys: ExpireKey[]; leases: number[] }
    | ({ op: 'member.update'; nodeId: number } & Partial<MemberAttributes>)
    | { op: 'compact'; revision: number }
  )

export type CommandOp = Command['op']

/** A command as its proposer writes it, before the stamp (request id and clock) is added. */
export type UnstampedCommand<O extends CommandOp = CommandOp> =
  Extract<Command, { op: O }> extends infer C ? (C extends unknown ? Omit<C, 'id' | 'now'> : never) : never

/** The result type of each command. */
export interface CommandResults {
  'v2.set': V2Result
  'v2.create': V2Result
  'v2.update': V2Result
  'v2.cas': V2Result
  'v2.delete': V2Result
  'v2.cad': V2Result
  put: PutResult
  delete: DeleteResult
  txn: TxnResult
  'lease.grant': LeaseState
  'lease.keepAlive': LeaseState
  'lease.revoke': LeaseRevokeResult
  expire: ExpireResult
  'member.update': Member
  compact: CompactResult
}

export type CommandResult = CommandResults[CommandOp]

/** Latest `now` accepted: far in the future, and low enough that now + ttlMsMax stays exact. */
const nowMsMax = 4_000_000_000_000_000
/** Range bounds may be a little longer than a key (a prefix end). */
const rangeBoundBytesMax = kvLimits.keyBytesMax + 4

export function encodeCommand(command: Command, index = 0): Uint8Array {
  const bytes = packValue(readCommand(command, index))
  if (bytes.byteLength > kvLimits.commandBytesMax) {
    throw new KvError('KV_VALUE_TOO_LARGE', `command of ${bytes.byteLength} bytes`, index)
  }
  return bytes
}

/** Decodes an entry's data; `index` is the store revision, for the error body. */
export function decodeCommand(data: Uint8Array, index = 0): Command {
  if (data.byteLength > kvLimits.commandBytesMax) {
    throw new KvError('KV_COMMAND_INVALID', `command of ${data.byteLength} bytes`, index)
  }
  let decoded: unknown
  try {
    decoded = unpackValue(data)
  } catch (error) {
    throw new KvError('KV_COMMAND_INVALID', `not msgpack (${(error as Error).message})`, index)
  }
  return readCommand(decoded, index)
}

/** The request id of undecodable data, if it is at least a map with a valid id (to answer the proposer). */
export function requestIdOf(data: Uint8Array): string | undefined {
  try {
    const decoded = unpackValue(data)
    if (typeof decoded !== 'object' || decoded === null || !Object.hasOwn(decoded, 'id')) return undefined
    const id = (decoded as { id: unknown }).id
    return typeof id === 'string' && id.length <= kvLimits.requestIdBytesMax ? id : undefined
  } catch {
    return undefined
  }
}

/** Checks an untrusted command and returns it normalized (only known, defined fields). */
export function readCommand(value: unknown, index: number): Command {
  const r = new FieldReader(value, 'command', 'KV_COMMAND_INVALID', index)
  const stamp: Stamp = {
    id: r.string('id', kvLimits.requestIdBytesMax),
    now: r.integer('now', 0, nowMsMax),
  }
  const op = r.raw('op')
  switch (op) {
    case 'v2.set':
      return {
        op,
        ...stamp,
        key: v2Key(r),
        value: valueField(r),
        dir: r.boolean('dir'),
        ...ttl(r),
        ...refresh(r),
      }
    case 'v2.create':
      return {
        op,
        ...stamp,
        key: v2Key(r),
        value: valueField(r),
        dir: r.boolean('dir'),
        ...ttl(r),
        ...flag(r, 'unique'),
      }
    case 'v2.update':
      return { op, ...stamp, key: v2Key(r), value: valueField(r), ...ttl(r), ...refresh(r) }
    case 'v2.cas':
      return { op, ...stamp, key: v2Key(r), value: valueField(r), ...compare(r), ...ttl(r), ...refresh(r) }
    case 'v2.delete':
      return { op, ...stamp, key: v2Key(r), ...flag(r, 'dir'), ...flag(r, 'recursive') }
    case 'v2.cad':
      return { op, ...stamp, key: v2Key(r), ...compare(r) }
    case 'put':
      return { op, ...stamp, ...readPut(r) }
    case 'delete':
      return { op, ...stamp, ...readDelete(r) }
    case 'txn':
      return { op, ...stamp, ...readTxn(r) }
    default:
      return readOtherCommand(r, op, stamp)
  }
}

function readOtherCommand(r: FieldReader, op: unknown, stamp: Stamp): Command {
  switch (op) {
    case 'lease.grant':
      return {
        op,
        ...stamp,
        lease: r.optionalInteger('lease', 0, Number.MAX_SAFE_INTEGER) ?? 0,
        ttlMs: r.integer('ttlMs', 1, kvLimits.ttlMsMax, 'KV_TTL_INVALID'),
      }
    case 'lease.keepAlive':
    case 'lease.revoke':
      return { op, ...stamp, lease: r.integer('lease', 1, Number.MAX_SAFE_INTEGER) }
    case 'expire':
      return { op, ...stamp, ...readExpire(r) }
    case 'member.update':
      return { op, ...stamp, ...readMemberUpdate(r) }
    case 'compact':
      return { op, ...stamp, revision: r.integer('revision', 0, Number.MAX_SAFE_INTEGER) }
    default:
      return r.fail(`unknown op ${describeValue(op)}`)
  }
}

function v2Key(r: FieldReader): string {
  const raw = r.string('key', kvLimits.commandBytesMax)
  normalizeKey(raw, r.index)
  return raw
}

function valueField(r: FieldReader): string {
  return r.has('value') ? r.string('value', kvLimits.valueBytesMax, 'KV_VALUE_TOO_LARGE') : ''
}

function ttl(r: FieldReader): { ttlMs?: number } {
  const ttlMs = r.optionalInteger('ttlMs', 0, kvLimits.ttlMsMax, 'KV_TTL_INVALID')
  return ttlMs === undefined ? {} : { ttlMs }
}

function refresh(r: FieldReader): { refresh?: true } {
  return flag(r, 'refresh') as { refresh?: true }
}

function flag<N extends string>(r: FieldReader, name: N): { [K in N]?: true } {
  return (r.boolean(name) ? { [name]: true } : {}) as { [K in N]?: true }
}

function compare(r: FieldReader): { prevValue?: string; prevIndex?: number } {
  const out: { prevValue?: string; prevIndex?: number } = {}
  const prevValue = r.optionalString('prevValue', kvLimits.valueBytesMax, 'KV_VALUE_TOO_LARGE')
  const prevIndex = r.optionalInteger('prevIndex', 0, Number.MAX_SAFE_INTEGER)
  if (prevValue !== undefined && prevValue !== '') out.prevValue = prevValue
  if (prevIndex !== undefined && prevIndex !== 0) out.prevIndex = prevIndex
  return out
}

/** A single key of the v3 view: clean, not the root, within the key limits. */
function v3Key(r: FieldReader, name = 'key'): string {
  const key = r.string(name, kvLimits.keyBytesMax, 'KV_KEY_INVALID')
  if (key === rootKey || !isCleanKey(key))
    r.fail(`${name} must be a clean key other than /`, 'KV_KEY_INVALID')
  normalizeKey(key, r.index)
  return key
}

function readRangeBounds(r: FieldReader): { key: string; rangeEnd?: string } {
  if (!r.has('rangeEnd') || r.raw('rangeEnd') === '') return { key: v3Key(r) }
  return {
    key: r.string('key', rangeBoundBytesMax, 'KV_KEY_INVALID'),
    rangeEnd: r.string('rangeEnd', rangeBoundBytesMax, 'KV_KEY_INVALID'),
  }
}

function readRange(r: FieldReader): RangeRequest {
  const out: RangeRequest = readRangeBounds(r)
  const limit = r.optionalInteger('limit', 0, Number.MAX_SAFE_INTEGER)
  if (limit !== undefined && limit !== 0) out.limit = limit
  if (r.boolean('countOnly')) out.countOnly = true
  if (r.boolean('keysOnly')) out.keysOnly = true
  return out
}

function readPut(r: FieldReader): PutRequest {
  const out: PutRequest = { key: v3Key(r), value: valueField(r) }
  const lease = r.optionalInteger('lease', 0, Number.MAX_SAFE_INTEGER)
  if (lease !== undefined && lease !== 0) out.lease = lease
  if (r.boolean('prevKv')) out.prevKv = true
  return out
}

function readDelete(r: FieldReader): DeleteRequest {
  const out: DeleteRequest = readRangeBounds(r)
  if (r.boolean('prevKv')) out.prevKv = true
  return out
}

function readCompare(r: FieldReader): Compare {
  const key = v3Key(r)
  const target = r.raw('target')
  const result = r.raw('result')
  if (
    target !== 'value' &&
    target !== 'version' &&
    target !== 'createRevision' &&
    target !== 'modRevision' &&
    target !== 'lease'
  ) {
    return r.fail('target must be value, version, createRevision, modRevision or lease')
  }
  if (result !== 'equal' && result !== 'notEqual' && result !== 'greater' && result !== 'less') {
    return r.fail('result must be equal, notEqual, greater or less')
  }
  const value =
    target === 'value'
      ? r.string('value', kvLimits.valueBytesMax, 'KV_VALUE_TOO_LARGE')
      : r.integer('value', 0, Number.MAX_SAFE_INTEGER)
  return { key, target, result, value }
}

function readTxnOp(r: FieldReader): TxnOp {
  const type = r.raw('type')
  if (type === 'range') return { type, ...readRange(r) }
  if (type === 'put') return { type, ...readPut(r) }
  if (type === 'delete') return { type, ...readDelete(r) }
  return r.fail('type must be range, put or delete')
}

function readTxn(r: FieldReader): TxnRequest {
  const list = (name: string) => r.optionalArray(name, kvLimits.txnOpsMax, 'KV_TXN_TOO_MANY_OPS')
  const compareList = list('compare').map((item, i) => readCompare(r.item(item, i, 'compare')))
  const success = list('success').map((item, i) => readTxnOp(r.item(item, i, 'success')))
  const failure = list('failure').map((item, i) => readTxnOp(r.item(item, i, 'failure')))
  checkDisjointWrites(r, success)
  checkDisjointWrites(r, failure)
  return { compare: compareList, success, failure }
}

/**
 * Writes of one branch may not touch the same or nested keys (etcd rejects duplicate keys in a
 * txn): no two puts on one key, no put on a key at, above or below a single-key delete, and no put
 * whose key or an ancestor lies in a delete range. Deletes may overlap each other.
 */
function checkDisjointWrites(r: FieldReader, ops: readonly TxnOp[]): void {
  const puts = new Set<string>()
  const deletes = new Set<string>()
  const ranges: { key: string; rangeEnd: string }[] = []
  const fail = (key: string) => r.fail(`writes overlap at ${key}`, 'KV_TXN_DUPLICATE_KEY')
  for (const op of ops) {
    if (op.type === 'put') {
      if (puts.has(op.key)) fail(op.key)
      puts.add(op.key)
    } else if (op.type === 'delete') {
      if (op.rangeEnd === undefined) deletes.add(op.key)
      else ranges.push({ key: op.key, rangeEnd: op.rangeEnd })
    }
  }
  for (const key of puts) {
    for (const at of selfAndAncestors(key)) {
      if (at !== key && puts.has(at)) fail(at)
      if (deletes.has(at)) fail(at)
      for (const range of ranges)
        if (at >= range.key && (range.rangeEnd === '\0' || at < range.rangeEnd)) fail(at)
    }
  }
  for (const key of deletes) for (const at of selfAndAncestors(key)) if (at !== key && puts.has(at)) fail(at)
}

function readExpire(r: FieldReader): { keys: ExpireKey[]; leases: number[] } {
  const keyItems = r.optionalArray('keys', kvLimits.expireBatchMax)
  const leaseItems = r.optionalArray('leases', kvLimits.expireBatchMax)
  if (keyItems.length + leaseItems.length > kvLimits.expireBatchMax)
    r.fail(`more than ${kvLimits.expireBatchMax} items`)
  const keys = keyItems.map((item, i) => {
    const k = r.item(item, i, 'keys')
    return { key: v3Key(k), modRevision: k.integer('modRevision', 1, Number.MAX_SAFE_INTEGER) }
  })
  const leases = leaseItems.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 1)
      return r.fail('leases must be lease ids')
    return item
  })
  return { keys, leases }
}

function readMemberUpdate(r: FieldReader): { nodeId: number } & Partial<MemberAttributes> {
  const out: { nodeId: number } & Partial<MemberAttributes> = {
    nodeId: r.integer('nodeId', 1, Number.MAX_SAFE_INTEGER),
  }
  const name = r.optionalString('name', kvLimits.memberNameBytesMax)
  if (name !== undefined) out.name = name
  if (r.has('peerUrls'))
    out.peerUrls = stringList(r, 'peerUrls', kvLimits.memberUrlsMax, kvLimits.memberUrlBytesMax)
  if (r.has('clientUrls'))
    out.clientUrls = stringList(r, 'clientUrls', kvLimits.memberUrlsMax, kvLimits.memberUrlBytesMax)
  return out
}
