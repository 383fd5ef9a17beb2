/**
 * FileStorage: RaftStorage (storage.ts) on local disk, with a WAL of our own and snapshot files.
 *
 * Layout of the data directory:
 *   wal/<seq>.wal                 log segments (wal.ts, segment.ts, record.ts)
 *   snap/<index>-<term>.snap      snapshots (snapshot-files.ts)
 *
 * Order of a save (the Ready contract): the snapshot file (fsynced, renamed, directory fsynced),
 * then one WAL write holding the snapshot marker, the entries and the hard state, then one
 * fdatasync when batch.sync. So a crash keeps a prefix of snapshot, entries, hard state, and a
 * single voter acknowledges only after its own fsync: save() resolves after it.
 *
 * Order of a compaction: the snapshot file (durable), then a synced compaction record, then the
 * segments and snapshot files it made unnecessary are deleted.
 *
 * load() reconciles the two: a snapshot file newer than anything the WAL knows (a crash between
 * the file and its WAL record) was the first step of an interrupted save, so the log restarts at
 * it and a snapshot record makes that durable. A log that starts after the newest snapshot (the
 * snapshot that covers the dropped entries is gone) is STORAGE_CORRUPT, and so are snapshot files
 * without any WAL segment (the hard state, with this member's vote, would be lost).
 *
 * Ownership: load() returns fresh arrays and objects, and entries own their bytes. save() encodes
 * the batch before it resolves and keeps no reference to it.
 * Calls must not overlap (assertion). After an IO error every call is refused (STORAGE_FAILED):
 * the state on disk is unknown until load() runs again in a new process.
 */
import path from 'node:path'
import type { PersistedState, Snapshot, SnapshotMeta, StoredSnapshotData } from '../core/types.ts'
import { ensureDirectory } from './directory.ts'
import { assertStorage, isStorageError, StorageError } from './errors.ts'
import * as limits from './limits.ts'
import type { IndexTerm } from './payload.ts'
import type { WalSyncMode } from './segment.ts'
import { SnapshotFileData, SnapshotFiles, type StagedSnapshotFile } from './snapshot-files.ts'
import type { RaftStorage, SaveBatch, StagedSnapshot } from './storage.ts'
import type { SyncWriteCounts, SyncWriteStall } from './sync-writes.ts'
import { Wal, type WalOptions, type WalRecord, type WalRecovery } from './wal.ts'

export interface FileStorageOptions {
  /** Default limits.walSegmentBytesMax (64 MiB). */
  walSegmentBytesMax?: number
  /** Default limits.recordBytesMax (16 MiB). */
  recordBytesMax?: number
  /** Default limits.snapshotsKeptMax (5). */
  snapshotsKeptMax?: number
  /** Default limits.snapshotDataBytesMax (2 GiB). */
  snapshotDataBytesMax?: number
  /** Default 'dsync' (see WalOptions.syncMode). */
  walSyncMode?: WalSyncMode
  /** Default true: zero-fill WAL segments ahead of the appends (see wal.ts). */
  walZeroAhead?: boolean
  /**
   * Default limits.walSyncWriteBytesMax (4 KiB): appends of one entry up to this size are written
   * on the event loop's thread while the disk is fast (sync-writes.ts); 0 sends every write
   * through the pool.
   */
  walSyncWriteBytesMax?: number
  /**
   * Told of every WAL write in place that took longer than limits.walSyncWriteStallMs: writing in
   * place is then off for limits.walSyncWriteStallOffMs. The agent logs it as a warning.
   */
  onWalStall?: (stall: SyncWriteStall) => void
}

/** What load() found and repaired, for the log line a member prints at start. */
export interface StorageRecovery {
  walSegments: number
  tornTail: WalRecovery['torn']
  adoptedSnapshot: IndexTerm | undefined
}

type Phase = 'new' | 'loading' | 'open' | 'closed'

const snapshotMetaBytesMax = 1024 * 1024

export class FileStorage implements RaftStorage {
  readonly #walDir: string
  readonly #snapDir: string
  readonly #walOptions: WalOptions
  readonly #snapshots: SnapshotFiles
  #phase: Phase = 'new'
  #wal: Wal | undefined
  #busy = false
  /** Snapshots written by stageSnapshot() that saveCompaction() has not adopted yet. */
  readonly #staged = new Map<SnapshotFileData, StagedSnapshotFile>()
  #failed: Error | undefined
  #recovery: StorageRecovery | undefined

