/**
 * The wire format of the internal store API (`/_cairn/store/v1/`, docs/store-api.md), shared by the
 * server routes (src/api/store) and the client (remote-kv-store.ts), so the two cannot drift.
 *
 * Errors travel as `{code, message, cause?, index?, oldestIndex?}`: `code` is a catalogue code
 * (src/errors.ts), `cause` the detail the error was built with (a KvError's etcdCause, the text
 * after "catalogue message: " of any other CairnError), `index`/`oldestIndex` a KvError's fields.
 * errorOfBody() rebuilds the same typed error: same class, code, message and fields.
 *
 * A watch is a stream of NDJSON lines (one JSON object each): an event (the fields KvEvent's
 * constructor takes), `{"status":"live"}` once the server's watcher caught up with the head,
 * `{"heartbeat":{"revision":R}}` (a progress mark: every matching event up to R was written
 * before it), and at most one final `{"canceled":<error body>}`.
 *
 * Reading untrusted lines never crashes: readWatchLine() checks every field and throws a plain
 * Error naming what is wrong (the client then treats the stream as broken).
 */
import { CairnError, type ErrorCode, errorCatalogue } from '../errors.ts'
import { KvEvent } from './events.ts'
import { KvError, type KvErrorCode } from './kv-error.ts'
import { isPlainObject } from './msgpack.ts'
import type { V2Node, V2NodeDraft, V2WriteAction } from './v2-node.ts'

export const storeApiPrefix = '/_cairn/store/v1'

/** Response headers of a watch: the store revision when it started, and its first revision. */
export const watchStartRevisionHeader = 'x-cairn-start-revision'
export const watchSinceRevisionHeader = 'x-cairn-since-revision'
export const ndjsonContentType = 'application/x-ndjson'

/** The code of an answer that is not a catalogue error (a server bug); never rebuilt as a CairnError. */
export const internalErrorCode = 'INTERNAL'

export interface ErrorBody {
  code: string
  message: string
  cause?: string
  index?: number
  oldestIndex?: number
}

/**
 * Set by a server on an error reply of any surface whose failure is one of the catalogue's Raft
 * errors (its code, e.g. RAFT_NO_LEADER), so a client agent forwarding the request knows whether
 * another server may take it (RemoteKvStore.forward).
 */
export const errorCodeHeader = 'x-cairn-error-code'

export interface EventWire {
  action: V2WriteAction
  revision: number
  node: V2Node
  prevNode?: V2Node
  nowMs: number
  refresh?: true
}

export type WatchLine =
  | { kind: 'event'; event: KvEvent }
  | { kind: 'live' }
  | { kind: 'heartbeat'; revision: number }
  | { kind: 'canceled'; error: Error }

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalogue, code)
}

/** The wire body of an error; anything that is not a CairnError is an internal error. */
export function errorBodyOf(error: unknown): ErrorBody {
  if (error instanceof KvError) {
    const body: ErrorBody = { code: error.code, message: error.message, index: error.index }
    if (error.etcdCause !== '') body.cause = error.etcdCause
    if (error.oldestIndex !== undefined) body.oldestIndex = error.oldestIndex
    return body
  }
  if (error instanceof CairnError) {
    const body: ErrorBody = { code: error.code, message: error.message }
    const prefix = `${errorCatalogue[error.code]}: `
    if (error.message.startsWith(prefix)) body.cause = error.message.slice(prefix.length)
    return body
  }
  return { code: internalErrorCode, message: 'internal error' }
}

/**
 * The typed error a body describes: a KvError or CairnError equal to the one the server raised, or
 * a plain Error (prefixed with `where`) when the body is not a catalogue error.
 */
export function errorOfBody(body: unknown, where: string): Error {
  if (!isPlainObject(body)) return new Error(`${where}: the answer is not an error body`)
  const { code, cause, index, oldestIndex } = body
  const detail = typeof cause === 'string' ? cause : undefined
  if (isErrorCode(code) && code.startsWith('KV_')) {
    return new KvError(
      code as KvErrorCode,
      detail ?? '',
      safeInteger(index) ? index : 0,
      safeInteger(oldestIndex) ? oldestIndex : undefined,
    )
  }
  if (isErrorCode(code)) return new CairnError(code, detail)
  const message = typeof body.message === 'string' ? body.message : 'no message'
  return new Error(`${where}: ${String(code)}: ${message}`)
}

