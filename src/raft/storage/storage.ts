/**
 * The contract between the node driver and durable storage of one member's Raft state.
 *
 * What is stored: the hard state, the log entries after the compaction point, the compaction point
 * itself, and the newest snapshots (the state machine's state together with the index it describes,
 * in one file, so the applied index is always persisted atomically with the state).
 *
 * Guarantees an implementation must give:
 *   - save(): everything in one call becomes durable together or (after a crash) as a prefix in
 *     this order: snapshot, entries, hard state. When `sync` is true it is on stable storage (fsync /
 *     fdatasync) before the returned promise resolves: one sync per call (group commit per Ready).
 *     Writing entry i first drops every persisted entry with index >= i.
 *   - load() after kill -9 at any moment returns exactly what the last completed save() and
 *     saveCompaction() persisted, plus possibly a prefix of an interrupted one; a torn or corrupt
 *     tail record is detected by its checksum and discarded, never returned. Corruption anywhere
 *     other than the tail is an error that stops the member (it must not start with holes).
 *   - saveCompaction(): the snapshot is durable before any entry behind logStart is dropped;
 *     snapshot files beyond the newest `snapshotsKeptMax` are pruned afterwards.
 *   - Calls are not concurrent: the driver awaits each before the next.
 */
import type {
  Entry,
  HardState,
  PersistedState,
  Snapshot,
  SnapshotData,
  SnapshotMeta,
  StoredSnapshotData,
} from '../core/types.ts'

export interface SaveBatch {
  snapshot: Snapshot | undefined
  entries: Entry[]
  hardState: HardState | undefined
  sync: boolean
}

export interface RaftStorage {
  /** What the previous run persisted; the empty state for a new data directory. */
  load(): Promise<PersistedState>
  save(batch: SaveBatch): Promise<void>
  /** Persists an application snapshot and compacts the log so it starts at logStart. */
  saveCompaction(snapshot: Snapshot, logStart: { index: number; term: number }): Promise<void>
  /**
   * Streams a snapshot's data to disk ahead of saveCompaction(), so it is never whole in memory.
   * May run while save() calls do (it touches only its own file). Hand the returned data to the
   * core (compactAt) and then to saveCompaction(), which makes it the newest snapshot; discard()
   * it instead if it went stale.
   */
  stageSnapshot(meta: SnapshotMeta, pieces: AsyncIterable<Uint8Array>): Promise<StagedSnapshot>
  /**
   * The data of the persisted snapshot with this index and term, read from disk when it is needed;
   * undefined when no such snapshot is stored. The driver keeps this instead of the bytes.
   */
  storedSnapshot(index: number, term: number): Promise<StoredSnapshotData | undefined>
  /** Bytes on disk (log segments plus snapshot files), for status and metrics. */
  sizeBytes(): number
  close(): Promise<void>
}

/** A snapshot written to disk by stageSnapshot() and not yet made the newest one. */
export interface StagedSnapshot {
  readonly data: SnapshotData
  discard(): Promise<void>
}
