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
import { errorCodeHeader } from '../../kv/store-wire.ts'
import { renderEvent } from '../../kv/v2-json.ts'
import type { V2KeyRequest } from '../../kv/v2-request.ts'
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

  sendJson(reply: FastifyReply, status: number, etcdIndex: number, body: unknown): FastifyReply {
    return send(reply, this.keyAnswer(status, etcdIndex, body))
  }

  /** An error reply in etcd's shape; unexpected errors (bugs) are logged. */
  sendError(reply: FastifyReply, error: unknown): FastifyReply {
    if (isUnexpected(error)) reply.log.error({ err: error }, 'etcd v2: unexpected error')
    return send(reply, this.errorAnswer(error))
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
