/**
 * How the agent's own routes (local-routes.ts) answer a typed error: HTTP status by code family, and
 * the body `{code, message}`. The etcd v2 surface has its own shape (src/api/etcd-v2); these routes
 * are Cairn's and answer in Cairn's.
 */
import { type ErrorCode, isCairnError } from '../errors.ts'

export interface ErrorAnswer {
  status: number
  body: { code: ErrorCode | 'INTERNAL'; message: string }
}

const unavailable = new Set<ErrorCode>([
  'RAFT_NO_LEADER',
  'RAFT_STOPPED',
  'RAFT_REQUEST_TIMEOUT',
  'RAFT_LEADER_TRANSFER_IN_PROGRESS',
])
const tooBusy = new Set<ErrorCode>([
  'RAFT_UNCOMMITTED_BYTES_MAX',
  'RAFT_READS_PENDING_MAX',
  'RAFT_PROPOSALS_WAITING_MAX',
  'KV_WATCHERS_MAX',
])

export function errorAnswer(error: unknown): ErrorAnswer {
  if (!isCairnError(error)) {
    return { status: 500, body: { code: 'INTERNAL', message: 'internal error (see the agent log)' } }
  }
  const { code, message } = error
  let status = 400
  if (code === 'KV_KEY_NOT_FOUND') status = 404
  else if (code === 'KV_COMPARE_FAILED' || code === 'KV_NODE_EXISTS') status = 412
  else if (unavailable.has(code)) status = 503
  else if (tooBusy.has(code)) status = 429
  return { status, body: { code, message } }
}
