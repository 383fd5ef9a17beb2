/**
 * Proves the snapshot file layouts and staging: a snapshot streamed to disk piece by piece
 * (stage) is readable before and after it is adopted, is byte-identical to its pieces, and is the
 * newest snapshot only once adopted; a discarded one leaves nothing; a stage past dataBytesMax
 * fails with STORAGE_LIMIT and leaves nothing; and a layout-1 file (metadata first, as written
 * before layout 2) still reads, whole and on demand.
 */
import { readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { snapshotBytes } from '../core/types.ts'
import { crc32 } from './crc32.ts'
import { isStorageError } from './errors.ts'
import { encodeSnapshotMeta } from './payload.ts'
import { encodeRecords, RecordType } from './record.ts'
import { SnapshotFiles, snapshotFileName } from './snapshot-files.ts'
import { TempDirs } from './test-data-dir.ts'

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

const options = { keptMax: 3, dataBytesMax: 1024 * 1024, metaBytesMax: 64 * 1024 }
const meta = { index: 42, term: 3, confState: { voters: [1, 2, 3], learners: [] } }

function pieces(count: number, bytes: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) =>
    Uint8Array.from({ length: bytes }, (_, j) => (i * 31 + j) & 0xff),
  )
}

async function* slowly(list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of list) {
    // One reused buffer, as snapshotStream() gives: a piece must be consumed before the next.
    const scratch = Buffer.from(piece)
    yield scratch
    scratch.fill(0)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('staged snapshots', () => {
  it('are streamed piece by piece, readable before and after adoption, and newest only once adopted', async () => {
    const dir = await dirs.make()
    const files = new SnapshotFiles(dir, options)
    await files.open()
    const list = pieces(5, 10_000)
    const whole = Buffer.concat(list)
    const staged = await files.stage(meta, slowly(list))
    expect(files.newest).toBeUndefined()
    expect(Buffer.from(snapshotBytes(staged.data)).equals(whole)).toBe(true)
    const stored = await files.adopt(staged)
    expect(files.newest).toMatchObject({ index: 42, term: 3 })
    expect(await readdir(dir)).toEqual([snapshotFileName(42, 3)])
    expect(Buffer.from(stored.read(10_000, 10_000)).equals(list[1] as Uint8Array)).toBe(true)
    const reopened = new SnapshotFiles(dir, options)
    await reopened.open()
    const read = await reopened.readNewest()
    expect(read?.meta).toEqual(meta)
    expect(Buffer.from(snapshotBytes(read?.data ?? new Uint8Array())).equals(whole)).toBe(true)
  })

  it('a discarded stage leaves nothing; one past dataBytesMax fails with STORAGE_LIMIT and leaves nothing', async () => {
    const dir = await dirs.make()
    const files = new SnapshotFiles(dir, { ...options, dataBytesMax: 25_000 })
    await files.open()
    const staged = await files.stage(meta, slowly(pieces(2, 10_000)))
    await staged.discard()
    expect(await readdir(dir)).toEqual([])
    try {
      await files.stage(meta, slowly(pieces(3, 10_000)))
      expect.unreachable('a stage past dataBytesMax succeeded')
    } catch (error) {
      expect(isStorageError(error, 'STORAGE_LIMIT')).toBe(true)
    }
    expect(await readdir(dir)).toEqual([])
  })

  it('a layout-1 file (metadata record first, then the data) still reads, whole and on demand', async () => {
    const dir = await dirs.make()
    const data = Buffer.concat(pieces(3, 5_000))
    const payload = encodeSnapshotMeta({ ...meta, dataBytes: data.length, dataCrc32: crc32(data) })
    const head = encodeRecords([{ type: RecordType.snapshotMeta, payload }], 0, options.metaBytesMax)
    await writeFile(path.join(dir, snapshotFileName(42, 3)), Buffer.concat([head, data]))
    const files = new SnapshotFiles(dir, options)
    await files.open()
    const read = await files.readNewest()
    expect(read?.meta).toEqual(meta)
    expect(Buffer.from(snapshotBytes(read?.data ?? new Uint8Array())).equals(data)).toBe(true)
    const stored = await files.stored(42, 3)
    expect(Buffer.from(stored?.read(5_000, 5_000) ?? []).equals(data.subarray(5_000, 10_000))).toBe(true)
  })
})
