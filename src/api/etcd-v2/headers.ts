/**
 * The headers etcd 2.x puts on /v2 replies.
 *
 * Invariants: every /v2/keys and /v2/members reply carries X-Etcd-Cluster-ID; a successful key
 * reply also carries X-Etcd-Index (the store index of the answer: for a watch, the index when the
 * watch started), X-Raft-Index (this member's applied index) and X-Raft-Term; an error reply
 * carries X-Etcd-Index (the error's index) but no Raft headers, as etcd's error WriteTo does.
 */
import type { RaftStatusView } from './deps.ts'

export type HeaderMap = Record<string, string>

export function clusterHeaders(clusterId: string): HeaderMap {
  return { 'X-Etcd-Cluster-ID': clusterId }
}

export function keyHeaders(
  clusterId: string,
  etcdIndex: number,
  raft: Pick<RaftStatusView, 'raftIndex' | 'term'>,
): HeaderMap {
  return {
    'Content-Type': 'application/json',
    'X-Etcd-Cluster-ID': clusterId,
    'X-Etcd-Index': String(etcdIndex),
    'X-Raft-Index': String(raft.raftIndex),
    'X-Raft-Term': String(raft.term),
  }
}

export function errorHeaders(clusterId: string, etcdIndex: number): HeaderMap {
  return {
    'Content-Type': 'application/json',
    'X-Etcd-Cluster-ID': clusterId,
    'X-Etcd-Index': String(etcdIndex),
  }
}
