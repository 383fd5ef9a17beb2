/**
 * Unit journals on disk: what every command of a unit wrote to stdout and stderr, and the runner's
 * own lines about it (stream 'cairn'), one file per unit under `<dataDir>/units/<unit>/`, rotated.
 * FileJournals implements UnitJournals (src/scheduler/journal.ts) for the fleet API.
 *
 * Format: JSON Lines, one `{"ts":<ms since the epoch>,"stream":"stdout"|"stderr"|"cairn","text":...}`
 * per line, in the order the runner read them. `journal` is the current file; when appending a line
 * would take it past fileBytesMax it is renamed to `journal.1` (`journal.1` to `journal.2`, ...) and
 * the oldest past filesKept is removed.
 *
 * Invariants:
 * - A line's text is at most lineBytesMax UTF-8 bytes (LineSplitter cuts longer output into several
 *   lines, on a character boundary); no line contains a newline.
 * - Memory: at most pendingBytesMax bytes wait for the disk per unit; past it lines are dropped and
 *   the next write says how many ("N lines dropped"). tail() reads files backwards in chunks of
 *   readChunkBytes and keeps at most the lines asked for (bounded by tailLinesMax): a big file is
 *   never read whole.
 * - Writes, rotations and tails of one unit run one at a time (a chain), so a tail never sees a file
 *   half rotated; a tail sees every line appended before it was called.
 * - follow() listeners are called synchronously, in order, for every line appended after they were
 *   added, including lines later dropped for lack of disk; at most followersMax per unit.
 */
import { existsSync } from 'node:fs'
import { appendFile, mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { JournalLine, UnitJournals } from '../../scheduler/journal.ts'
import { type RunnerLimits, runnerLimits } from './limits.ts'

export type JournalLimits = Pick<
  RunnerLimits,
  | 'journalFileBytesMax'
  | 'journalFilesKept'
  | 'journalLineBytesMax'
  | 'journalPendingBytesMax'
  | 'journalTailLinesMax'
  | 'journalFollowersMax'
  | 'journalReadChunkBytes'
>

export const journalFileName = 'journal'

/** Splits a byte stream into lines of at most maxBytes, on UTF-8 character boundaries. */
export class LineSplitter {
  readonly #maxBytes: number
  readonly #emit: (text: string) => void
  #partial: Buffer = Buffer.alloc(0)

  constructor(maxBytes: number, emit: (text: string) => void) {
    this.#maxBytes = maxBytes
    this.#emit = emit
  }

  push(chunk: Buffer): void {
    let data = this.#partial.length === 0 ? chunk : Buffer.concat([this.#partial, chunk])
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10)) {
      this.#emitBounded(data.subarray(0, nl))
      data = data.subarray(nl + 1)
    }
    while (data.length >= this.#maxBytes) {
      const cut = charBoundary(data, this.#maxBytes)
      this.#emitText(data.subarray(0, cut))
      data = data.subarray(cut)
    }
    this.#partial = Buffer.from(data) // a copy: the chunk's buffer is not kept alive
  }

  /** Emits what is left (output that did not end in a newline). */
  end(): void {
    if (this.#partial.length > 0) this.#emitText(this.#partial)
    this.#partial = Buffer.alloc(0)
  }

  #emitBounded(line: Buffer): void {
    let rest = line
    while (rest.length > this.#maxBytes) {
      const cut = charBoundary(rest, this.#maxBytes)
      this.#emitText(rest.subarray(0, cut))
      rest = rest.subarray(cut)
    }
    this.#emitText(rest)
  }

  #emitText(bytes: Buffer): void {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length
    this.#emit(bytes.subarray(0, end).toString('utf8'))
  }
}

