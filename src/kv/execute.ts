/**
 * Runs one decoded command against the keyspace: the dispatch from a command to its operation.
 *
 * Throws KvError for an operating error (the state machine turns it into the command's result);
 * whatever it throws, nothing was changed (each operation checks before it mutates).
 */
import type { ApplyContext } from './apply-context.ts'
import type { Command, CommandResult, ExpireResult } from './commands.ts'
import type { History } from './history.ts'
import { KvError } from './kv-error.ts'
import { expireLease, leaseGrant, leaseKeepAlive, leaseRevoke } from './lease-ops.ts'
import type { MemberTable } from './members.ts'
import { deleteRange, put, txn } from './mvcc.ts'
import {
  v2CompareAndDelete,
  v2CompareAndSwap,
  v2Create,
  v2Delete,
  v2ExpireKey,
  v2Set,
  v2Update,
} from './v2-store.ts'

export interface ExecuteDeps {
  members: MemberTable
  history: History
}

export function executeCommand(command: Command, ctx: ApplyContext, deps: ExecuteDeps): CommandResult {
  switch (command.op) {
    case 'v2.set':
      return v2Set(ctx, command)
    case 'v2.create':
      return v2Create(ctx, command)
    case 'v2.update':
      return v2Update(ctx, command)
    case 'v2.cas':
      return v2CompareAndSwap(ctx, command)
    case 'v2.delete':
      return v2Delete(ctx, command)
    case 'v2.cad':
      return v2CompareAndDelete(ctx, command)
    case 'put':
      return put(ctx, command)
    case 'delete':
      return deleteRange(ctx, command)
    case 'txn':
      return txn(ctx, command)
    case 'lease.grant':
      return leaseGrant(ctx, command)
    case 'lease.keepAlive':
      return leaseKeepAlive(ctx, command.lease)
    case 'lease.revoke':
      return leaseRevoke(ctx, command.lease)
    case 'expire':
      return expire(ctx, command.keys, command.leases)
    case 'member.update': {
      const { nodeId, name, peerUrls, clientUrls } = command
      const member = deps.members.update(nodeId, { name, peerUrls, clientUrls })
      if (member === undefined)
        throw new KvError('KV_MEMBER_NOT_FOUND', String(nodeId), ctx.keyspace.revision)
      return member
    }
    case 'compact':
      deps.history.compactTo(Math.min(command.revision, ctx.keyspace.revision))
      return { compactedRevision: deps.history.compactedRevision }
  }
}

/** Keys first (each at its own revision, as etcd v2 expires them), then leases. */
function expire(
  ctx: ApplyContext,
  keys: readonly { key: string; modRevision: number }[],
  leases: readonly number[],
): ExpireResult {
  let expiredKeys = 0
  let expiredLeases = 0
  for (const { key, modRevision } of keys) if (v2ExpireKey(ctx, key, modRevision)) expiredKeys++
  for (const lease of leases) if (expireLease(ctx, lease)) expiredLeases++
  return { revision: ctx.keyspace.revision, expiredKeys, expiredLeases }
}
