/**
 * The narrow store interface everything above kv uses (catalog, scheduler, DNS view): v3-style
 * range, put, delete, txn, leases and watch over the one keyspace. None of its users reach into
 * Raft; a replicated implementation proposes the commands (commands.ts) through the node driver,
 * and LocalKvStore (local-kv-store.ts) applies them in-process.
 *
 * Reads are linearizable by default (the implementation confirms with ReadIndex before reading
 * the local state); `serializable: true` reads the local state as it is (possibly stale).
 * Writes resolve once committed and applied, with the result or the typed KvError.
 */
import type { LeaseGrantRequest, LeaseRevokeResult, LeaseState } from './lease-ops.ts'
import type { LeaseInfo } from './leases.ts'
import type {
  DeleteRequest,
  DeleteResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  TxnRequest,
  TxnResult,
} from './mvcc.ts'
import type { WatchRequest } from './watch-hub.ts'
import type { LastChange, WatchSpec } from './watch-match.ts'
import type { Watcher } from './watcher.ts'

export interface ReadOptions {
  serializable?: boolean
}

export interface KvStore {
  range(req: RangeRequest, options?: ReadOptions): Promise<RangeResult>
  put(req: PutRequest): Promise<PutResult>
  delete(req: DeleteRequest): Promise<DeleteResult>
  txn(req: TxnRequest): Promise<TxnResult>
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseState>
  /** One keep-alive is one log entry: it sets the lease's deadline to now + TTL on every member. */
  leaseKeepAlive(id: number): Promise<LeaseState>
  leaseRevoke(id: number): Promise<LeaseRevokeResult>
  leaseTimeToLive(id: number, options?: ReadOptions): Promise<LeaseInfo | undefined>
  /**
   * Whether a watch on `spec` from `sinceRevision` would have seen anything by now: the newest
   * matching revision (0: none) and the store revision judged at. Linearizable by default, like a
   * read. A client agent uses it to learn whether its watch-fed copy is current (a read barrier);
   * KV_EVENT_INDEX_CLEARED when `sinceRevision` is compacted.
   */
  lastChange(spec: WatchSpec, sinceRevision: number, options?: ReadOptions): Promise<LastChange>
  /** A watcher on this member (see watcher.ts for the consumer contract). */
  watch(req: WatchRequest): Watcher
}
