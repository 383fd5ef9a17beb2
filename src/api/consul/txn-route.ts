/**
 * PUT /v1/txn: Consul transactions over KV, as ONE store transaction.
 *
 * The body is a JSON array of at most txnOpsMax operations `{"KV": {Verb, Key, Value (base64),
 * Flags, Index, Session}}`. Verbs: set, cas, lock, unlock, get, get-or-empty, get-tree,
 * check-index, check-session, check-not-exists, delete, delete-tree, delete-cas. Node, Service,
 * Check and Session operations are refused with 400 (not supported yet).
 *
 * How it runs: read the views of every key the ops name and the sessions the locks name, plan the
 * ops in order (kv-records.ts: each op sees the effect of the ops before it), and submit one store
 * txn whose compares guard the read and whose success branch holds the writes and the reads (get,
 * get-tree are range ops there, so they see the transaction's own earlier writes). A failed guard
 * means a concurrent write: read, plan and submit again, at most writeAttemptsMax times. The first
 * op whose condition fails is answered as Consul does: 409 with
 * `{"Results":null,"Errors":[{"OpIndex":i,"What":"..."}]}`. On success: 200 with
 * `{"Results":[{"KV":{...}}],"Errors":null}`; writes and checks return the entry with Value null.
 *
 * Differences from Consul: every transaction, read-only ones too, goes through the store's txn
 * (linearizable; `?stale` is not honoured); each key may be written once per transaction (the
 * store applies a branch's writes together); a txn whose planned store ops or compares exceed the
 * store's txnOpsMax (128) is refused with 413; only the first failing op is reported.
 *
 * Invariants: nothing is written unless every op parsed and every op's condition held; a refused
 * body changes nothing.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { CairnError } from '../../errors.ts'
import { isKvError } from '../../kv/kv-error.ts'
import { kvLimits } from '../../kv/limits.ts'
import type { KeyValue, TxnResponse } from '../../kv/mvcc.ts'
import type { ConsulApiDeps } from './deps.ts'
import { jsonBody, setReadHeaders } from './http.ts'
import {
  entriesOf,
  type KvEntry,
  KvTxnPlan,
  keyProblem,
  kvValueBytesMax,
  type LockOwner,
  type PlanResult,
  parseFlags,
  renderEntry,
  type Step,
} from './kv-records.ts'
import { kvErrorReply, readKeyViews, writeAttemptsMax } from './kv-route.ts'
import { lockDelaysOf, lockOwnerOf, readSession } from './sessions.ts'

/** Operations in one /v1/txn body (Consul's limit since 1.7; it was 64). */
export const txnOpsMax = 128
/** Bytes of a /v1/txn body (Consul's txn_max_req_len default is 512 KiB; values are base64 here). */
export const txnBodyBytesMax = 1024 * 1024

const verbs = [
  'set',
  'cas',
  'lock',
  'unlock',
  'get',
  'get-or-empty',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
] as const
type Verb = (typeof verbs)[number]

export interface TxnKvOp {
  verb: Verb
  key: string
  /** base64, canonical. */
  value: string
  flags: string
  index: bigint
  session: string
}

/** A refused body: its status (400 or 413) and Consul-style text. */
class TxnBodyError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

export function registerTxnRoutes(app: FastifyInstance, deps: ConsulApiDeps): void {
  app.put('/v1/txn', async (request, reply) => {
    try {
      const ops = parseTxnBody(request.body)
      return await runTxn(reply, deps, ops)
    } catch (error) {
      if (error instanceof TxnBodyError) {
        return reply.code(error.status).type('text/plain; charset=utf-8').send(error.message)
      }
      return kvErrorReply(reply, error)
    }
  })
}

// ---- parsing ----

/** Parses and validates a /v1/txn body; throws TxnBodyError. */
export function parseTxnBody(body: unknown): TxnKvOp[] {
  const size = Buffer.isBuffer(body) ? body.length : typeof body === 'string' ? Buffer.byteLength(body) : 0
  if (size > txnBodyBytesMax) {
    throw new TxnBodyError(413, `Request body too large, max size: ${txnBodyBytesMax} bytes`)
  }
  let parsed: unknown
  try {
    parsed = jsonBody(body)
  } catch (error) {
    throw new TxnBodyError(400, `Failed to parse body: ${(error as Error).message}`)
  }
  if (!Array.isArray(parsed))
    throw new TxnBodyError(400, 'Failed to parse body: expected a JSON array of operations')
  if (parsed.length > txnOpsMax) {
    throw new TxnBodyError(413, `Transaction contains too many operations (${parsed.length} > ${txnOpsMax})`)
  }
  return parsed.map((item, i) => parseOp(item, i))
}

