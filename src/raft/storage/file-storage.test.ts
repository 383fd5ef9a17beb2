/**
 * Proves FileStorage keeps the RaftStorage contract across restarts (a new instance on the same
 * directory): save/load round trips, truncation of the log at an index, hard-state-only saves, a
 * leader's snapshot followed by entries, compaction with segment deletion and snapshot pruning,
 * segment rollover, reconciliation of a snapshot file the WAL does not know yet, limits,
 * group commit (one fdatasync per synced save, none otherwise, save resolving only after it),
 * and the assertions for misuse.
 */
import { constants } from 'node:fs'
import { open as openFile, readdir, readFile, readlink, realpath, rm, unlink } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Entry, PersistedState } from '../core/types.ts'
import { snapshotBytes } from '../core/types.ts'
import { isStorageError } from './errors.ts'
import { FileStorage, type FileStorageOptions } from './file-storage.ts'
import { SnapshotFiles } from './snapshot-files.ts'
import { batch, entries, entry, plain, snapshotAt, TempDirs } from './test-data-dir.ts'

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

async function openStorage(
  dir: string,
  options?: FileStorageOptions,
): Promise<{ s: FileStorage; state: PersistedState }> {
  const s = new FileStorage(dir, options)
  const state = await s.load()
  return { s, state }
}
const open = openStorage

/** Closes s, then loads the directory in a new instance (a restart). */
async function reopen(s: FileStorage, dir: string, options?: FileStorageOptions): Promise<PersistedState> {
  await s.close()
  const again = new FileStorage(dir, options)
  const state = await again.load()
  await again.close()
  return state
}

function indexes(list: readonly Entry[]): number[] {
  return list.map((e) => e.index)
}

