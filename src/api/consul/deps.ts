/**
 * What the Consul v1 surface needs from the process that serves it. The agent composes these; the
 * API never imports the agent (imports point down: agent → api → catalog → kv).
 */
import type { CatalogState } from '../../catalog/state.ts'
import type { CatalogWriter } from '../../catalog/writer.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { LocalAgent } from './local-agent.ts'

export interface LeaderView {
  /** Whether this member knows a leader (X-Consul-KnownLeader). */
  known: boolean
  /** The leader's peer address `host:port`, '' when none is known (/v1/status/leader). */
  address: string
  /** Ms since this member last heard from the leader; 0 on the leader (X-Consul-LastContact). */
  lastContactMs: number
}

export interface ConsulApiDeps {
  /** The store: KV, sessions, txn and catalog writes go through it (Raft on a server). */
  store: KvStore
  /** This agent's catalog copy, fed by a watch; every catalog and health read answers from it. */
  catalog: CatalogState
  writer: CatalogWriter
  /**
   * Resolves once this member has applied everything committed when it was called, with its
   * leadership (or the leader's) confirmed by a quorum: default and `?consistent` reads call it.
   */
  readBarrier(): Promise<void>
  leader(): LeaderView
  /** Voters' peer addresses `host:port` (/v1/status/peers). */
  peers(): string[]
  datacenter: string
  /** This agent's node name. */
  nodeName: string
  /** The agent endpoints' view of this agent's own services and checks. */
  agent: LocalAgent
  /** Wall clock (injectable for tests). */
  clock?: (() => number) | undefined
  /** Random in [0, 1) for the wait jitter (injectable for tests). */
  random?: (() => number) | undefined
}
