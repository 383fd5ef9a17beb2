/**
 * The one catalogue of Cairn's typed errors.
 *
 * Every operating error (not a programmer error: those are assertions) has a stable code here.
 * Codes never change meaning once released; each surface (etcd v2, Consul, fleet, CLI) maps a code
 * to its native error shape. docs/errors.md lists every code; a test keeps the two in step.
 */

export const errorCatalogue = {
  // Raft core: a proposal, read or membership request the core refused. Nothing was changed.
  RAFT_NO_LEADER: 'no leader is known; the proposal was not accepted',
  RAFT_UNCOMMITTED_BYTES_MAX: 'too many bytes are proposed but not yet committed (uncommittedBytesMax)',
  RAFT_LEADER_TRANSFER_IN_PROGRESS: 'leadership is being transferred; proposals are refused until it ends',
  RAFT_CONF_CHANGE_PENDING: 'a membership change is already pending; only one may be in flight at a time',
  RAFT_CONF_CHANGE_INVALID: 'the membership change does not apply to the current configuration',
  RAFT_LEARNER_NOT_CAUGHT_UP: 'the learner has not caught up with the leader and cannot be promoted yet',
  RAFT_READS_PENDING_MAX: 'too many linearizable reads are waiting for confirmation (readsPendingMax)',
  RAFT_NOT_MEMBER: 'this node is not a member of the cluster configuration',
  // Raft node driver: a request the member could not complete.
  RAFT_REQUEST_TIMEOUT: 'the request timed out; a write may still be applied later',
  RAFT_STOPPED: 'the member is stopping or stopped',
  RAFT_PROPOSALS_WAITING_MAX: 'too many requests are waiting for a leader (proposalsWaitingMax)',
  MEMBER_CONTEXT_INVALID: 'a membership change carries a malformed member description',
  // Agent configuration: flags and files given at start.
  CONFIG_INVALID: 'the configuration is invalid',
} as const

export type ErrorCode = keyof typeof errorCatalogue

export class CairnError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, detail?: string) {
    super(detail === undefined ? errorCatalogue[code] : `${errorCatalogue[code]}: ${detail}`)
    this.name = 'CairnError'
    this.code = code
  }
}

export function isCairnError(error: unknown, code?: ErrorCode): error is CairnError {
  return error instanceof CairnError && (code === undefined || error.code === code)
}
