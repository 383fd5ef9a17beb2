/**
 * A KvStore that applies commands in-process, as a one-member log would: each call stamps a
 * command with an id and the injected clock, encodes it, applies it as the next entry, and answers
 * with its result (or throws its KvError). For tests of the layers above kv and for tools; the
 * replicated store proposes the same commands through the node driver instead.
 *
 * It is also the leader here: expire(now) proposes what expiredAt(now) lists, as the node driver's
 * leader does (only with a confirmed quorum) on its expiry timer.
 */
import {
  type Command,
  type CommandOp,
  type CommandResults,
  type ExpireResult,
  encodeCommand,
  type UnstampedCommand,
} from './commands.ts'
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
import { KvStateMachine } from './state-machine.ts'
import type { WatchRequest } from './watch-hub.ts'
import type { LastChange, WatchSpec } from './watch-match.ts'
import type { Watcher } from './watcher.ts'

export type { UnstampedCommand } from './commands.ts'

export class LocalKvStore implements KvStore {
  readonly stateMachine: KvStateMachine
  readonly #clock: () => number
  #nextRequest = 1

  constructor(stateMachine = new KvStateMachine(), clock: () => number = Date.now) {
    this.stateMachine = stateMachine
    this.#clock = clock
  }

  /** Applies one command now; returns its result or throws its KvError. */
  apply<O extends CommandOp>(command: UnstampedCommand<O>): CommandResults[O] {
    const stamped = {
      ...command,
      id: `local-${this.#nextRequest++}`,
      now: this.#clock(),
    } as unknown as Command
    return this.#applyStamped(stamped) as CommandResults[O]
  }

  /** Expires what is due at the clock's now (the leader's job); undefined if nothing was due. */
  expire(): ExpireResult | undefined {
    const command = this.stateMachine.expireCommand(`local-${this.#nextRequest++}`, this.#clock())
    return command === undefined ? undefined : (this.#applyStamped(command) as ExpireResult)
  }

  async range(req: RangeRequest, _options?: ReadOptions): Promise<RangeResult> {
    return this.stateMachine.range(req)
  }

  async put(req: PutRequest): Promise<PutResult> {
    return this.apply<'put'>({ op: 'put', ...req })
  }

  async delete(req: DeleteRequest): Promise<DeleteResult> {
    return this.apply<'delete'>({ op: 'delete', ...req })
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    return this.apply<'txn'>({ op: 'txn', ...req })
  }

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseState> {
    return this.apply<'lease.grant'>({ op: 'lease.grant', ...req })
  }

  async leaseKeepAlive(id: number): Promise<LeaseState> {
    return this.apply<'lease.keepAlive'>({ op: 'lease.keepAlive', lease: id })
  }

  async leaseRevoke(id: number): Promise<LeaseRevokeResult> {
    return this.apply<'lease.revoke'>({ op: 'lease.revoke', lease: id })
  }

  async leaseTimeToLive(id: number, _options?: ReadOptions): Promise<LeaseInfo | undefined> {
    return this.stateMachine.lease(id)
  }

  async lastChange(spec: WatchSpec, sinceRevision: number, _options?: ReadOptions): Promise<LastChange> {
    return this.stateMachine.lastChange(spec, sinceRevision)
  }

  watch(req: WatchRequest): Watcher {
    return this.stateMachine.watch(req)
  }

  #applyStamped(command: Command): unknown {
    const sm = this.stateMachine
    const data = encodeCommand(command, sm.revision)
    const outcome = sm.apply({ index: sm.appliedIndex + 1, term: 1, type: 'normal', data })
    if (outcome.type === 'command') {
      if (outcome.ok) return outcome.result
      throw outcome.error
    }
    if (outcome.type === 'invalid') throw outcome.error
    throw new Error(`local kv store: unexpected apply outcome ${outcome.type}`)
  }
}
