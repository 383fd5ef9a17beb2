/**
 * The WAL zero-fills its current segment ahead of the appends (wal.ts, zeroAhead). Proves:
 *   - the room is filled (1 MiB first, then more as it is used) and appends into it leave the
 *     file's size alone, which is the point: no size change to commit per synced write;
 *   - fills never overwrite records: back-to-back saves that keep running into the zeroed edge
 *     replay whole, byte for byte;
 *   - zeros after the last record are a clean end in every segment, and a write torn anywhere
 *     inside zeroed room (a prefix of its bytes landed, the rest still zeros) loads as the prefix
 *     that was whole, is cut, and appends continue;
 *   - garbage in the zeroed tail of a segment that is not the last is STORAGE_CORRUPT.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isStorageError } from './errors.ts'
import { FileStorage, type FileStorageOptions } from './file-storage.ts'
import { decodeRecordAt } from './record.ts'
import { batch, entries, plain, TempDirs } from './test-data-dir.ts'
import { zeroFillBytesMin } from './wal.ts'

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

const segment1 = '0000000000000001.wal'

async function load(dir: string, options?: FileStorageOptions) {
  const s = new FileStorage(dir, options)
  const state = await s.load()
  return { s, state }
}

/** The offset where the valid records of a file end. */
function recordsEnd(buf: Buffer): number {
  let at = 0
  for (;;) {
    const rec = decodeRecordAt(buf, at, 1 << 24)
    if (!rec.ok) return at
    at = rec.end
  }
}

describe('zero-filled room ahead of the appends', () => {
  it('a new segment gets 1 MiB of zeros; appends into it keep the size; using half of it fills more', async () => {
    const dir = await dirs.make()
    const file = path.join(dir, 'wal', segment1)
    let { s } = await load(dir)
    await s.save(batch({ entries: entries(1, 10, 1, 100), hardState: { term: 1, vote: 1, commit: 0 } }))
    await s.close() // waits for a running fill
    let buf = await readFile(file)
    expect(buf.length).toBe(zeroFillBytesMin)
    const end = recordsEnd(buf)
    expect(end).toBeGreaterThan(1000)
    expect(buf.subarray(end).every((b) => b === 0)).toBe(true)

    ;({ s } = await load(dir))
    await s.save(batch({ entries: entries(11, 20, 1, 100) }))
    expect((await stat(file)).size).toBe(zeroFillBytesMin) // written over zeros, not appended
    // Past half of the room: the next fill doubles the file.
    await s.save(batch({ entries: entries(21, 21 + 600, 1, 1000) }))
    await s.close()
    buf = await readFile(file)
    expect(buf.length).toBe(2 * zeroFillBytesMin)
    expect(buf.subarray(recordsEnd(buf)).every((b) => b === 0)).toBe(true)
    const again = await load(dir)
    await again.s.close()
    expect(again.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 621 }, (_, i) => i + 1))
    expect(again.s.recovery?.tornTail).toBeUndefined()
  })

  it('saves that keep reaching the zeroed edge while fills run replay whole, byte for byte', async () => {
    const dir = await dirs.make()
    const { s } = await load(dir)
    const written = []
    let next = 1
    for (let i = 0; i < 40; i++) {
      const batchEntries = entries(next, next + 99, 2, 3000) // about 300 KiB per save
      written.push(...batchEntries)
      next += 100
      await s.save(batch({ entries: batchEntries, hardState: { term: 2, vote: 1, commit: next - 1 } }))
    }
    await s.close()
    const again = await load(dir)
    await again.s.close()
    expect(again.s.recovery?.tornTail).toBeUndefined()
    expect(again.state.entries.length).toBe(written.length)
    expect(plain(again.state.entries)).toEqual(plain(written))
  })

  it('a write torn anywhere inside zeroed room loads as the whole prefix, is cut, and appends continue', async () => {
    const dir = await dirs.make()
    const file = path.join(dir, 'wal', segment1)
    const { s } = await load(dir)
    for (let i = 1; i <= 20; i += 5) await s.save(batch({ entries: entries(i, i + 4, 1, 40) }))
    await s.save(batch({ hardState: { term: 1, vote: 1, commit: 20 } }))
    await s.close()
    const before = recordsEnd(await readFile(file))
    const { s: s2 } = await load(dir)
    await s2.save(batch({ entries: entries(21, 21, 1, 40), hardState: { term: 1, vote: 1, commit: 21 } }))
    await s2.close()
    const full = await readFile(file)
    const after = recordsEnd(full)
    const entriesEnd = (() => {
      const rec = decodeRecordAt(full, before, 1 << 24)
      if (!rec.ok) throw new Error('test setup: no record at the last save')
      return rec.end
    })()
    expect(full.length).toBeGreaterThan(after) // the last save went into zeroed room

    const root = await dirs.make()
    for (let cut = before; cut < after; cut++) {
      const copy = path.join(root, String(cut))
      const torn = Buffer.from(full)
      torn.fill(0, cut, after) // only a prefix of the last write landed
      await writeFile(path.join(await mkWal(copy), segment1), torn)
      const { s: r, state } = await load(copy)
      const kept = cut >= entriesEnd ? 21 : 20 // the hard state record of the last save may be all that tore
      expect(state.hardState.commit).toBe(20)
      expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: kept }, (_, k) => k + 1))
      await r.save(batch({ entries: entries(21, 22, 2, 40), hardState: { term: 2, vote: 1, commit: 22 } }))
      await r.close()
      const reloaded = await load(copy)
      await reloaded.s.close()
      expect(reloaded.state.entries.map((e) => e.term)).toEqual([...Array(20).fill(1), 2, 2])
      expect(reloaded.s.recovery?.tornTail).toBeUndefined()
    }
  })

  it('garbage then zeros after the last record of the last segment is a torn tail: cut', async () => {
    const dir = await dirs.make()
    const file = path.join(dir, 'wal', segment1)
    const { s } = await load(dir)
    await s.save(batch({ entries: entries(1, 5, 1, 40), hardState: { term: 1, vote: 1, commit: 5 } }))
    await s.close()
    const buf = await readFile(file)
    const end = recordsEnd(buf)
    buf.fill(0xa7, end, end + 9)
    await writeFile(file, buf)
    const { s: r, state } = await load(dir)
    await r.close()
    expect(state.entries).toHaveLength(5)
    expect(r.recovery?.tornTail).toMatchObject({ segment: segment1, offset: end })
    const after = await readFile(file)
    expect(recordsEnd(after)).toBe(end)
    expect(after.subarray(end).every((b) => b === 0)).toBe(true) // the garbage is gone
  })
})

