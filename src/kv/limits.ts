/**
 * Every limit of the keyspace, named, with its default and the reason for it (docs/kv.md lists them).
 *
 * Two kinds, kept apart on purpose:
 *   - `kvLimits` decide what apply() accepts, so they are constants: every member must answer a
 *     command the same way, and a per-member setting could make members diverge. Changing one is a
 *     cluster-wide upgrade (like a command format change).
 *   - `KvConfig` limits only shape what this member keeps for its own readers (history window,
 *     watchers). Members should use the same values so snapshots compare byte for byte, but a
 *     different value only changes what that member can serve, never the replicated state.
 */
import { memberContextLimits } from '../raft/member-context.ts'

export const kvLimits = {
  /** UTF-8 bytes of a cleaned key path. etcd had no separate key limit (only its 1.5 MiB request). */
  keyBytesMax: 8 * 1024,
  /** Path segments of a key (`/a/b/c` has 3); keeps tree walks and recursive renders shallow. */
  keySegmentsMax: 256,
  /** UTF-8 bytes of one value: etcd's `--max-request-bytes` default (1.5 MiB). */
  valueBytesMax: 1_572_864,
  /** Encoded bytes of one command: one value at its maximum plus room for keys and a transaction. */
  commandBytesMax: 1_572_864 + 512 * 1024,
  /** Operations in each list of a transaction (compare, success, failure): etcd's `--max-txn-ops`. */
  txnOpsMax: 128,
  /** Keys plus leases one `expire` command may name; the leader sends more in the next one. */
  expireBatchMax: 1_000,
  /** Longest TTL of a key or lease: etcd's lease maximum, 9,000,000,000 s, in ms. */
  ttlMsMax: 9_000_000_000_000,
  /** Live leases. */
  leasesMax: 100_000,
  /** UTF-8 bytes of keys and values held (plus nodeOverheadBytes per node); past it only deletes apply. */
  keyspaceBytesMax: 1024 * 1024 * 1024,
  /** Accounting overhead charged per node against keyspaceBytesMax. */
  nodeOverheadBytes: 64,
  /** Length of a request id chosen by the proposer. */
  requestIdBytesMax: 128,
  /** Member attributes carried by a conf entry's context or a member.update command. */
  ...memberContextLimits,
} as const

export interface KvConfig {
  /**
   * Revisions of change events kept for watchers (etcd v2 kept 1000 events). The window is part of
   * every snapshot, so it is sized against the snapshot interval: 10,000 revisions with the
   * default --snapshot-count of 10,000 entries encode each event about once. At 100,000 a
   * snapshot re-encoded ten intervals of events, and the write rows paid for it (docs/kv.md).
   */
  historyRevisionsMax: number
  /** Approximate bytes of the events kept (keys and values they carry, plus a fixed overhead each). */
  historyBytesMax: number
  /** Events buffered for one watcher whose consumer has not taken them; past it the watcher is cancelled. */
  watcherEventsMax: number
  /** Watchers registered on this member. */
  watchersMax: number
}

export const defaultKvConfig: Readonly<KvConfig> = {
  historyRevisionsMax: 10_000,
  historyBytesMax: 16 * 1024 * 1024,
  watcherEventsMax: 1_000,
  watchersMax: 100_000,
}

export function makeKvConfig(overrides: Partial<KvConfig> = {}): KvConfig {
  const config = { ...defaultKvConfig, ...overrides }
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`kv config: ${name} must be a positive integer`)
  }
  return config
}

/** UTF-8 length of a string, as every limit above counts it. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}
