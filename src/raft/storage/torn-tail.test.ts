/**
 * Proves recovery tells a torn tail from damage. A crash can only tear the end of the last
 * segment: cutting the file at every byte offset of its last save, or appending garbage (random or
 * zeros) after it, loads as the prefix that was whole, the file is cut back on disk and appends
 * continue cleanly. Damage anywhere else (a flipped byte or length before the last record, a
 * short earlier segment, a bad header, a bad snapshot file) is STORAGE_CORRUPT with a message
 * naming the file and offset. Leftover temporary files are removed.
 *
 * These cases work on the exact bytes of files that end at their last record, so they run with
 * walZeroAhead off; zero-filled-wal.test.ts covers files that run on with zeros.
 */
import { appendFile, copyFile, mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isStorageError, type StorageError } from './errors.ts'
import { FileStorage, type FileStorageOptions } from './file-storage.ts'
import { decodeRecordAt } from './record.ts'
import { batch, entries, plain, snapshotAt, TempDirs } from './test-data-dir.ts'

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

const segment1 = '0000000000000001.wal'
/** Files end at their last record (see the header). */
const layout: FileStorageOptions = { walZeroAhead: false }

/** A directory with entries 1..20 (hard state commit 20), then one last save: entry 21 + commit 21. */
async function withLastSave(): Promise<{ dir: string; before: number; entriesEnd: number; full: Buffer }> {
  const dir = await dirs.make()
  const s = new FileStorage(dir, layout)
  await s.load()
  for (let i = 1; i <= 20; i += 5) await s.save(batch({ entries: entries(i, i + 4, 1, 40) }))
  await s.save(batch({ hardState: { term: 1, vote: 1, commit: 20 } }))
  const file = path.join(dir, 'wal', segment1)
  const before = (await stat(file)).size
  await s.save(batch({ entries: entries(21, 21, 1, 40), hardState: { term: 1, vote: 1, commit: 21 } }))
  await s.close()
  const full = await readFile(file)
  const rec = decodeRecordAt(full, before, 1 << 20)
  if (!rec.ok) throw new Error('test setup: no record at the last save')
  return { dir, before, entriesEnd: rec.end, full }
}

async function loadDir(dir: string, options?: FileStorageOptions) {
  const s = new FileStorage(dir, { ...layout, ...options })
  const state = await s.load()
  return { s, state }
}

async function loadError(dir: string): Promise<StorageError> {
  const err = await new FileStorage(dir, layout).load().then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isStorageError(err)) throw new Error(`expected a StorageError, got ${String(err)}`)
  return err
}

