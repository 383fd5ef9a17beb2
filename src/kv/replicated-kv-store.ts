/**
 * The store interface (kv-store.ts) over a ReplicatedStore: what the catalog, the Consul API and
 * the agent's machine lease use on a server member.
 *
 * Writes propose one command through Raft and resolve with its result as applied on this member
 * (or throw its KvError); reads are linearizable by default (a ReadIndex barrier, then the local
 * state) and local with `serializable: true`. Watches are this member's (they report what it
 * applied).
 */
import type { CommandOp, CommandResults, UnstampedCommand } from './commands.ts'
import type { KvStore, ReadOptions } from './kv-store.ts'
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
import type { ReplicatedStore } from './replicated-store.ts'
import type { WatchRequest } from './watch-hub.ts'
import type { LastChange, WatchSpec } from './watch-match.ts'
import type { Watcher } from './watcher.ts'

export class ReplicatedKvStore implements KvStore {
  readonly #store: ReplicatedStore

  constructor(store: ReplicatedStore) {
    this.#store = store
  }

  async #write<O extends CommandOp>(command: UnstampedCommand<O>): Promise<CommandResults[O]> {
    const outcome = await this.#store.write(command as UnstampedCommand)
    if (outcome.type === 'command') {
      if (outcome.ok) return outcome.result as CommandResults[O]
      throw outcome.error
    }
    if (outcome.type === 'invalid') throw outcome.error
    throw new Error(`replicated kv store: unexpected apply outcome ${outcome.type}`)
  }

  async range(req: RangeRequest, options?: ReadOptions): Promise<RangeResult> {
    if (options?.serializable !== true) await this.#store.readBarrier()
    return this.#store.stateMachine.range(req)
  }

  put(req: PutRequest): Promise<PutResult> {
    return this.#write<'put'>({ op: 'put', ...req })
  }

  delete(req: DeleteRequest): Promise<DeleteResult> {
    return this.#write<'delete'>({ op: 'delete', ...req })
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    return this.#write<'txn'>({ op: 'txn', ...req })
  }

  leaseGrant(req: LeaseGrantRequest): Promise<LeaseState> {
    return this.#write<'lease.grant'>({ op: 'lease.grant', ...req })
  }

  leaseKeepAlive(id: number): Promise<LeaseState> {
    return this.#write<'lease.keepAlive'>({ op: 'lease.keepAlive', lease: id })
  }

  leaseRevoke(id: number): Promise<LeaseRevokeResult> {
    return this.#write<'lease.revoke'>({ op: 'lease.revoke', lease: id })
  }

  async leaseTimeToLive(id: number, options?: ReadOptions): Promise<LeaseInfo | undefined> {
    if (options?.serializable !== true) await this.#store.readBarrier()
    return this.#store.stateMachine.lease(id)
  }

  async lastChange(spec: WatchSpec, sinceRevision: number, options?: ReadOptions): Promise<LastChange> {
    if (options?.serializable !== true) await this.#store.readBarrier()
    return this.#store.stateMachine.lastChange(spec, sinceRevision)
  }

  watch(req: WatchRequest): Watcher {
    return this.#store.stateMachine.watch(req)
  }
}
