/**
 * Cluster identity from the command line, the way etcd derives it.
 *
 * `--initial-cluster n1=http://10.0.0.1:7001,n2=...` names the founding members. Every founder must
 * be given the same list, and derives from it:
 *   - each member's id: a stable hash of (cluster token, canonical peer address), a positive safe
 *     integer, never 0. The peer address (not the name) is what `POST /v2/members` knows about a
 *     member being added, so the API, the founders and the joining member all compute the same id.
 *     A member keeps the id it started with (it is stored in its data directory), even if its
 *     peer URL changes later;
 *   - the cluster id: a hash of the token and the sorted list, checked on every peer connection,
 *     so a member started with a different list (or token) cannot join this cluster.
 * A member joining later (`--initial-cluster-state existing`) gets its id the same way, and its
 * cluster id from the founding list it is given (`cairn member add` prints the flags to use).
 *
 * Pure functions; bad input throws a CairnError with a message naming the flag.
 */
import { createHash } from 'node:crypto'
import { CairnError } from '../errors.ts'
import type { NodeId } from '../raft/core/types.ts'
import { peerAddress } from '../raft/member-context.ts'

export interface InitialMember {
  name: string
  peerUrl: string
}

/** Founding members one cluster may list. */
export const initialMembersMax = 64
const memberNameRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

export function parseInitialCluster(text: string): InitialMember[] {
  const members: InitialMember[] = []
  const names = new Set<string>()
  for (const part of text.split(',')) {
    const item = part.trim()
    if (item === '') continue
    const eq = item.indexOf('=')
    const name = eq < 0 ? '' : item.slice(0, eq)
    const peerUrl = eq < 0 ? '' : item.slice(eq + 1)
    if (!memberNameRe.test(name)) {
      throw new CairnError(
        'CONFIG_INVALID',
        `--initial-cluster: bad member name in "${item}" (want name=http://host:port)`,
      )
    }
    if (peerAddress(peerUrl) === undefined) {
      throw new CairnError(
        'CONFIG_INVALID',
        `--initial-cluster: bad peer URL in "${item}" (want http://host:port)`,
      )
    }
    if (names.has(name)) throw new CairnError('CONFIG_INVALID', `--initial-cluster: ${name} is listed twice`)
    names.add(name)
    members.push({ name, peerUrl })
  }
  if (members.length === 0) throw new CairnError('CONFIG_INVALID', '--initial-cluster lists no members')
  if (members.length > initialMembersMax) {
    throw new CairnError('CONFIG_INVALID', `--initial-cluster lists more than ${initialMembersMax} members`)
  }
  return members
}

/** A stable, positive, non-zero 52-bit id for a member's peer URL within a cluster token. */
export function memberId(clusterToken: string, peerUrl: string): NodeId {
  const address = peerAddress(peerUrl)
  if (address === undefined) throw new CairnError('CONFIG_INVALID', `bad peer URL ${JSON.stringify(peerUrl)}`)
  return hash52(`member\0${clusterToken}\0${address.host}:${address.port}`)
}

/** The cluster id as hex (etcd shows X-Etcd-Cluster-ID in hex), from token and founders. */
export function clusterId(clusterToken: string, members: readonly InitialMember[]): string {
  const sorted = members.map((m) => `${m.name}=${m.peerUrl}`).sort()
  return hash52(`cluster\0${clusterToken}\0${sorted.join(',')}`).toString(16)
}

function hash52(text: string): number {
  const digest = createHash('sha256').update(text).digest()
  const value = digest.readUIntBE(0, 6) * 16 + (digest.readUInt8(6) >> 4) // 52 bits
  return value === 0 ? 1 : value
}