describe('torn tail of the last segment', () => {
  it('a cut at every byte offset of the last save loads the whole prefix, and appends continue', async () => {
    const { before, entriesEnd, full } = await withLastSave()
    const root = await dirs.make()
    for (let cut = before; cut < full.length; cut++) {
      const dir = path.join(root, String(cut))
      await mkdir(path.join(dir, 'wal'), { recursive: true })
      await writeFile(path.join(dir, 'wal', segment1), full.subarray(0, cut))
      const { s, state } = await loadDir(dir)
      const last = cut >= entriesEnd ? 21 : 20
      expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: last }, (_, k) => k + 1))
      expect(state.hardState).toEqual({ term: 1, vote: 1, commit: 20 })
      expect(s.recovery?.tornTail === undefined).toBe(cut === before || cut === entriesEnd)
      expect((await stat(path.join(dir, 'wal', segment1))).size).toBe(cut >= entriesEnd ? entriesEnd : before)
      await s.save(
        batch({ entries: entries(last + 1, last + 2, 2, 40), hardState: { term: 2, vote: 1, commit: 1 } }),
      )
      await s.close()
      const again = await loadDir(dir)
      await again.s.close()
      expect(again.s.recovery?.tornTail).toBeUndefined()
      expect(plain(again.state.entries)).toEqual(
        plain([...entries(1, last, 1, 40), ...entries(last + 1, last + 2, 2, 40)]),
      )
      expect(again.state.hardState).toEqual({ term: 2, vote: 1, commit: 1 })
    }
  })

  it.each([
    { what: '1 random byte', bytes: () => Buffer.from([0xa7]) },
    {
      what: '13 random bytes',
      bytes: () => Buffer.from(Array.from({ length: 13 }, (_, i) => (i * 97 + 5) & 0xff)),
    },
    {
      what: '4 KiB of random bytes',
      bytes: () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
    },
    {
      what: 'a copy of the last record (not at its own offset)',
      bytes: (full: Buffer, before: number) => full.subarray(before),
    },
  ])('garbage after the last record ($what) is cut away', async ({ bytes }) => {
    const { dir, before, full } = await withLastSave()
    const garbage = bytes(full, before)
    await appendFile(path.join(dir, 'wal', segment1), garbage)
    const { s, state } = await loadDir(dir)
    await s.close()
    expect(state.entries).toHaveLength(21)
    expect(state.hardState).toEqual({ term: 1, vote: 1, commit: 21 })
    expect(s.recovery?.tornTail).toMatchObject({
      segment: segment1,
      offset: full.length,
      bytes: garbage.length,
    })
    expect((await stat(path.join(dir, 'wal', segment1))).size).toBe(full.length)
  })

  it('zeros after the last record (an extended, unwritten block, or zero-filled room) are a clean end, kept', async () => {
    const { dir, full } = await withLastSave()
    await appendFile(path.join(dir, 'wal', segment1), Buffer.alloc(512))
    const { s, state } = await loadDir(dir)
    await s.close()
    expect(state.entries).toHaveLength(21)
    expect(state.hardState).toEqual({ term: 1, vote: 1, commit: 21 })
    expect(s.recovery?.tornTail).toBeUndefined()
    expect((await stat(path.join(dir, 'wal', segment1))).size).toBe(full.length + 512)
  })

  it('a flipped byte in the very last record is indistinguishable from a torn write: cut away', async () => {
    const { dir, full } = await withLastSave()
    const damaged = Buffer.from(full)
    damaged[full.length - 2]! ^= 0x10
    await writeFile(path.join(dir, 'wal', segment1), damaged)
    const { s, state } = await loadDir(dir)
    await s.close()
    expect(state.entries).toHaveLength(21)
    expect(state.hardState).toEqual({ term: 1, vote: 1, commit: 20 })
  })

  it('the last segment may be torn while earlier ones are whole (rollover)', async () => {
    const dir = await dirs.make()
    const options = { walSegmentBytesMax: 1024 }
    const s = new FileStorage(dir, { ...layout, ...options })
    await s.load()
    for (let i = 1; i <= 60; i += 3) await s.save(batch({ entries: entries(i, i + 2, 1, 60) }))
    await s.close()
    const names = (await readdir(path.join(dir, 'wal'))).sort()
    expect(names.length).toBeGreaterThan(3)
    const last = path.join(dir, 'wal', names[names.length - 1]!)
    await truncate(last, (await stat(last)).size - 7)
    const loaded = await loadDir(dir, options)
    await loaded.s.close()
    expect(loaded.state.entries).toHaveLength(57)
  })
})

