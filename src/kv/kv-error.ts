/**
 * Typed keyspace errors that carry what etcd v2 answers with, so the HTTP layer maps them 1:1.
 *
 * A KvError is a CairnError (its `code` is in the one catalogue, src/errors.ts) plus the etcd v2
 * error body: `errorCode` (etcd's number), `etcdMessage` (etcd's exact message text), `etcdCause`
 * (etcd's cause string, e.g. the key or `[two != one]`) and `index` (the store revision when it was
 * raised, for the body and `X-Etcd-Index`). Codes etcd never had map to the closest etcd number.
 * EventIndexCleared also carries `oldestIndex`, the oldest revision still available, as a field.
 */
import { CairnError, type ErrorCode } from '../errors.ts'

export type KvErrorCode = Extract<ErrorCode, `KV_${string}`>

interface EtcdShape {
  errorCode: number
  message: string
}

/** etcd 2.3 error/error.go numbers and messages. */
const etcdShapes: Record<KvErrorCode, EtcdShape> = {
  KV_KEY_NOT_FOUND: { errorCode: 100, message: 'Key not found' },
  KV_COMPARE_FAILED: { errorCode: 101, message: 'Compare failed' },
  KV_NOT_FILE: { errorCode: 102, message: 'Not a file' },
  KV_NOT_DIR: { errorCode: 104, message: 'Not a directory' },
  KV_NODE_EXISTS: { errorCode: 105, message: 'Key already exists' },
  KV_ROOT_READ_ONLY: { errorCode: 107, message: 'Root is read only' },
  KV_DIR_NOT_EMPTY: { errorCode: 108, message: 'Directory not empty' },
  KV_PREV_VALUE_REQUIRED: { errorCode: 201, message: 'PrevValue is Required in POST form' },
  KV_TTL_NAN: { errorCode: 202, message: 'The given TTL in POST form is not a number' },
  KV_INDEX_NAN: { errorCode: 203, message: 'The given index in POST form is not a number' },
  KV_INVALID_FIELD: { errorCode: 209, message: 'Invalid field' },
  KV_INVALID_FORM: { errorCode: 210, message: 'Invalid POST form' },
  KV_REFRESH_VALUE: { errorCode: 211, message: 'Value provided on refresh' },
  KV_REFRESH_TTL_REQUIRED: { errorCode: 212, message: 'A TTL must be provided on refresh' },
  KV_EVENT_INDEX_CLEARED: {
    errorCode: 401,
    message: 'The event in requested index is outdated and cleared',
  },
  KV_WATCHER_CLEARED: { errorCode: 400, message: 'watcher is cleared due to etcd recovery' },
  // Cairn's own: bad input → 209 (HTTP 400); capacity and internal faults → 300 (HTTP 500).
  KV_KEY_INVALID: { errorCode: 209, message: 'Invalid field' },
  KV_VALUE_TOO_LARGE: { errorCode: 209, message: 'Invalid field' },
  KV_TTL_INVALID: { errorCode: 202, message: 'The given TTL in POST form is not a number' },
  KV_TXN_TOO_MANY_OPS: { errorCode: 209, message: 'Invalid field' },
  KV_TXN_DUPLICATE_KEY: { errorCode: 209, message: 'Invalid field' },
  KV_SPACE_EXCEEDED: { errorCode: 300, message: 'Raft Internal Error' },
  KV_LEASE_NOT_FOUND: { errorCode: 100, message: 'Key not found' },
  KV_LEASE_EXISTS: { errorCode: 105, message: 'Key already exists' },
  KV_LEASES_MAX: { errorCode: 300, message: 'Raft Internal Error' },
  KV_MEMBER_NOT_FOUND: { errorCode: 100, message: 'Key not found' },
  KV_COMMAND_INVALID: { errorCode: 300, message: 'Raft Internal Error' },
  KV_SNAPSHOT_INVALID: { errorCode: 300, message: 'Raft Internal Error' },
  KV_WATCHERS_MAX: { errorCode: 300, message: 'Raft Internal Error' },
  KV_WATCHER_SLOW: { errorCode: 400, message: 'watcher is cleared due to etcd recovery' },
}

/** The etcd v2 error body, ready to serialize (`cause` omitted when empty, as etcd does). */
export interface V2ErrorBody {
  errorCode: number
  message: string
  cause?: string
  index: number
}

export class KvError extends CairnError {
  declare readonly code: KvErrorCode
  readonly errorCode: number
  readonly etcdMessage: string
  readonly etcdCause: string
  readonly index: number
  /** EventIndexCleared only: the oldest revision still in the history. */
  readonly oldestIndex: number | undefined

  constructor(code: KvErrorCode, etcdCause: string, index: number, oldestIndex?: number) {
    super(code, etcdCause === '' ? undefined : etcdCause)
    this.name = 'KvError'
    const shape = etcdShapes[code]
    this.errorCode = shape.errorCode
    this.etcdMessage = shape.message
    this.etcdCause = etcdCause
    this.index = index
    this.oldestIndex = oldestIndex
  }

  v2Body(): V2ErrorBody {
    const body: V2ErrorBody = { errorCode: this.errorCode, message: this.etcdMessage, index: this.index }
    if (this.etcdCause !== '') body.cause = this.etcdCause
    return body
  }
}

export function isKvError(error: unknown, code?: KvErrorCode): error is KvError {
  return error instanceof KvError && (code === undefined || error.code === code)
}

export function etcdErrorCodeOf(code: KvErrorCode): number {
  return etcdShapes[code].errorCode
}

/** etcd 2.3 error.go StatusCode(): the HTTP status for an etcd errorCode (400 for any other). */
const httpStatusByErrorCode: ReadonlyMap<number, number> = new Map([
  [100, 404],
  [101, 412],
  [102, 403],
  [105, 412],
  [108, 403],
  [110, 401],
  [300, 500],
  [301, 500],
])

export function v2HttpStatus(errorCode: number): number {
  return httpStatusByErrorCode.get(errorCode) ?? 400
}
