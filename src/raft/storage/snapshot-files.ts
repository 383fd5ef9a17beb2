/**
 * Snapshot files: one file per snapshot, `<index 16 hex>-<term 16 hex>.snap`, in their own directory.
 *
 * Layout 2 (written since 2026-11-25): the raw data, then a snapshotMeta record (record.ts: the
 * snapshot's index, term, membership, and its data's length and CRC-32, naming its own offset),
 * then a trailer: u32 length of that record and the 8 bytes `CRNSNAP2`. The metadata comes last so
 * the data can be streamed to the file as it is encoded (stage()), its length and checksum
 * counted on the way, without the whole snapshot ever in memory.
 * Layout 1 (read only): the snapshotMeta record first (a u32 payload length leads it), then the data.
 * The state machine's data includes its own applied index, so the applied index is persisted
 * atomically with the state it describes.
 *
 * Writing is atomic: a temporary file is written and fsynced, renamed into place, and the
 * directory fsynced; a crash leaves either no file or the whole file (plus a .tmp removed on
 * open). Reading verifies the name, the record, the length and the data checksum; a file that
 * fails any of them is STORAGE_CORRUPT (it was synced whole, so damage is not a torn write).
 * Only the newest file is ever read; older ones are kept (up to keptMax) for operators.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import path from 'node:path'
import { type Snapshot, type SnapshotMeta, type StoredSnapshotData, snapshotBytes } from '../core/types.ts'
import { crc32 } from './crc32.ts'
import { readFully, removeTmpFiles, syncDirectory, tmpSuffix, writeFully } from './directory.ts'
import { assertStorage, StorageError } from './errors.ts'
import { decodeSnapshotMeta, encodeSnapshotMeta } from './payload.ts'
import { decodeRecordAt, encodeRecords, RecordType, recordHeaderBytes } from './record.ts'

const snapshotNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/

export interface SnapshotFile {
  index: number
  term: number
  filePath: string
  bytes: number
}

export function snapshotFileName(index: number, term: number): string {
  return `${index.toString(16).padStart(16, '0')}-${term.toString(16).padStart(16, '0')}.snap`
}

export function parseSnapshotFileName(name: string): { index: number; term: number } | undefined {
  const match = snapshotNamePattern.exec(name)
  if (match === null) return undefined
  const index = Number.parseInt(match[1]!, 16)
  const term = Number.parseInt(match[2]!, 16)
  return Number.isSafeInteger(index) && Number.isSafeInteger(term) ? { index, term } : undefined
}

export interface SnapshotFilesOptions {
  keptMax: number
  dataBytesMax: number
  metaBytesMax: number
}

export class SnapshotFiles {
  readonly #dir: string
  readonly #options: SnapshotFilesOptions
  #stages = 0
  /** Sorted by index, then term; the last one is the newest. */
  #files: SnapshotFile[] = []

  constructor(dir: string, options: SnapshotFilesOptions) {
    assertStorage(options.keptMax >= 1, 'snapshotsKeptMax must be at least 1')
    this.#dir = dir
    this.#options = options
  }

  /** Lists the snapshot files in the directory (removing leftover temporary files). */
  async open(): Promise<void> {
    await removeTmpFiles(this.#dir)
    const files: SnapshotFile[] = []
    for (const name of await readdir(this.#dir)) {
      const parsed = parseSnapshotFileName(name)
      if (parsed === undefined) continue
      const filePath = path.join(this.#dir, name)
      files.push({ ...parsed, filePath, bytes: (await stat(filePath)).size })
    }
    this.#files = files.sort(compareFiles)
  }

  get newest(): SnapshotFile | undefined {
    return this.#files[this.#files.length - 1]
  }

  get count(): number {
    return this.#files.length
  }

  get sizeBytes(): number {
    let total = 0
    for (const f of this.#files) total += f.bytes
    return total
  }

  /** Throws STORAGE_LIMIT, before writing anything, if the data is above dataBytesMax. */
  checkLimits(snapshot: Snapshot): void {
    if (snapshot.data.byteLength > this.#options.dataBytesMax) {
      throw new StorageError(
        'STORAGE_LIMIT',
        `snapshot data of ${snapshot.data.byteLength} bytes is above snapshotDataBytesMax ${this.#options.dataBytesMax}`,
      )
    }
  }

  /**
   * Writes the snapshot durably and atomically; on return it is the newest file if none is newer.
   * Returns the file's data as StoredSnapshotData (the caller may then drop the bytes).
   */
  async write(snapshot: Snapshot): Promise<StoredSnapshotData> {
    this.checkLimits(snapshot)
    const staged = await this.stage(snapshot.meta, [snapshotBytes(snapshot.data)])
    return this.adopt(staged)
  }

  /**
   * Streams a snapshot's data to a temporary file as it is produced, then its metadata, and syncs
   * it; the file is not a snapshot until adopt(). Memory stays at one piece however large the
   * snapshot is. Throws STORAGE_LIMIT (and removes the file) past dataBytesMax.
   */
  async stage(
    meta: SnapshotMeta,
    pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<StagedSnapshotFile> {
    const filePath = path.join(this.#dir, snapshotFileName(meta.index, meta.term))
    // Unique per stage, so two stages never share a temporary file.
    const tmpPath = `${filePath}.${++this.#stages}.staged${tmpSuffix}`
    const handle = await open(tmpPath, 'w')
    let dataBytes = 0
    let dataCrc32 = 0
    try {
      for await (const piece of pieces) {
        if (dataBytes + piece.length > this.#options.dataBytesMax) {
          throw new StorageError(
            'STORAGE_LIMIT',
            `snapshot data above snapshotDataBytesMax ${this.#options.dataBytesMax}`,
          )
        }
        await writeFully(handle, piece, dataBytes)
        dataCrc32 = crc32(piece, dataCrc32)
        dataBytes += piece.length
      }
      const { index, term, confState } = meta
      const payload = encodeSnapshotMeta({ index, term, confState, dataBytes, dataCrc32 })
      const record = encodeRecords(
        [{ type: RecordType.snapshotMeta, payload }],
        dataBytes,
        this.#options.metaBytesMax,
      )
      const trailer = Buffer.alloc(trailerBytes)
      trailer.writeUInt32LE(record.length, 0)
      trailerMagic.copy(trailer, 4)
      await writeFully(handle, Buffer.concat([record, trailer]), dataBytes)
      await handle.sync()
    } catch (error) {
      await handle.close()
      await unlink(tmpPath).catch(() => undefined)
      throw error
    }
    await handle.close()
    const data = new SnapshotFileData(tmpPath, 0, dataBytes, dataCrc32)
    return {
      meta,
      data,
      finalPath: filePath,
      discard: () => unlink(tmpPath).catch(() => undefined),
    }
  }

  /** Renames a staged file into place (durably): from now on it is a snapshot file. */
  async adopt(staged: StagedSnapshotFile): Promise<StoredSnapshotData> {
    const { meta, finalPath } = staged
    await rename(staged.data.filePath, finalPath)
    await syncDirectory(this.#dir)
    staged.data.moved(finalPath)
    const bytes = (await stat(finalPath)).size
    this.#files = this.#files.filter((f) => f.filePath !== finalPath)
    this.#files.push({ index: meta.index, term: meta.term, filePath: finalPath, bytes })
    this.#files.sort(compareFiles)
    return staged.data
  }

  /**
   * The data of the snapshot file at index/term as StoredSnapshotData, after reading its header
   * (the data itself is read, and its checksum verified, only when it is read whole); undefined
   * when there is no such file.
   */
  async stored(index: number, term: number): Promise<StoredSnapshotData | undefined> {
    const file = this.#files.find((f) => f.index === index && f.term === term)
    if (file === undefined) return undefined
    const handle = await open(file.filePath, 'r')
    try {
      const { dataOffset, meta } = await this.#readHead(handle, file)
      return new SnapshotFileData(file.filePath, dataOffset, meta.dataBytes, meta.dataCrc32)
    } finally {
      await handle.close()
    }
  }

  /** Reads and verifies the newest snapshot; undefined when there is none. */
  async readNewest(): Promise<Snapshot | undefined> {
    const file = this.newest
    return file === undefined ? undefined : this.#read(file)
  }

  /** Deletes the oldest files beyond keptMax; returns how many. */
  async prune(): Promise<number> {
    const excess = this.#files.length - this.#options.keptMax
    if (excess <= 0) return 0
    for (const f of this.#files.slice(0, excess)) await unlink(f.filePath)
    this.#files = this.#files.slice(excess)
    await syncDirectory(this.#dir)
    return excess
  }

  async #read(file: SnapshotFile): Promise<Snapshot> {
    const handle = await open(file.filePath, 'r')
    try {
      const { dataOffset, meta } = await this.#readHead(handle, file)
      const data = new Uint8Array(meta.dataBytes)
      if ((await readFully(handle, data, dataOffset)) < data.length) throw corrupt(file, 'truncated data')
      if (crc32(data) !== meta.dataCrc32) throw corrupt(file, 'data checksum mismatch')
      return { meta: { index: meta.index, term: meta.term, confState: meta.confState }, data }
    } finally {
      await handle.close()
    }
  }

  /**
   * Reads and checks a file's metadata (layout 2's trailer, else layout 1's header), its name and
   * the file's length; returns the metadata and where the data starts.
   */
  async #readHead(handle: FileHandle, file: SnapshotFile) {
    const size = (await handle.stat()).size
    const layout2 = await this.#readTrailer(handle, file, size)
    if (layout2 !== undefined) return layout2
    try {
      return await this.#readLayout1(handle, file, size)
    } catch (error) {
      if (!(error instanceof StorageError)) throw error
      throw corrupt(file, `no layout-2 trailer (truncated?), and as layout 1: ${error.message}`)
    }
  }

  async #readLayout1(handle: FileHandle, file: SnapshotFile, size: number) {
    const lengthBuf = Buffer.alloc(4)
    if ((await readFully(handle, lengthBuf, 0)) < 4) throw corrupt(file, 'too short for a header')
    const metaBytes = lengthBuf.readUInt32LE(0)
    if (metaBytes > this.#options.metaBytesMax)
      throw corrupt(file, `metadata length ${metaBytes} out of range`)
    const headBuf = Buffer.alloc(recordHeaderBytes + metaBytes)
    if ((await readFully(handle, headBuf, 0)) < headBuf.length) throw corrupt(file, 'truncated metadata')
    const meta = this.#checkMeta(file, decodeRecordAt(headBuf, 0, this.#options.metaBytesMax))
    if (size !== headBuf.length + meta.dataBytes) {
      throw corrupt(file, `file is ${size} bytes, expected ${headBuf.length + meta.dataBytes}`)
    }
    return { dataOffset: headBuf.length, meta }
  }

  /** Layout 2's metadata, or undefined when the file does not end with layout 2's trailer. */
  async #readTrailer(handle: FileHandle, file: SnapshotFile, size: number) {
    if (size < trailerBytes) return undefined
    const trailer = Buffer.alloc(trailerBytes)
    if ((await readFully(handle, trailer, size - trailerBytes)) < trailerBytes) return undefined
    if (!trailer.subarray(4).equals(trailerMagic)) return undefined
    const recordBytes = trailer.readUInt32LE(0)
    if (recordBytes > recordHeaderBytes + this.#options.metaBytesMax || recordBytes + trailerBytes > size) {
      throw corrupt(file, `metadata record length ${recordBytes} out of range`)
    }
    const at = size - trailerBytes - recordBytes
    const recordBuf = Buffer.alloc(recordBytes)
    if ((await readFully(handle, recordBuf, at)) < recordBytes) throw corrupt(file, 'truncated metadata')
    const meta = this.#checkMeta(file, decodeRecordAt(recordBuf, 0, this.#options.metaBytesMax, at))
    if (meta.dataBytes !== at) throw corrupt(file, `data is ${at} bytes, its metadata says ${meta.dataBytes}`)
    return { dataOffset: 0, meta }
  }

  #checkMeta(file: SnapshotFile, rec: ReturnType<typeof decodeRecordAt>) {
    if (!rec.ok || rec.type !== RecordType.snapshotMeta)
      throw corrupt(file, rec.ok ? 'not a snapshot' : rec.reason)
    const meta = decodeSnapshotMeta(rec.payload)
    if (meta === undefined) throw corrupt(file, 'undecodable metadata')
    if (meta.index !== file.index || meta.term !== file.term) {
      throw corrupt(file, `holds snapshot ${meta.index}/${meta.term}, not the one its name says`)
    }
    if (meta.dataBytes > this.#options.dataBytesMax)
      throw corrupt(file, `data length ${meta.dataBytes} above the limit`)
    return meta
  }
}

/** Layout 2's trailer: u32 length of the metadata record, then this magic. */
const trailerMagic = Buffer.from('CRNSNAP2', 'latin1')
const trailerBytes = 4 + trailerMagic.length

/** A snapshot file written by stage() and not yet adopt()ed. */
export interface StagedSnapshotFile {
  readonly meta: SnapshotMeta
  /** Readable at once (from the temporary file, then from the final one). */
  readonly data: SnapshotFileData
  readonly finalPath: string
  /** Removes the temporary file (a stale snapshot that will not be adopted). */
  discard(): Promise<void>
}

function corrupt(file: SnapshotFile, reason: string): StorageError {
  return new StorageError('STORAGE_CORRUPT', `snapshot file ${path.basename(file.filePath)}: ${reason}`)
}

/**
 * A snapshot file's data, read on demand with synchronous reads of the page-cached file (the
 * transport sends a snapshot one chunk at a time). Reads in order from offset 0 carry a running
 * CRC-32, checked against the file's metadata when the last byte is read.
 */
export class SnapshotFileData implements StoredSnapshotData {
  readonly byteLength: number
  #filePath: string
  readonly #dataOffset: number
  readonly #crc: number
  /** Bytes read in order from the start so far, and their CRC-32 (-1: not reading in order). */
  #inOrder = 0
  #runningCrc = 0

  constructor(filePath: string, dataOffset: number, byteLength: number, crc: number) {
    this.#filePath = filePath
    this.#dataOffset = dataOffset
    this.byteLength = byteLength
    this.#crc = crc
  }

  get filePath(): string {
    return this.#filePath
  }

  /** The file was renamed (adopted): read it there from now on. */
  moved(filePath: string): void {
    this.#filePath = filePath
  }

  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.byteLength - offset))
    const chunk = Buffer.allocUnsafe(n)
    const fd = openSync(this.#filePath, 'r')
    try {
      let done = 0
      while (done < n) {
        const got = readSync(fd, chunk, done, n - done, this.#dataOffset + offset + done)
        if (got === 0)
          throw new StorageError('STORAGE_CORRUPT', `snapshot file ${this.#filePath}: truncated data`)
        done += got
      }
    } finally {
      closeSync(fd)
    }
    if (offset === 0) {
      this.#inOrder = 0
      this.#runningCrc = 0
    }
    if (offset === this.#inOrder) {
      this.#runningCrc = crc32(chunk, this.#runningCrc)
      this.#inOrder += n
      if (this.#inOrder === this.byteLength && this.#runningCrc !== this.#crc) {
        throw new StorageError('STORAGE_CORRUPT', `snapshot file ${this.#filePath}: data checksum mismatch`)
      }
    } else this.#inOrder = -1
    return chunk
  }
}

function compareFiles(a: SnapshotFile, b: SnapshotFile): number {
  return a.index - b.index || a.term - b.term
}