  constructor(dir: string, options: FileStorageOptions = {}) {
    this.#walDir = path.join(dir, 'wal')
    this.#snapDir = path.join(dir, 'snap')
    this.#walOptions = {
      segmentBytesMax: options.walSegmentBytesMax ?? limits.walSegmentBytesMax,
      recordBytesMax: options.recordBytesMax ?? limits.recordBytesMax,
      syncMode: options.walSyncMode ?? 'dsync',
      zeroAhead: options.walZeroAhead ?? true,
      syncWrites: {
        entriesMax: limits.walSyncWriteEntriesMax,
        bytesMax: options.walSyncWriteBytesMax ?? limits.walSyncWriteBytesMax,
        fastMs: limits.walSyncWriteFastMs,
        stallMs: limits.walSyncWriteStallMs,
        stallOffMs: limits.walSyncWriteStallOffMs,
      },
      onSyncWriteStall: options.onWalStall,
    }
    this.#snapshots = new SnapshotFiles(this.#snapDir, {
      keptMax: options.snapshotsKeptMax ?? limits.snapshotsKeptMax,
      dataBytesMax: options.snapshotDataBytesMax ?? limits.snapshotDataBytesMax,
      metaBytesMax: snapshotMetaBytesMax,
    })
  }

  /** Set by load(). */
  get recovery(): StorageRecovery | undefined {
    return this.#recovery
  }

  async load(): Promise<PersistedState> {
    assertStorage(this.#phase === 'new', `load() on storage that is ${this.#phase}; load once per instance`)
    this.#phase = 'loading'
    try {
      await ensureDirectory(this.#walDir)
      await ensureDirectory(this.#snapDir)
      await this.#snapshots.open()
      const { wal, log, recovery } = await Wal.open(this.#walDir, this.#walOptions)
      this.#wal = wal
      if (recovery.created && this.#snapshots.count > 0) {
        // Without the WAL the hard state (term, vote) is gone: starting could vote twice in a term.
        throw new StorageError(
          'STORAGE_CORRUPT',
          'snapshot files exist but the WAL has no segment (wal/ lost?)',
        )
      }
      const snapshot = await this.#snapshots.readNewest()
      const start = log.logStart
      if (start.index > 0 && (snapshot === undefined || snapshot.meta.index < start.index)) {
        throw new StorageError(
          'STORAGE_CORRUPT',
          `the log starts after ${start.index}, but the newest snapshot is ${snapshot?.meta.index ?? 'missing'}`,
        )
      }
      let adoptedSnapshot: IndexTerm | undefined
      if (
        snapshot !== undefined &&
        snapshot.meta.index > start.index &&
        wal.termAt(snapshot.meta.index) !== snapshot.meta.term
      ) {
        adoptedSnapshot = { index: snapshot.meta.index, term: snapshot.meta.term }
        await wal.append(wal.prepare([{ type: 'snapshot', at: adoptedSnapshot }]), true)
      }
      this.#recovery = { walSegments: recovery.segments, tornTail: recovery.torn, adoptedSnapshot }
      this.#phase = 'open'
      return {
        hardState: { ...log.hardState },
        snapshot,
        logStart: { ...wal.logStart },
        entries: adoptedSnapshot === undefined ? log.entries : [],
      }
    } catch (error) {
      this.#phase = 'closed'
      await this.#wal?.close()
      throw toStorageError(error, 'load')
    }
  }

  save(batch: SaveBatch): Promise<void> {
    return this.#run('save', async (wal) => {
      const records: WalRecord[] = []
      const snapshot = batch.snapshot
      if (snapshot !== undefined) {
        const newest = this.#snapshots.newest
        assertStorage(
          snapshot.meta.index > wal.logStart.index,
          `snapshot ${snapshot.meta.index} not after the log start`,
        )
        assertStorage(
          newest === undefined || snapshot.meta.index >= newest.index,
          'snapshot older than one on disk',
        )
        this.#snapshots.checkLimits(snapshot)
        records.push({ type: 'snapshot', at: { index: snapshot.meta.index, term: snapshot.meta.term } })
      }
      if (batch.entries.length > 0) records.push({ type: 'entries', entries: batch.entries })
      if (batch.hardState !== undefined)
        records.push({ type: 'hardState', hardState: { ...batch.hardState } })
      const prepared = wal.prepare(records)
      if (snapshot !== undefined) await this.#snapshots.write(snapshot)
      await wal.append(prepared, batch.sync)
      if (snapshot !== undefined && batch.sync) await this.#dropObsolete(wal)
    })
  }

  saveCompaction(snapshot: Snapshot, logStart: { index: number; term: number }): Promise<void> {
    return this.#run('saveCompaction', async (wal) => {
      assertStorage(logStart.index <= snapshot.meta.index, `log start ${logStart.index} after the snapshot`)
      this.#snapshots.checkLimits(snapshot)
      const moves = logStart.index > wal.logStart.index
      if (moves) {
        assertStorage(
          wal.termAt(logStart.index) === logStart.term,
          `compaction to ${logStart.index}/${logStart.term}, but the log has term ${wal.termAt(logStart.index)} there`,
        )
      }
      const prepared = moves ? wal.prepare([{ type: 'compaction', at: { ...logStart } }]) : []
      const newest = this.#snapshots.newest
      // An older snapshot than one on disk is never read again: skip it.
      const staged = snapshot.data instanceof SnapshotFileData ? this.#staged.get(snapshot.data) : undefined
      if (staged !== undefined) this.#staged.delete(staged.data)
      if (newest === undefined || snapshot.meta.index >= newest.index) {
        if (staged !== undefined) await this.#snapshots.adopt(staged)
        else await this.#snapshots.write(snapshot)
      } else await staged?.discard()
      await wal.append(prepared, true)
      await this.#dropObsolete(wal)
    })
  }

  async stageSnapshot(meta: SnapshotMeta, pieces: AsyncIterable<Uint8Array>): Promise<StagedSnapshot> {
    assertStorage(this.#phase === 'open', `stageSnapshot() on storage that is ${this.#phase}`)
    const staged = await this.#snapshots.stage(meta, pieces)
    this.#staged.set(staged.data, staged)
    return {
      data: staged.data,
      discard: async () => {
        this.#staged.delete(staged.data)
        await staged.discard()
      },
    }
  }

  storedSnapshot(index: number, term: number): Promise<StoredSnapshotData | undefined> {
    assertStorage(this.#phase === 'open', `storedSnapshot() on storage that is ${this.#phase}`)
    return this.#snapshots.stored(index, term)
  }

  sizeBytes(): number {
    return (this.#wal?.sizeBytes ?? 0) + this.#snapshots.sizeBytes
  }

  /** WAL appends written in place and through the thread pool, and stalls (sync-writes.ts). */
  get walWriteCounts(): Readonly<SyncWriteCounts> {
    return this.#wal?.writeCounts ?? { inPlace: 0, pool: 0, stalls: 0 }
  }

  /** Segments on disk (for tests and metrics). */
  get walSegments(): number {
    return this.#wal?.segmentCount ?? 0
  }

  /** Snapshot files on disk (for tests and metrics). */
  get snapshotFiles(): number {
    return this.#snapshots.count
  }

  async close(): Promise<void> {
    assertStorage(!this.#busy, 'close() while a call is in progress')
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    await this.#wal?.close()
  }

  async #dropObsolete(wal: Wal): Promise<void> {
    await wal.dropCoveredSegments()
    await this.#snapshots.prune()
  }

  async #run(what: string, fn: (wal: Wal) => Promise<void>): Promise<void> {
    assertStorage(
      this.#phase === 'open' && this.#wal !== undefined,
      `${what}() on storage that is ${this.#phase}`,
    )
    assertStorage(!this.#busy, `${what}() while another call is in progress (calls must not overlap)`)
    if (this.#failed !== undefined) {
      throw new StorageError('STORAGE_FAILED', `${what}() refused after: ${this.#failed.message}`, {
        cause: this.#failed,
      })
    }
    this.#busy = true
    try {
      await fn(this.#wal)
    } catch (error) {
      const converted = toStorageError(error, what)
      if (!isStorageError(converted, 'STORAGE_LIMIT')) this.#failed = converted
      throw converted
    } finally {
      this.#busy = false
    }
  }
}

/** System errors become STORAGE_IO; StorageErrors and assertions pass through. */
function toStorageError(error: unknown, what: string): Error {
  if (error instanceof StorageError) return error
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string') {
    return new StorageError('STORAGE_IO', `${what}: ${error.message}`, { cause: error })
  }
  return error instanceof Error ? error : new Error(String(error))
}