export function eventWireOf(event: KvEvent): EventWire {
  const wire: EventWire = {
    action: event.action,
    revision: event.revision,
    node: event.node,
    nowMs: event.nowMs,
  }
  if (event.prevNode !== undefined) wire.prevNode = event.prevNode
  if (event.refresh) wire.refresh = true
  return wire
}

/** One NDJSON line of a watch, without its newline. */
export function watchLineOf(event: KvEvent): string {
  return JSON.stringify(eventWireOf(event))
}

export const liveLine = '{"status":"live"}'

export function heartbeatLine(revision: number): string {
  return `{"heartbeat":{"revision":${revision}}}`
}

export function canceledLine(error: unknown): string {
  return JSON.stringify({ canceled: errorBodyOf(error) })
}

/** Parses and checks one line of a watch stream (throws a plain Error if it is malformed). */
export function readWatchLine(text: string, where: string): WatchLine {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new Error(`${where}: a watch line is not JSON`)
  }
  if (!isPlainObject(value)) throw new Error(`${where}: a watch line is not an object`)
  if (Object.hasOwn(value, 'action')) return { kind: 'event', event: eventOfWire(value, where) }
  if (value.status === 'live') return { kind: 'live' }
  if (Object.hasOwn(value, 'heartbeat')) {
    const beat = value.heartbeat
    if (!isPlainObject(beat) || !revisionLike(beat.revision))
      throw new Error(`${where}: a heartbeat without a revision`)
    return { kind: 'heartbeat', revision: beat.revision }
  }
  if (Object.hasOwn(value, 'canceled')) return { kind: 'canceled', error: errorOfBody(value.canceled, where) }
  throw new Error(`${where}: an unknown watch line`)
}

const writeActions: ReadonlySet<string> = new Set<V2WriteAction>([
  'set',
  'create',
  'update',
  'compareAndSwap',
  'delete',
  'compareAndDelete',
  'expire',
])

/** Rebuilds a KvEvent from its wire object, checking every field. */
export function eventOfWire(value: Record<string, unknown>, where: string): KvEvent {
  const { action, revision, node, prevNode, nowMs, refresh } = value
  if (typeof action !== 'string' || !writeActions.has(action)) throw new Error(`${where}: bad event action`)
  if (!revisionLike(revision) || revision < 1) throw new Error(`${where}: bad event revision`)
  if (!safeInteger(nowMs)) throw new Error(`${where}: bad event nowMs`)
  if (refresh !== undefined && refresh !== true) throw new Error(`${where}: bad event refresh`)
  const view = nodeOfWire(node, where)
  if (view.modifiedIndex !== revision)
    throw new Error(`${where}: event node.modifiedIndex is not its revision`)
  const prev = prevNode === undefined ? undefined : nodeOfWire(prevNode, where)
  return new KvEvent(action as V2WriteAction, revision, view, prev, nowMs, refresh === true)
}

function nodeOfWire(value: unknown, where: string): V2Node {
  if (!isPlainObject(value)) throw new Error(`${where}: an event node is not an object`)
  const { key, createdIndex, modifiedIndex } = value
  if (typeof key !== 'string' || !revisionLike(createdIndex) || !revisionLike(modifiedIndex))
    throw new Error(`${where}: an event node needs key, createdIndex and modifiedIndex`)
  const view: V2NodeDraft = { key, createdIndex, modifiedIndex }
  if (value.value !== undefined) {
    if (typeof value.value !== 'string') throw new Error(`${where}: an event node value is not a string`)
    view.value = value.value
  }
  if (value.dir !== undefined) {
    if (value.dir !== true) throw new Error(`${where}: an event node dir is not true`)
    view.dir = true
  }
  if (value.expiresAtMs !== undefined) {
    if (!safeInteger(value.expiresAtMs))
      throw new Error(`${where}: an event node expiresAtMs is not an integer`)
    view.expiresAtMs = value.expiresAtMs
  }
  return view
}

function safeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value)
}

function revisionLike(value: unknown): value is number {
  return safeInteger(value) && value >= 0
}
