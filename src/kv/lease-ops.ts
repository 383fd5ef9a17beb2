/**
 * Lease commands: grant, keep-alive, revoke, and expiry of one lease.
 *
 * Grant and keep-alive change no key, so they use no revision (as in etcd v3); they set the
 * lease's absolute deadline from the command's stamped clock. Revoking (or expiring) a lease
 * deletes its keys at one new revision, recording one event per key (`delete` when revoked,
 * `expire` when expired); a lease without keys is dropped without using a revision.
 */
import type { ApplyContext } from './apply-context.ts'
import { KvEvent } from './events.ts'
import type { KvNode } from './keyspace.ts'
import { KvError } from './kv-error.ts'
import { kvLimits } from './limits.ts'
import { removalViewOf, type V2WriteAction, viewOf } from './v2-node.ts'

export interface LeaseGrantRequest {
  /** 0 or absent: the store picks the next free id. */
  lease?: number | undefined
  ttlMs: number
}

export interface LeaseState {
  id: number
  ttlMs: number
  deadlineMs: number
}

export interface LeaseRevokeResult {
  revision: number
  deleted: number
}

export function leaseGrant(ctx: ApplyContext, req: LeaseGrantRequest): LeaseState {
  const leases = ctx.keyspace.leases
  const index = ctx.keyspace.revision
  const requested = req.lease ?? 0
  if (requested !== 0 && leases.get(requested) !== undefined) {
    throw new KvError('KV_LEASE_EXISTS', String(requested), index)
  }
  if (leases.size >= kvLimits.leasesMax) throw new KvError('KV_LEASES_MAX', `${leases.size} leases`, index)
  const id = requested === 0 ? leases.allocateId() : requested
  const lease = leases.grant(id, req.ttlMs, ctx.nowMs + req.ttlMs)
  return { id, ttlMs: lease.ttlMs, deadlineMs: lease.deadlineMs }
}

/** Restarts the lease's full TTL from the command's clock (keep-alives go through the log). */
export function leaseKeepAlive(ctx: ApplyContext, id: number): LeaseState {
  const leases = ctx.keyspace.leases
  const lease = leases.get(id)
  if (lease === undefined) throw new KvError('KV_LEASE_NOT_FOUND', String(id), ctx.keyspace.revision)
  leases.setDeadline(lease, ctx.nowMs + lease.ttlMs)
  return { id, ttlMs: lease.ttlMs, deadlineMs: lease.deadlineMs }
}

export function leaseRevoke(ctx: ApplyContext, id: number): LeaseRevokeResult {
  if (ctx.keyspace.leases.get(id) === undefined) {
    throw new KvError('KV_LEASE_NOT_FOUND', String(id), ctx.keyspace.revision)
  }
  return dropLease(ctx, id, 'delete')
}

/** Expires the lease if its deadline has passed by the command's clock; returns whether it did. */
export function expireLease(ctx: ApplyContext, id: number): boolean {
  const lease = ctx.keyspace.leases.get(id)
  if (lease === undefined || lease.deadlineMs > ctx.nowMs) return false
  dropLease(ctx, id, 'expire')
  return true
}

function dropLease(ctx: ApplyContext, id: number, action: V2WriteAction): LeaseRevokeResult {
  const ks = ctx.keyspace
  const lease = ks.leases.get(id)
  if (lease === undefined) throw new Error(`lease ops: lease ${id} vanished`)
  // Sorted: the order of a Set depends on history, and events must be the same on every member.
  const keys = [...lease.keys].sort()
  let revision = ks.revision
  if (keys.length > 0) {
    revision = ctx.nextRevision()
    for (const key of keys) {
      const node = ks.get(key) as KvNode
      ctx.record(new KvEvent(action, revision, removalViewOf(node, revision), viewOf(node), ctx.nowMs))
      ks.removeSubtree(node)
    }
  }
  ks.leases.remove(id)
  return { revision, deleted: keys.length }
}
