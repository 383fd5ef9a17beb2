/**
 * Every failure on the etcd v2 surface as etcd's error body {errorCode, message, cause?, index}
 * and etcd's HTTP status.
 *
 *   - KvError: its own etcd code and body; status from etcd's StatusCode() table (v2HttpStatus).
 *   - Raft driver errors (timeout, no leader, stopping, queues full): etcd wrapped every non-store
 *     error as 300 "Raft Internal Error" with the error text as cause and index 0 (writeKeyError);
 *     Cairn does the same, with its catalogue message as the cause, so the client learns why.
 *   - HTTP-level refusals (body too large, malformed encoding): 210 "Invalid POST form" (what etcd
 *     answered when Go's ParseForm failed), with the HTTP status fastify chose (413, 400).
 *   - Limits of this surface (open watches): 300 with HTTP 503 and the limit's name as the cause.
 *   - Anything else is a bug: 300 / 500, logged by the caller.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isCairnError } from '../../errors.ts'
import { isKvError, type V2ErrorBody, v2HttpStatus } from '../../kv/kv-error.ts'

export interface V2ErrorReply {
  status: number
  body: V2ErrorBody
}

const raftInternal = { errorCode: 300, message: 'Raft Internal Error' }
const invalidForm = { errorCode: 210, message: 'Invalid POST form' }

/** A refusal by a limit of the HTTP layer itself. */
export class V2LimitError extends Error {
  readonly limit: string
  constructor(limit: string, detail: string) {
    super(`${limit}: ${detail}`)
    this.name = 'V2LimitError'
    this.limit = limit
  }
}

export function v2ErrorReply(error: unknown): V2ErrorReply {
  if (isKvError(error)) return { status: v2HttpStatus(error.errorCode), body: inEtcdOrder(error.v2Body()) }
  if (error instanceof V2LimitError) {
    return { status: 503, body: { ...raftInternal, cause: error.message, index: 0 } }
  }
  if (isCairnError(error)) return { status: 500, body: { ...raftInternal, cause: error.message, index: 0 } }
  const status = httpStatusOf(error)
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, body: { ...invalidForm, cause: (error as Error).message, index: 0 } }
  }
  return { status: 500, body: { ...raftInternal, cause: 'internal error', index: 0 } }
}

/** Whether the reply is a server fault worth logging (not a client's mistake or a known state). */
export function isUnexpected(error: unknown): boolean {
  return !isKvError(error) && !isCairnError(error) && !(error instanceof V2LimitError) && !clientFault(error)
}

function clientFault(error: unknown): boolean {
  const status = httpStatusOf(error)
  return status !== undefined && status >= 400 && status < 500
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const status = (error as { statusCode?: unknown }).statusCode
  return typeof status === 'number' ? status : undefined
}

/** etcd's field order (Go struct order: errorCode, message, cause, index), for byte-equal bodies. */
function inEtcdOrder(body: V2ErrorBody): V2ErrorBody {
  const { errorCode, message, cause, index } = body
  return cause === undefined ? { errorCode, message, index } : { errorCode, message, cause, index }
}

/**
 * For the server's `frameworkErrors` option (fastify answers these before any route or plugin:
 * a malformed percent-escape in the URL, a bad Content-Type header): etcd's error body, 210.
 */
export function etcdV2FrameworkErrors(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  const { status, body } = v2ErrorReply(error)
  reply
    .code(status)
    .type('application/json')
    .send(`${JSON.stringify(body)}\n`)
}