function field(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name]
  const lower = name.toLowerCase()
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v
  return undefined
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function parseOp(item: unknown, i: number): TxnKvOp {
  const bad = (what: string) => new TxnBodyError(400, `Failed to parse body: operation ${i}: ${what}`)
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad('expected an object')
  const op = item as Record<string, unknown>
  const kv = field(op, 'KV')
  if (kv === undefined || kv === null) {
    for (const other of ['Node', 'Service', 'Check', 'Session']) {
      if (field(op, other) !== undefined) {
        throw new TxnBodyError(400, `operation ${i}: ${other} operations are not supported yet (only KV)`)
      }
    }
    throw bad('no operation specified (expected a "KV" member)')
  }
  if (typeof kv !== 'object' || Array.isArray(kv)) throw bad('"KV" must be an object')
  const o = kv as Record<string, unknown>
  const verb = field(o, 'Verb')
  if (typeof verb !== 'string' || !(verbs as readonly string[]).includes(verb)) {
    throw bad(`unknown KV verb ${JSON.stringify(typeof verb === 'string' ? verb.slice(0, 64) : verb)}`)
  }
  const key = field(o, 'Key') ?? ''
  if (typeof key !== 'string') throw bad('Key must be a string')
  const problem = keyProblem(key)
  if (problem !== undefined) throw bad(problem)
  const session = field(o, 'Session') ?? ''
  if (typeof session !== 'string') throw bad('Session must be a string')
  return {
    verb: verb as Verb,
    key,
    value: readValue(field(o, 'Value'), key, bad),
    flags: readUint(field(o, 'Flags'), 'Flags', bad).toString(),
    index: readUint(field(o, 'Index'), 'Index', bad),
    session,
  }
}

function readValue(value: unknown, key: string, bad: (what: string) => TxnBodyError): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') throw bad('Value must be a base64 string')
  if (!base64Pattern.test(value)) throw bad('failed to decode value: not standard base64 with padding')
  const bytes = Buffer.from(value, 'base64')
  if (bytes.length > kvValueBytesMax) {
    throw new TxnBodyError(
      413,
      `Value for key ${JSON.stringify(key)} is too large (${bytes.length} > ${kvValueBytesMax} bytes)`,
    )
  }
  return bytes.toString('base64')
}

/** A uint64 field: a JSON number (exact only up to 2^53) or a decimal string. */
function readUint(value: unknown, name: string, bad: (what: string) => TxnBodyError): bigint {
  if (value === undefined || value === null) return 0n
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return BigInt(value)
    throw bad(`${name} must be an unsigned integer; above 2^53 give it as a decimal string`)
  }
  if (typeof value === 'string') {
    const canonical = parseFlags(value)
    if (canonical !== undefined) return BigInt(canonical)
  }
  throw bad(`${name} must be an unsigned 64-bit integer`)
}

// ---- running ----

interface Outcome {
  status: number
  body: string
  /** The store revision the transaction applied at (0 when refused). */
  revision: number
}

async function runTxn(
  reply: FastifyReply,
  deps: ConsulApiDeps,
  ops: readonly TxnKvOp[],
): Promise<FastifyReply> {
  const outcome = await applyTxn(deps, ops)
  if (outcome.status === 200 && !ops.some((op) => isWrite(op.verb))) {
    setReadHeaders(reply, deps, outcome.revision, 'consistent')
  }
  return reply.code(outcome.status).type('application/json').send(outcome.body)
}

function isWrite(verb: Verb): boolean {
  return ['set', 'cas', 'lock', 'unlock', 'delete', 'delete-tree', 'delete-cas'].includes(verb)
}

function conflict(opIndex: number, what: string): Outcome {
  return {
    status: 409,
    body: JSON.stringify({ Results: null, Errors: [{ OpIndex: opIndex, What: what }] }),
    revision: 0,
  }
}

