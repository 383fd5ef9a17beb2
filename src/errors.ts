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

  // Keyspace (src/kv): etcd v2 store errors, each carrying its etcd errorCode (see kv-error.ts).
  KV_KEY_NOT_FOUND: 'key not found',
  KV_COMPARE_FAILED: 'compare failed',
  KV_NOT_FILE: 'not a file',
  KV_NOT_DIR: 'not a directory',
  KV_NODE_EXISTS: 'key already exists',
  KV_ROOT_READ_ONLY: 'root is read only',
  KV_DIR_NOT_EMPTY: 'directory not empty',
  KV_PREV_VALUE_REQUIRED: 'prevValue is required (it may not be empty)',
  KV_TTL_NAN: 'the given TTL is not a number',
  KV_INDEX_NAN: 'the given index is not a number',
  KV_INVALID_FIELD: 'invalid field',
  KV_INVALID_FORM: 'invalid form',
  KV_REFRESH_VALUE: 'a value was provided on a refresh',
  KV_REFRESH_TTL_REQUIRED: 'a TTL must be provided on a refresh',
  KV_EVENT_INDEX_CLEARED: 'the event in the requested index is outdated and cleared',
  KV_WATCHER_CLEARED: 'the watcher was cleared (the store is shutting down)',
  // Keyspace: Cairn's own limits and checks.
  KV_KEY_INVALID: 'the key is not valid (too long, too deep, or not a canonical absolute path)',
  KV_VALUE_TOO_LARGE: 'the value is larger than valueBytesMax',
  KV_TTL_INVALID: 'the TTL is out of range (0..ttlMsMax)',
  KV_TXN_TOO_MANY_OPS: 'too many operations in the transaction (txnOpsMax)',
  KV_TXN_DUPLICATE_KEY: 'two writes in one transaction touch the same key or nested keys',
  KV_SPACE_EXCEEDED: 'the keyspace is full (keyspaceBytesMax); only deletes are accepted',
  KV_LEASE_NOT_FOUND: 'the lease does not exist (it expired or was revoked)',
  KV_LEASE_EXISTS: 'a lease with this id already exists',
  KV_LEASES_MAX: 'too many leases (leasesMax)',
  KV_MEMBER_NOT_FOUND: 'no member with this id',
  KV_COMMAND_INVALID: 'the command could not be decoded or is malformed; nothing was changed',
  KV_SNAPSHOT_INVALID: 'the keyspace snapshot could not be decoded',
  KV_WATCHERS_MAX: 'too many watchers on this member (watchersMax)',
  KV_WATCHER_SLOW: 'the watcher fell more than watcherEventsMax events behind and was cancelled',
  // Raft node driver: a request the member could not complete.
  RAFT_REQUEST_TIMEOUT: 'the request timed out; a write may still be applied later',
  RAFT_STOPPED: 'the member is stopping or stopped',
  RAFT_PROPOSALS_WAITING_MAX: 'too many requests are waiting for a leader (proposalsWaitingMax)',
  RAFT_PROPOSALS_PENDING_MAX:
    'too many proposals on this member are waiting to be applied (proposalsPendingMax)',
  MEMBER_CONTEXT_INVALID: 'a membership change carries a malformed member description',
  // Durable storage (src/raft/storage): the member stops rather than risk losing data.
  STORAGE_CORRUPT: 'the data directory is corrupt',
  STORAGE_IO: 'a storage operation failed',
  STORAGE_FAILED: 'storage failed earlier and refuses further calls until restart',
  STORAGE_LIMIT: 'a storage limit would be exceeded',
  // Peer transport: reasons a connection or snapshot stream was closed (logged and counted, never thrown).
  TRANSPORT_FRAME_BYTES_MAX: 'a frame is longer than frameBytesMax; the connection was closed',
  TRANSPORT_FRAME_INVALID:
    'a frame is empty, of an unknown kind, or not allowed at this point of the protocol',
  TRANSPORT_HANDSHAKE_INVALID: 'the first frame of a connection is not a well-formed handshake',
  TRANSPORT_HANDSHAKE_REFUSED:
    'the handshake was refused (wrong cluster id, wrong member id, protocol, or busy)',
  TRANSPORT_HANDSHAKE_TIMEOUT: 'no handshake completed within dialTimeoutMs / handshakeTimeoutMs',
  TRANSPORT_CONNECTION_LOST: 'the connection closed or failed',
  TRANSPORT_CONNECTION_REFUSED:
    "the peer's address refused the connection: nothing listens there, so its process is down",
  TRANSPORT_SNAPSHOT_BYTES_MAX: 'a snapshot is larger than snapshotBytesMax',
  TRANSPORT_SNAPSHOT_INVALID:
    'a snapshot stream is malformed (header, chunk beyond the declared length, end marker)',
  TRANSPORT_SNAPSHOT_CHECKSUM: 'a snapshot arrived with the wrong length or checksum',
  TRANSPORT_SNAPSHOT_TIMEOUT: 'a snapshot stream made no progress for snapshotIdleTimeoutMs',
  TRANSPORT_SNAPSHOT_BUSY: 'a snapshot to this peer is already streaming (one at a time per peer)',
  // Agent configuration: flags and files given at start.
  CONFIG_INVALID: 'the configuration is invalid',
  DATA_DIR_LOCKED: 'the data directory is in use by another running agent',
  // Agent health checks (src/agent/checks): definitions and TTL updates the agent refused.
  CHECK_INVALID: 'the check definition is invalid; nothing was changed',
  CHECK_NOT_TTL: 'the check is not a TTL check; only TTL checks take pass, warn, fail and update',
  // Catalog (src/catalog) and the Consul v1 API (src/api/consul): refused requests change nothing.
  CATALOG_INVALID: 'the catalog request is invalid; nothing was changed',
  CATALOG_NODE_NOT_FOUND: 'the node is not registered in the catalog',
  CATALOG_SERVICE_NOT_FOUND: 'no service with this id is registered',
  CATALOG_CHECK_NOT_FOUND: 'no check with this id is registered',
  CONSUL_REQUEST_INVALID:
    'the request is malformed (a bad parameter, duration or JSON body); nothing was changed',
  CONSUL_FILTER_INVALID: 'the filter expression is invalid',
  SESSION_NOT_FOUND: 'the session does not exist (it expired, was destroyed or never existed)',
  SESSION_INVALID: 'the session request is invalid; nothing was changed',
  CONSUL_WRITE_CONTENDED:
    'a KV, session or txn write lost its compare to concurrent writes on the same keys too many times; nothing was changed',
  // Scheduler unit files and names (src/scheduler): a refused unit changes nothing.
  UNIT_INVALID: 'the unit file is invalid; nothing was changed',
  UNIT_NAME_INVALID: 'the unit name (or brace expansion of names) is invalid',
  PLACEMENT_LIMIT:
    'the placement index is full (machinesMax or assignmentsMax); place() refuses before this is reached',
  // The fleet v1 API (src/api/fleet): a refused request changes nothing.
  FLEET_REQUEST_INVALID:
    'the fleet request is malformed (bad JSON, a bad parameter, page token or field); nothing was changed',
  FLEET_UNIT_NOT_FOUND: 'the unit does not exist',
  FLEET_FIELDS_MISSING:
    'the request lacks a field it needs: options (or text) to create a unit, desiredState to change one',
  FLEET_UNIT_IMMUTABLE:
    "a unit's content cannot change once submitted (destroy it first, or replace it with ?replace=true)",
  FLEET_TEMPLATE_MISSING: "an instance's template is not submitted",
  FLEET_TEMPLATE_IN_USE: 'the template still has instances; destroy them first',
  FLEET_WRITE_CONTENDED:
    'a unit write lost its compare to concurrent writes on the same unit too many times; nothing was changed',
  FLEET_MACHINE_UNREACHABLE: "the machine that holds the unit's journal cannot be reached",
} as const

export type ErrorCode = keyof typeof errorCatalogue

export class CairnError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail === undefined ? errorCatalogue[code] : `${errorCatalogue[code]}: ${detail}`, options)
    this.name = 'CairnError'
    this.code = code
  }
}

export function isCairnError(error: unknown, code?: ErrorCode): error is CairnError {
  return error instanceof CairnError && (code === undefined || error.code === code)
}
