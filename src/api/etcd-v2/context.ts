/**
 * What every route of the etcd v2 surface shares: the deps, resolved limits and clock, the store
 * counters, the open watches, and the two reply writers (success and error), so each route file
 * stays a thin mapping.
 *
 * Invariants: `openWatches` holds exactly the watches whose response is still open (a watch is
 * added before its headers are written and removed when its response ends, however it ends);
 * its size never exceeds limits.watchesOpenMax.
 */
import type { FastifyReply } from 'fastify'
import { isCairnError } from '../../errors.ts'
import type { Command } from '../../kv/commands.ts'
import type { ApplyResult } from '../../kv/state-machine.ts'
import { errorCodeHeader } from '../../kv/store-wire.ts'
import { renderEvent } from '../../kv/v2-json.ts'
import { isCreated, type V2Result } from '../../kv/v2-node.ts'
import { planV2Write, type V2KeyRequest } from '../../kv/v2-request.ts'
import type { WatchRequest } from '../../kv/watch-hub.ts'
import type { Watcher } from '../../kv/watcher.ts'
import type { EtcdV2Deps } from './deps.ts'
import { isUnexpected, v2ErrorReply } from './errors.ts'
import { errorHeaders, type HeaderMap, keyHeaders } from './headers.ts'
import { type EtcdV2Limits, etcdV2LimitsDefault } from './limits.ts'
import { StoreStats } from './store-stats.ts'
import type { WatchServing } from './watch-route.ts'

export interface OpenWatch {
  /** Ends the response (200 with what was written so far, as etcd on shutdown) and cancels the watcher. */
  finish(): void
}

export class V2Context implements WatchServing {
  readonly deps: EtcdV2Deps
  readonly limits: EtcdV2Limits
  readonly clock: () => number
  readonly stats = new StoreStats()
  readonly openWatches = new Set<OpenWatch>()
  readonly startTimeMs: number

  constructor(deps: EtcdV2Deps) {
    this.deps = deps
    this.limits = { ...etcdV2LimitsDefault, ...deps.limits }
    this.clock = deps.clock ?? Date.now
    this.startTimeMs = this.clock()
  }

  get revision(): number {
    return this.deps.store.stateMachine.revision
  }

  countGet(ok: boolean): void {
    this.stats.countGet(ok)
  }

  watch(req: WatchRequest): Watcher {
    return this.deps.store.stateMachine.watch(req)
  }

  headersAt(index: number): HeaderMap {
    return keyHeaders(this.deps.clusterId, index, this.deps.raftStatus())
  }

  /** Whether a read must wait for store.readBarrier() first (quorum=true; not with the planted bug). */
  needsBarrier(req: V2KeyRequest): boolean {
    return req.quorum && this.deps.staleQuorumReads !== true
  }

  /**
   * The local read of a key request (after its barrier, if it needs one), counted as a success; a
   * failing read throws (its caller counts it and answers the error).
   */
  readAnswer(req: V2KeyRequest): V2Answer {
    const result = this.deps.store.stateMachine.v2Get(req.key, {
      recursive: req.recursive,
      sorted: req.sorted,
    })
    this.stats.countGet(true)
    return this.keyAnswer(200, result.index, renderEvent(result, this.clock()))
  }

  /**
   * The answer to a write (PUT, POST, DELETE): planned, stamped, proposed and applied, then counted
   * in the store stats as a success or a failure; a failure is etcd's error answer, and an
   * unexpected one (a bug) is also handed to `unexpected` for the caller to log. Never rejects.
   */
  async writeAnswer(req: V2KeyRequest, unexpected: (error: unknown) => void): Promise<V2Answer> {
    const { store } = this.deps
    let command: Command
    let applied: ApplyResult
    try {
      command = planV2Write(req, store.stamp())
    } catch (error) {
      return this.failureAnswer(error, unexpected)
    }
    try {
      applied = await store.writeStamped(command)
    } catch (error) {
      this.stats.countWrite(command.op, false)
      return this.failureAnswer(error, unexpected)
    }
    if (applied.type !== 'command' || !applied.ok) {
      this.stats.countWrite(command.op, false)
      const error = 'error' in applied ? applied.error : new Error(`unexpected apply result ${applied.type}`)
      return this.failureAnswer(error, unexpected)
    }
    this.stats.countWrite(command.op, true)
    const result = applied.result as V2Result
    return this.keyAnswer(isCreated(result) ? 201 : 200, result.index, renderEvent(result, this.clock()))
  }

  /** etcd's error answer; an unexpected error (a bug) is also handed to `unexpected` to be logged. */
  failureAnswer(error: unknown, unexpected: (error: unknown) => void): V2Answer {
    if (isUnexpected(error)) unexpected(error)
    return this.errorAnswer(error)
  }

  /** A key answer: etcd's JSON with a trailing newline (Go's json.Encoder) and the key headers. */
  keyAnswer(status: number, etcdIndex: number, body: unknown): V2Answer {
    const headers = keyHeaders(this.deps.clusterId, etcdIndex, this.deps.raftStatus())
    return { status, headers, body: `${JSON.stringify(body)}\n` }
  }

  /** An error answer in etcd's shape. */
  errorAnswer(error: unknown): V2Answer {
    const { status, body } = v2ErrorReply(error)
    const headers = errorHeaders(this.deps.clusterId, body.index)
    // Which Raft error it was, for a client agent forwarding the request (may another server take it?).
    if (isCairnError(error)) headers[errorCodeHeader] = error.code
    return { status, headers, body: `${JSON.stringify(body)}\n` }
  }

  /** An error reply in etcd's shape; unexpected errors (bugs) are logged. */
  sendError(reply: FastifyReply, error: unknown): FastifyReply {
    return send(reply, this.failureAnswer(error, logUnexpected(reply)))
  }
}

/** A reply of the keys API before it is written: by fastify (send) or by a fast path (plain-reads.ts). */
export interface V2Answer {
  status: number
  headers: HeaderMap
  body: string
}

export function send(reply: FastifyReply, answer: V2Answer): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body)
}

/** How a route logs an unexpected error (a bug): with its request, as fastify logs. */
export function logUnexpected(reply: FastifyReply): (error: unknown) => void {
  return (error) => reply.log.error({ err: error }, 'etcd v2: unexpected error')
}