describe('FileStorage round trips', () => {
  it('a new directory loads as the empty state and gets wal/ and snap/', async () => {
    const dir = await dirs.make()
    const { s, state } = await open(path.join(dir, 'member', 'raft'))
    expect(state).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      snapshot: undefined,
      logStart: { index: 0, term: 0 },
      entries: [],
    })
    await s.close()
    expect((await readdir(path.join(dir, 'member', 'raft'))).sort()).toEqual(['snap', 'wal'])
  })

  it('entries (normal and conf, with and without context) and the hard state survive a restart', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    const log: Entry[] = [
      { index: 1, term: 1, type: 'conf', data: new Uint8Array(0), change: { type: 'addVoter', nodeId: 1 } },
      {
        index: 2,
        term: 1,
        type: 'conf',
        data: new Uint8Array(0),
        change: { type: 'addLearner', nodeId: 7, context: new Uint8Array([1, 2, 3]) },
      },
      { index: 3, term: 2, type: 'normal', data: new Uint8Array(0) },
      ...entries(4, 40, 2, 300),
    ]
    await s.save(batch({ entries: log.slice(0, 3), hardState: { term: 1, vote: 0, commit: 2 } }))
    await s.save(batch({ entries: log.slice(3), hardState: { term: 2, vote: 1, commit: 30 } }))
    const state = await reopen(s, dir)
    expect(state.hardState).toEqual({ term: 2, vote: 1, commit: 30 })
    expect(state.logStart).toEqual({ index: 0, term: 0 })
    expect(plain(state.entries)).toEqual(plain(log))
    expect(state.entries[1]!.change!.context).toEqual(new Uint8Array([1, 2, 3]))
  })

  it('writing entry i drops every entry >= i (truncation), also across restarts', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 10, 1) }))
    await s.save(batch({ entries: entries(6, 8, 2) }))
    let state = await reopen(s, dir)
    expect(indexes(state.entries)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(plain(state.entries)).toEqual(plain([...entries(1, 5, 1), ...entries(6, 8, 2)]))

    const { s: s2 } = await open(dir)
    await s2.save(batch({ entries: entries(2, 2, 3) }))
    await s2.save(batch({ entries: entries(3, 4, 3) }))
    state = await reopen(s2, dir)
    expect(plain(state.entries)).toEqual(plain([entry(1, 1), ...entries(2, 4, 3)]))
  })

  it('hard-state-only saves: the last one wins, the log is untouched', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 3, 1) }))
    for (let term = 1; term <= 50; term++)
      await s.save(batch({ hardState: { term, vote: term % 3, commit: 3 } }))
    const state = await reopen(s, dir)
    expect(state.hardState).toEqual({ term: 50, vote: 2, commit: 3 })
    expect(indexes(state.entries)).toEqual([1, 2, 3])
  })

  it("a leader's snapshot then entries: the log restarts after the snapshot", async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 20, 1), hardState: { term: 1, vote: 1, commit: 5 } }))
    const snap = snapshotAt(100, 3, 5000)
    await s.save(
      batch({ snapshot: snap, entries: entries(101, 105, 3), hardState: { term: 3, vote: 0, commit: 100 } }),
    )
    const state = await reopen(s, dir)
    expect(state.snapshot?.meta).toEqual(snap.meta)
    expect(Array.from(snapshotBytes(state.snapshot!.data))).toEqual(Array.from(snapshotBytes(snap.data)))
    expect(state.logStart).toEqual({ index: 100, term: 3 })
    expect(indexes(state.entries)).toEqual([101, 102, 103, 104, 105])
    expect(state.hardState).toEqual({ term: 3, vote: 0, commit: 100 })
  })

  it('a stored snapshot is read on demand: in chunks or whole, with its checksum checked at the end', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 20, 1), hardState: { term: 1, vote: 1, commit: 5 } }))
    const snap = snapshotAt(100, 3, 5000)
    await s.save(batch({ snapshot: snap, hardState: { term: 3, vote: 0, commit: 100 } }))
    expect(await s.storedSnapshot(100, 2)).toBeUndefined()
    const stored = await s.storedSnapshot(100, 3)
    if (stored === undefined) throw new Error('no stored snapshot')
    const bytes = snapshotBytes(snap.data)
    expect(stored.byteLength).toBe(bytes.byteLength)
    const chunks: Uint8Array[] = []
    for (let at = 0; at < stored.byteLength; at += 999) chunks.push(stored.read(at, 999))
    expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true)
    expect(stored.read(stored.byteLength, 10).length).toBe(0)
    // Damage one byte of the data on disk: the read that completes the data fails.
    const [name] = (await readdir(path.join(dir, 'snap'))).filter((n) => n.endsWith('.snap'))
    const handle = await openFile(path.join(dir, 'snap', name as string), 'r+')
    // Layout 2: the data starts the file.
    await handle.write(Buffer.from([bytes[10]! ^ 0xff]), 0, 1, 10)
    await handle.close()
    expect(stored.read(0, 100).length).toBe(100)
    try {
      snapshotBytes(stored)
      expect.unreachable('a damaged snapshot file was read whole')
    } catch (error) {
      expect(isStorageError(error, 'STORAGE_CORRUPT')).toBe(true)
    }
    await s.close()
  })

  it('compaction keeps retained entries, deletes covered segments and prunes snapshots to snapshotsKeptMax', async () => {
    const dir = await dirs.make()
    const options = { walSegmentBytesMax: 4096, snapshotsKeptMax: 3 }
    const { s } = await open(dir, options)
    for (let i = 1; i <= 400; i += 20) await s.save(batch({ entries: entries(i, i + 19, 1, 100) }))
    const segmentsBefore = s.walSegments
    expect(segmentsBefore).toBeGreaterThan(8)
    for (const at of [50, 100, 150, 200, 250, 300]) {
      await s.saveCompaction(snapshotAt(at, 1), { index: at - 30, term: 1 })
    }
    expect(s.snapshotFiles).toBe(3)
    expect(s.walSegments).toBeLessThan(segmentsBefore)
    expect((await readdir(path.join(dir, 'snap'))).sort()).toEqual([
      '00000000000000c8-0000000000000001.snap',
      '00000000000000fa-0000000000000001.snap',
      '000000000000012c-0000000000000001.snap',
    ])
    const sizeBefore = s.sizeBytes()
    const state = await reopen(s, dir, options)
    expect(state.snapshot?.meta.index).toBe(300)
    expect(state.logStart).toEqual({ index: 270, term: 1 })
    expect(indexes(state.entries)).toEqual(Array.from({ length: 130 }, (_, k) => 271 + k))
    expect(plain(state.entries)).toEqual(plain(entries(271, 400, 1, 100)))
    const { s: s2 } = await open(dir, options)
    expect(s2.sizeBytes()).toBe(sizeBefore)
    await s2.close()
  })

  it('segments roll over at walSegmentBytesMax and replay as one log, truncations included', async () => {
    const dir = await dirs.make()
    const options = { walSegmentBytesMax: 2048 }
    const { s } = await open(dir, options)
    for (let i = 1; i <= 200; i += 5) {
      await s.save(batch({ entries: entries(i, i + 4, 1, 64), hardState: { term: 1, vote: 1, commit: i } }))
    }
    // Truncate far back: the new entries land in the last segment, the old copies stay behind.
    await s.save(batch({ entries: entries(50, 60, 2, 64), hardState: { term: 2, vote: 2, commit: 49 } }))
    expect(s.walSegments).toBeGreaterThan(5)
    const names = await readdir(path.join(dir, 'wal'))
    expect(names.every((n) => /^[0-9a-f]{16}\.wal$/.test(n))).toBe(true)
    const state = await reopen(s, dir, options)
    expect(plain(state.entries)).toEqual(plain([...entries(1, 49, 1, 64), ...entries(50, 60, 2, 64)]))
    expect(state.hardState).toEqual({ term: 2, vote: 2, commit: 49 })
  })

  it('one save larger than a segment is split over records and segments, and replays whole', async () => {
    const dir = await dirs.make()
    const options = { walSegmentBytesMax: 8192, recordBytesMax: 4096 }
    const { s } = await open(dir, options)
    await s.save(batch({ entries: entries(1, 60, 1, 1000), hardState: { term: 1, vote: 1, commit: 60 } }))
    expect(s.walSegments).toBeGreaterThan(5)
    await s.save(batch({ entries: entries(61, 61, 1, 1000) }))
    const state = await reopen(s, dir, options)
    expect(plain(state.entries)).toEqual(plain(entries(1, 61, 1, 1000)))
    expect(state.hardState).toEqual({ term: 1, vote: 1, commit: 60 })
  })

  it('after compaction deletes the oldest segments, the rest replays on its own (and keeps working)', async () => {
    const dir = await dirs.make()
    const options = { walSegmentBytesMax: 1024 }
    let { s } = await open(dir, options)
    let term = 1
    for (let round = 0; round < 5; round++) {
      const last = (round + 1) * 100
      for (let i = round * 100 + 1; i <= last; i += 10) {
        await s.save(
          batch({ entries: entries(i, i + 9, term, 40), hardState: { term, vote: 1, commit: i + 9 } }),
        )
      }
      await s.saveCompaction(snapshotAt(last - 10, term), { index: last - 20, term })
      const state = await reopen(s, dir, options)
      expect(state.logStart).toEqual({ index: last - 20, term })
      expect(indexes(state.entries)).toEqual(Array.from({ length: 20 }, (_, k) => last - 19 + k))
      expect(state.snapshot?.meta.index).toBe(last - 10)
      const first = (await readdir(path.join(dir, 'wal'))).sort()[0]
      expect(first).not.toBe('0000000000000001.wal')
      ;({ s } = await open(dir, options))
      term++
    }
    await s.close()
  })

  it('a snapshot file newer than the WAL (crash between the two) is adopted and made durable', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } }))
    await s.close()
    // The first step of an interrupted save: the leader's snapshot file only.
    const files = new SnapshotFiles(path.join(dir, 'snap'), {
      keptMax: 5,
      dataBytesMax: 1 << 20,
      metaBytesMax: 1 << 20,
    })
    await files.open()
    await files.write(snapshotAt(50, 2))
    const s2 = new FileStorage(dir)
    const state = await s2.load()
    expect(s2.recovery?.adoptedSnapshot).toEqual({ index: 50, term: 2 })
    expect(state.logStart).toEqual({ index: 50, term: 2 })
    expect(state.entries).toEqual([])
    await s2.save(batch({ entries: entries(51, 52, 2) }))
    const again = await reopen(s2, dir)
    expect(again.logStart).toEqual({ index: 50, term: 2 })
    expect(indexes(again.entries)).toEqual([51, 52])
  })

  it('a snapshot file inside the log with a matching term is kept alongside the log', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 10, 1) }))
    await s.close()
    const files = new SnapshotFiles(path.join(dir, 'snap'), {
      keptMax: 5,
      dataBytesMax: 1 << 20,
      metaBytesMax: 1 << 20,
    })
    await files.open()
    await files.write(snapshotAt(8, 1))
    const s2 = new FileStorage(dir)
    const state = await s2.load()
    await s2.close()
    expect(s2.recovery?.adoptedSnapshot).toBeUndefined()
    expect(state.snapshot?.meta.index).toBe(8)
    expect(state.logStart).toEqual({ index: 0, term: 0 })
    expect(indexes(state.entries)).toHaveLength(10)
  })

  it('sizeBytes counts segments and snapshot files', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    const empty = s.sizeBytes()
    expect(empty).toBeGreaterThan(0)
    await s.save(batch({ entries: entries(1, 10, 1, 1000) }))
    expect(s.sizeBytes()).toBeGreaterThan(empty + 10_000)
    const beforeSnap = s.sizeBytes()
    await s.saveCompaction(snapshotAt(5, 1, 50_000), { index: 5, term: 1 })
    expect(s.sizeBytes()).toBeGreaterThan(beforeSnap + 50_000)
    await s.close()
  })
})