/** The largest cut <= max that does not split a UTF-8 sequence (at least 1). */
function charBoundary(bytes: Buffer, max: number): number {
  let cut = max
  while (cut > 1 && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut--
  return cut
}

/** One unit's journal: appends, rotation, tail, followers. */
export class UnitJournal {
  readonly dir: string
  readonly #limits: JournalLimits
  readonly #listeners = new Set<(line: JournalLine) => void>()
  #pending: string[] = []
  #pendingBytes = 0
  #dropped = 0
  #size: number | undefined
  #chain: Promise<void> = Promise.resolve()
  #flushQueued = false

  constructor(dir: string, limits: JournalLimits) {
    this.dir = dir
    this.#limits = limits
  }

  get followers(): number {
    return this.#listeners.size
  }

  append(line: JournalLine): void {
    for (const listener of [...this.#listeners]) listener(line)
    const encoded = `${JSON.stringify(line)}\n`
    const bytes = Buffer.byteLength(encoded)
    if (this.#pendingBytes + bytes > this.#limits.journalPendingBytesMax) {
      this.#dropped++
      return
    }
    this.#pending.push(encoded)
    this.#pendingBytes += bytes
    if (!this.#flushQueued) {
      this.#flushQueued = true
      this.#enqueue(() => this.#flush())
    }
  }

  /** Resolves once every line appended so far is on disk (or its write failed). */
  flushed(): Promise<void> {
    return this.#enqueue(async () => {})
  }

  /** The last `count` lines across the current and rotated files, oldest first. */
  tail(count: number): Promise<JournalLine[]> {
    const wanted = Math.max(0, Math.min(count, this.#limits.journalTailLinesMax))
    return this.#enqueue(async () => {
      const lines: JournalLine[] = []
      for (let i = 0; i <= this.#limits.journalFilesKept && lines.length < wanted; i++) {
        const older = await readLastLines(
          this.#file(i),
          wanted - lines.length,
          this.#limits.journalReadChunkBytes,
        )
        lines.unshift(...older.flatMap(decodeLine))
      }
      return lines
    })
  }

  addListener(listener: (line: JournalLine) => void): (() => void) | undefined {
    if (this.#listeners.size >= this.#limits.journalFollowersMax) return undefined
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #file(index: number): string {
    return join(this.dir, index === 0 ? journalFileName : `${journalFileName}.${index}`)
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn)
    this.#chain = run.then(
      () => {},
      () => {},
    )
    return run
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false
    if (this.#dropped > 0) {
      const note = {
        ts: Date.now(),
        stream: 'cairn',
        text: `${this.#dropped} lines dropped (journalPendingBytesMax)`,
      }
      this.#pending.push(`${JSON.stringify(note)}\n`)
      this.#dropped = 0
    }
    const lines = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    await mkdir(this.dir, { recursive: true })
    this.#size ??= await stat(this.#file(0)).then(
      (s) => s.size,
      () => 0,
    )
    let batch = ''
    let batchBytes = 0
    for (const line of lines) {
      const bytes = Buffer.byteLength(line)
      if (this.#size + batchBytes + bytes > this.#limits.journalFileBytesMax && this.#size + batchBytes > 0) {
        if (batch !== '') await appendFile(this.#file(0), batch)
        await this.#rotate()
        batch = ''
        batchBytes = 0
      }
      batch += line
      batchBytes += bytes
    }
    if (batch !== '') await appendFile(this.#file(0), batch)
    this.#size += batchBytes
  }

  async #rotate(): Promise<void> {
    const kept = this.#limits.journalFilesKept
    await rm(this.#file(kept), { force: true })
    for (let i = kept - 1; i >= 0; i--) {
      await rename(this.#file(i), this.#file(i + 1)).catch(() => {})
    }
    this.#size = 0
  }
}

function decodeLine(text: string): JournalLine[] {
  try {
    const o = JSON.parse(text) as Partial<JournalLine>
    if (typeof o.ts !== 'number' || typeof o.text !== 'string') return []
    if (o.stream !== 'stdout' && o.stream !== 'stderr' && o.stream !== 'cairn') return []
    return [{ ts: o.ts, stream: o.stream, text: o.text }]
  } catch {
    return []
  }
}

/** The last `count` complete lines of a file, read backwards chunk by chunk; [] if it is missing. */
export async function readLastLines(path: string, count: number, chunkBytes: number): Promise<string[]> {
  if (count <= 0) return []
  const handle = await open(path, 'r').catch(() => undefined)
  if (handle === undefined) return []
  try {
    let position = (await handle.stat()).size
    const lines: string[] = []
    let carry: Buffer = Buffer.alloc(0)
    while (position > 0 && lines.length < count) {
      const size = Math.min(chunkBytes, position)
      position -= size
      const chunk = Buffer.alloc(size)
      await handle.read(chunk, 0, size, position)
      let data = Buffer.concat([chunk, carry])
      for (let nl = data.lastIndexOf(10); nl >= 0 && lines.length < count; nl = data.lastIndexOf(10)) {
        const line = data.subarray(nl + 1)
        if (line.length > 0) lines.push(line.toString('utf8'))
        data = data.subarray(0, nl)
      }
      carry = Buffer.from(data)
    }
    if (position === 0 && carry.length > 0 && lines.length < count) lines.push(carry.toString('utf8'))
    return lines.reverse()
  } finally {
    await handle.close()
  }
}

/** Every unit's journal on this machine (UnitJournals for the fleet API). */
export class FileJournals implements UnitJournals {
  readonly #root: string
  readonly #limits: JournalLimits
  readonly #journals = new Map<string, UnitJournal>()

  /** `root`: `<dataDir>/units`. */
  constructor(root: string, limits: JournalLimits = runnerLimits) {
    this.#root = root
    this.#limits = limits
  }

  /** The journal of `unit`, created on first use (unit names are one clean path segment). */
  journal(unit: string): UnitJournal {
    let journal = this.#journals.get(unit)
    if (journal === undefined) {
      journal = new UnitJournal(join(this.#root, unitDirName(unit)), this.#limits)
      this.#journals.set(unit, journal)
    }
    return journal
  }

  /** Forgets the in-memory journal of a unit that left (its files stay for `cairn unit journal`). */
  release(unit: string): void {
    const journal = this.#journals.get(unit)
    if (journal !== undefined && journal.followers === 0) this.#journals.delete(unit)
  }

  async tail(unit: string, lines: number): Promise<JournalLine[] | undefined> {
    if (!this.#has(unit)) return undefined
    return this.journal(unit).tail(lines)
  }

  follow(unit: string, onLine: (line: JournalLine) => void, signal: AbortSignal): boolean {
    if (!this.#has(unit)) return false
    if (signal.aborted) return true
    const remove = this.journal(unit).addListener(onLine)
    if (remove === undefined) return false
    signal.addEventListener('abort', remove, { once: true })
    return true
  }

  /** Resolves once every journal's appended lines are on disk. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#journals.values()].map((j) => j.flushed()))
  }

  #has(unit: string): boolean {
    if (!isSafeUnitName(unit)) return false
    return this.#journals.has(unit) || existsSync(join(this.#root, unitDirName(unit), journalFileName))
  }
}

/** Unit names are `[A-Za-z0-9:_.@-]`; anything else (a path from a request) names no journal. */
function isSafeUnitName(unit: string): boolean {
  return /^[A-Za-z0-9:_.@-]{1,256}$/.test(unit) && unit !== '.' && unit !== '..'
}

function unitDirName(unit: string): string {
  if (!isSafeUnitName(unit)) throw new Error(`journal: not a unit name: ${JSON.stringify(unit)}`)
  return unit
}