describe('damage that is not a torn tail', () => {
  it('a flipped payload byte in a record before the last one is STORAGE_CORRUPT', async () => {
    const { dir, before } = await withLastSave()
    const file = path.join(dir, 'wal', segment1)
    const damaged = await readFile(file)
    damaged[before - 20]! ^= 0x01
    await writeFile(file, damaged)
    const err = await loadError(dir)
    expect(err.code).toBe('STORAGE_CORRUPT')
    expect(err.message).toMatch(
      /segment 0000000000000001\.wal, offset \d+: checksum mismatch, but a valid record follows/,
    )
  })

  it('a damaged length field before the last record is STORAGE_CORRUPT (found by searching for the next record)', async () => {
    const { dir } = await withLastSave()
    const file = path.join(dir, 'wal', segment1)
    const damaged = await readFile(file)
    const first = decodeRecordAt(damaged, 0, 1 << 20)
    if (!first.ok) throw new Error('setup')
    // The second record (the first entries record): make its length claim far more bytes.
    damaged.writeUInt32LE(damaged.readUInt32LE(first.end) + 300, first.end)
    await writeFile(file, damaged)
    const err = await loadError(dir)
    expect(err.code).toBe('STORAGE_CORRUPT')
    expect(err.message).toContain(`offset ${first.end}: checksum mismatch, but a valid record follows`)
  })

  it('a short segment that is not the last is STORAGE_CORRUPT', async () => {
    const dir = await dirs.make()
    const s = new FileStorage(dir, { ...layout, walSegmentBytesMax: 1024 })
    await s.load()
    for (let i = 1; i <= 60; i += 3) await s.save(batch({ entries: entries(i, i + 2, 1, 60) }))
    await s.close()
    const file = path.join(dir, 'wal', '0000000000000002.wal')
    await truncate(file, (await stat(file)).size - 1)
    const err = await loadError(dir)
    expect(err.code).toBe('STORAGE_CORRUPT')
    expect(err.message).toContain('segment 0000000000000002.wal')
    expect(err.message).toContain('(not the last segment)')
  })

  it('a segment whose header is damaged is STORAGE_CORRUPT, even the last one', async () => {
    const { dir } = await withLastSave()
    const file = path.join(dir, 'wal', segment1)
    const damaged = await readFile(file)
    damaged[15]! ^= 0xff
    await writeFile(file, damaged)
    const err = await loadError(dir)
    expect(err.code).toBe('STORAGE_CORRUPT')
  })

  it('a segment copied under another sequence number is STORAGE_CORRUPT', async () => {
    const { dir } = await withLastSave()
    await copyFile(path.join(dir, 'wal', segment1), path.join(dir, 'wal', '0000000000000002.wal'))
    const err = await loadError(dir)
    expect(err.message).toContain('0000000000000002.wal does not start with its header')
  })

  it('a snapshot file with a flipped data byte is STORAGE_CORRUPT', async () => {
    const dir = await dirs.make()
    const s = new FileStorage(dir, layout)
    await s.load()
    await s.save(batch({ entries: entries(1, 10, 1) }))
    await s.saveCompaction(snapshotAt(10, 1, 1000), { index: 10, term: 1 })
    await s.close()
    const file = path.join(dir, 'snap', '000000000000000a-0000000000000001.snap')
    const damaged = await readFile(file)
    damaged[damaged.length - 100]! ^= 0x04
    await writeFile(file, damaged)
    const err = await loadError(dir)
    expect(err.code).toBe('STORAGE_CORRUPT')
    expect(err.message).toContain(
      'snapshot file 000000000000000a-0000000000000001.snap: data checksum mismatch',
    )
    await truncate(file, damaged.length - 1)
    expect((await loadError(dir)).message).toContain('no layout-2 trailer (truncated?)')
  })

  it('temporary files left by a crash are removed and never read', async () => {
    const { dir } = await withLastSave()
    await writeFile(path.join(dir, 'wal', '0000000000000002.wal.tmp'), 'half a segment')
    await mkdir(path.join(dir, 'snap'), { recursive: true })
    await writeFile(path.join(dir, 'snap', '0000000000000063-0000000000000009.snap.tmp'), 'half a snapshot')
    const { s, state } = await loadDir(dir)
    await s.close()
    expect(state.entries).toHaveLength(21)
    expect(state.snapshot).toBeUndefined()
    expect(await readdir(path.join(dir, 'wal'))).toEqual([segment1])
    expect(await readdir(path.join(dir, 'snap'))).toEqual([])
  })
})