describe('FileStorage damage that is not a torn tail', () => {
  it('a missing segment in the middle is STORAGE_CORRUPT', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { walSegmentBytesMax: 1024 })
    for (let i = 1; i <= 100; i += 10) await s.save(batch({ entries: entries(i, i + 9, 1, 50) }))
    await s.close()
    await unlink(path.join(dir, 'wal', '0000000000000002.wal'))
    const err = await new FileStorage(dir).load().catch((e) => e)
    expect(isStorageError(err, 'STORAGE_CORRUPT')).toBe(true)
    expect(err.message).toContain('0000000000000002.wal is missing')
  })

  it('a missing first segment whose entries were not compacted is STORAGE_CORRUPT', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { walSegmentBytesMax: 1024 })
    for (let i = 1; i <= 100; i += 10) await s.save(batch({ entries: entries(i, i + 9, 1, 50) }))
    await s.close()
    await unlink(path.join(dir, 'wal', '0000000000000001.wal'))
    const err = await new FileStorage(dir).load().catch((e) => e)
    expect(isStorageError(err, 'STORAGE_CORRUPT')).toBe(true)
    expect(err.message).toMatch(/entries 1\.\.\d+ are missing/)
  })

  it('a compacted log without the snapshot that covers it is STORAGE_CORRUPT', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 10, 1) }))
    await s.saveCompaction(snapshotAt(8, 1), { index: 6, term: 1 })
    await s.close()
    await rm(path.join(dir, 'snap'), { recursive: true })
    const err = await new FileStorage(dir).load().catch((e) => e)
    expect(isStorageError(err, 'STORAGE_CORRUPT')).toBe(true)
    expect(err.message).toContain('the log starts after 6, but the newest snapshot is missing')
  })

  it('snapshot files without any WAL segment are STORAGE_CORRUPT (the vote would be lost)', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir)
    await s.save(batch({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } }))
    await s.saveCompaction(snapshotAt(10, 1), { index: 10, term: 1 })
    await s.close()
    await rm(path.join(dir, 'wal'), { recursive: true })
    const err = await new FileStorage(dir).load().catch((e) => e)
    expect(isStorageError(err, 'STORAGE_CORRUPT')).toBe(true)
    expect(err.message).toContain('the WAL has no segment')
  })
})