describe('zero tails of earlier segments', () => {
  const options: FileStorageOptions = { walSegmentBytesMax: 16 * 1024 }

  async function rolledOver(): Promise<{ dir: string; names: string[] }> {
    const dir = await dirs.make()
    const { s } = await load(dir, options)
    for (let i = 1; i <= 400; i += 10) await s.save(batch({ entries: entries(i, i + 9, 1, 300) }))
    await s.close()
    const names = (await readdir(path.join(dir, 'wal'))).sort()
    return { dir, names }
  }

  it('replay whole: a segment that rolled over before its zeroed room was used up', async () => {
    const { dir, names } = await rolledOver()
    expect(names.length).toBeGreaterThan(3)
    let zeroTails = 0
    for (const name of names.slice(0, -1)) {
      const buf = await readFile(path.join(dir, 'wal', name))
      expect(buf.length).toBe(16 * 1024) // filled up to walSegmentBytesMax
      if (recordsEnd(buf) < buf.length) zeroTails++
    }
    expect(zeroTails).toBeGreaterThan(0)
    const { s, state } = await load(dir, options)
    await s.close()
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1))
  })

  it('garbage in the zeroed tail of a segment that is not the last is STORAGE_CORRUPT', async () => {
    const { dir, names } = await rolledOver()
    const file = path.join(dir, 'wal', names[0]!)
    const buf = await readFile(file)
    const end = recordsEnd(buf)
    expect(end).toBeLessThan(buf.length)
    buf[buf.length - 1] = 0x5a
    await writeFile(file, buf)
    const err = await new FileStorage(dir, options).load().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isStorageError(err) && err.code === 'STORAGE_CORRUPT').toBe(true)
    expect((err as Error).message).toContain(`segment ${names[0]}, offset ${end}`)
  })
})

async function mkWal(dir: string): Promise<string> {
  const wal = path.join(dir, 'wal')
  await mkdir(wal, { recursive: true })
  await mkdir(path.join(dir, 'snap'), { recursive: true })
  return wal
}