/** Plans and applies the ops; the answer's status and body. */
export async function applyTxn(deps: ConsulApiDeps, ops: readonly TxnKvOp[]): Promise<Outcome> {
  const now = (deps.clock ?? Date.now)()
  const delays = lockDelaysOf(deps)
  for (const [i, op] of ops.entries()) {
    if (op.key === '' && op.verb !== 'delete-tree') return conflict(i, 'Must provide key')
    if (op.verb === 'lock' && delays.blocks(op.key, now)) {
      return conflict(i, `failed to lock key ${JSON.stringify(op.key)} due to lock delay`)
    }
  }
  const keys = ops.filter((op) => op.verb !== 'get-tree' && op.verb !== 'delete-tree').map((op) => op.key)
  const sessionIds = [...new Set(ops.filter((op) => op.verb === 'lock').map((op) => op.session))]
  for (let attempt = 0; attempt < writeAttemptsMax; attempt++) {
    const [views, sessions] = await Promise.all([
      readKeyViews(deps.store, keys),
      Promise.all(sessionIds.map((id) => readSession(deps.store, id))),
    ])
    const owners = new Map<string, LockOwner>()
    for (const s of sessions) if (s !== undefined) owners.set(s.record.ID, lockOwnerOf(s))
    const plan = new KvTxnPlan(views)
    const results: PlanResult[] = []
    for (const [i, op] of ops.entries()) {
      const step = planOp(plan, op, owners)
      if (!step.ok) return conflict(i, step.what)
      results.push(step.result)
    }
    if (plan.opCount > kvLimits.txnOpsMax || plan.compareCount > kvLimits.txnOpsMax) {
      throw new TxnBodyError(
        413,
        `Transaction expands to ${plan.opCount} store operations and ${plan.compareCount} compares, ` +
          `more than ${kvLimits.txnOpsMax}: split it`,
      )
    }
    let result: Awaited<ReturnType<typeof deps.store.txn>>
    try {
      result = await deps.store.txn(plan.request())
    } catch (error) {
      if (isKvError(error, 'KV_TXN_DUPLICATE_KEY')) return conflict(0, error.message)
      throw error
    }
    if (!result.succeeded) continue
    const rendered = results.flatMap((r) => renderResult(r, result.revision, result.responses))
    const body = `{"Results":[${rendered.map((kv) => `{"KV":${kv}}`).join(',')}],"Errors":null}`
    return { status: 200, body, revision: result.revision }
  }
  const error = new CairnError('CONSUL_WRITE_CONTENDED', `transaction of ${ops.length} operations`)
  return conflict(0, error.message)
}

function owner(owners: Map<string, LockOwner>, id: string): LockOwner | undefined {
  return owners.get(id.toLowerCase())
}

function planOp(plan: KvTxnPlan, op: TxnKvOp, owners: Map<string, LockOwner>): Step {
  switch (op.verb) {
    case 'set':
      return plan.set(op.key, op.value, op.flags)
    case 'cas':
      return plan.cas(op.key, op.value, op.flags, op.index)
    case 'lock':
      return plan.lock(op.key, op.value, op.flags, op.session, owner(owners, op.session))
    case 'unlock':
      return plan.unlock(op.key, op.value, op.flags, op.session.toLowerCase())
    case 'get':
      return plan.get(op.key, false)
    case 'get-or-empty':
      return plan.get(op.key, true)
    case 'get-tree':
      return plan.getTree(op.key)
    case 'check-index':
      return plan.checkIndex(op.key, op.index)
    case 'check-session':
      return plan.checkSession(op.key, op.session.toLowerCase())
    case 'check-not-exists':
      return plan.checkNotExists(op.key)
    case 'delete':
      return plan.delete(op.key)
    case 'delete-tree':
      return plan.deleteTree(op.key)
    case 'delete-cas':
      return plan.deleteCas(op.key, op.index)
  }
}

/** The KV JSON of one op's results (none, one, or a tree's entries). */
function renderResult(result: PlanResult, revision: number, responses: readonly TxnResponse[]): string[] {
  const kvsAt = (i: number): KeyValue[] => {
    const response = responses[i]
    return response?.type === 'range' ? response.kvs : []
  }
  switch (result.kind) {
    case 'none':
      return []
    case 'entry': {
      const v = result.view
      if (v.record === undefined) return []
      const entry: KvEntry = {
        key: v.key,
        record: v.record,
        createIndex: v.written && v.createRevision === 0 ? revision : v.createRevision,
        modifyIndex: v.written ? revision : v.modRevision,
        session: v.holder,
      }
      return [renderEntry(entry, false)]
    }
    case 'get': {
      const entry = entriesOf(kvsAt(result.kvOp), kvsAt(result.lockOp))[0]
      if (entry !== undefined) return [renderEntry(entry, true)]
      if (!result.orEmpty) return []
      const empty: KvEntry = {
        key: result.key,
        record: { v: '', f: '0', l: 0 },
        createIndex: 0,
        modifyIndex: 0,
        session: undefined,
      }
      return [renderEntry(empty, true)]
    }
    case 'tree':
      return entriesOf(kvsAt(result.kvOp), kvsAt(result.lockOp)).map((e) => renderEntry(e, true))
  }
}