describe('FileStorage limits and misuse', () => {
  it('an entry above recordBytesMax is STORAGE_LIMIT, nothing is written and storage stays usable', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { recordBytesMax: 4096 })
    await s.save(batch({ entries: entries(1, 2, 1) }))
    const err = await s
      .save(batch({ entries: [entry(3, 1, 5000)], hardState: { term: 9, vote: 9, commit: 9 } }))
      .catch((e) => e)
    expect(isStorageError(err, 'STORAGE_LIMIT')).toBe(true)
    // Many small entries above the record limit together are split over several records.
    await s.save(batch({ entries: entries(3, 60, 1, 1000) }))
    const state = await reopen(s, dir, { recordBytesMax: 4096 })
    expect(state.hardState).toEqual({ term: 0, vote: 0, commit: 0 })
    expect(plain(state.entries)).toEqual(plain([...entries(1, 2, 1), ...entries(3, 60, 1, 1000)]))
  })

  it('snapshot data above snapshotDataBytesMax is STORAGE_LIMIT before anything is written', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { snapshotDataBytesMax: 100 })
    await s.save(batch({ entries: entries(1, 5, 1) }))
    const err = await s.saveCompaction(snapshotAt(5, 1, 101), { index: 5, term: 1 }).catch((e) => e)
    expect(isStorageError(err, 'STORAGE_LIMIT')).toBe(true)
    expect(s.snapshotFiles).toBe(0)
    await s.saveCompaction(snapshotAt(5, 1, 100), { index: 5, term: 1 })
    await s.close()
  })

  it('programmer errors are assertions: save before load, overlapping calls, holes, compaction off the log', async () => {
    const dir = await dirs.make()
    const fresh = new FileStorage(dir)
    await expect(fresh.save(batch({ entries: entries(1, 1, 1) }))).rejects.toThrow(/storage assertion.*new/)
    const { s } = await open(dir)
    const first = s.save(batch({ entries: entries(1, 1, 1) }))
    await expect(s.save(batch({ entries: entries(2, 2, 1) }))).rejects.toThrow(/calls must not overlap/)
    await first
    await s.close()
    const { s: s2 } = await open(dir)
    await expect(s2.save(batch({ entries: entries(5, 5, 1) }))).rejects.toThrow(/entry 5 outside \(0, 2\]/)
    // An assertion leaves the storage refusing further calls.
    await expect(s2.save(batch({ entries: entries(2, 2, 1) }))).rejects.toThrow(/refuses further calls/)
    await s2.close()
    const { s: s3 } = await open(dir)
    await expect(s3.saveCompaction(snapshotAt(1, 1), { index: 1, term: 7 })).rejects.toThrow(/log has term 1/)
    await s3.close()
  })
})

describe('FileStorage group commit', () => {
  // These count fdatasync calls and list the WAL's descriptors: no zero-fill runs beside the saves.
  const open = (dir: string, options?: FileStorageOptions) =>
    openStorage(dir, { walZeroAhead: false, ...options })
  /** FileHandle is not exported: spy on its prototype, reached through a handle of our own. */
  async function datasyncSpy(dir: string) {
    const h = await openFile(path.join(dir, 'probe'), 'w')
    const proto = Object.getPrototypeOf(h) as { datasync(): Promise<void> }
    await h.close()
    return vi.spyOn(proto, 'datasync')
  }

  it('dsync mode (the default): the segment being appended is open with O_DSYNC, and no fdatasync follows', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { walSegmentBytesMax: 64 * 1024 })
    const spy = await datasyncSpy(dir)
    try {
      await s.save(batch({ entries: entries(1, 400, 1, 256), hardState: { term: 1, vote: 1, commit: 0 } }))
      expect(spy).toHaveBeenCalledTimes(0)
      // Every WAL segment this process holds open (the last one, after rollovers) has O_DSYNC.
      const walDir = await realpath(path.join(dir, 'wal'))
      const flags: number[] = []
      for (const fd of await readdir('/proc/self/fd')) {
        const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '')
        if (!target.startsWith(`${walDir}/`)) continue
        const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '')
        const match = /^flags:\s+([0-7]+)$/m.exec(info)
        if (match !== null) flags.push(Number.parseInt(match[1] as string, 8))
      }
      expect(flags.length).toBeGreaterThan(0)
      for (const f of flags) expect(f & constants.O_DSYNC).toBe(constants.O_DSYNC)
      const state = await reopen(s, dir)
      expect(state.entries.length).toBe(400)
    } finally {
      spy.mockRestore()
    }
  })

  it('fdatasync mode: one fdatasync per synced save (however many entries and records), none when sync is false', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { recordBytesMax: 8192, walSyncMode: 'fdatasync' })
    const spy = await datasyncSpy(dir)
    try {
      await s.save(batch({ entries: entries(1, 256, 1, 256), hardState: { term: 1, vote: 1, commit: 0 } }))
      expect(spy).toHaveBeenCalledTimes(1)
      await s.save(batch({ entries: entries(257, 300, 1) }, false))
      expect(spy).toHaveBeenCalledTimes(1)
      await s.save(batch({ hardState: { term: 1, vote: 1, commit: 300 } }))
      expect(spy).toHaveBeenCalledTimes(2)
    } finally {
      spy.mockRestore()
      await s.close()
    }
  })

  it('fdatasync mode: save() resolves only after its fdatasync has completed (a single voter acks after its own fsync)', async () => {
    const dir = await dirs.make()
    const { s } = await open(dir, { walSyncMode: 'fdatasync' })
    const spy = await datasyncSpy(dir)
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let started = () => {}
    const syncStarted = new Promise<void>((resolve) => {
      started = resolve
    })
    spy.mockImplementation(async function (this: { sync(): Promise<void> }) {
      started()
      await gate
      await this.sync()
    })
    try {
      let resolved = false
      const saving = s.save(batch({ entries: entries(1, 1, 1) })).then(() => {
        resolved = true
      })
      await syncStarted
      // Give the event loop many turns: nothing but the sync may let save() resolve.
      for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r))
      expect(resolved).toBe(false)
      release()
      await saving
      expect(resolved).toBe(true)
    } finally {
      spy.mockRestore()
      await s.close()
    }
  })
})
