/**
 * Test support for storage tests: temporary data directories under os.tmpdir() (removed by the
 * caller's afterEach) and deterministic entries whose bytes depend on (index, term), so a test can
 * tell which version of an entry it got back.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Entry, HardState, Snapshot } from '../core/types.ts'
import type { SaveBatch } from './storage.ts'

export class TempDirs {
  readonly #dirs: string[] = []

  async make(prefix = 'cairn-storage-'): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
    this.#dirs.push(dir)
    return dir
  }

  async removeAll(): Promise<void> {
    for (const dir of this.#dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  }
}

/** Bytes of entry (index, term): `dataBytes` long, a pattern derived from both. */
export function entryData(index: number, term: number, dataBytes: number): Uint8Array {
  const data = new Uint8Array(dataBytes)
  for (let i = 0; i < dataBytes; i++) data[i] = (index * 31 + term * 7 + i) & 0xff
  return data
}

export function entry(index: number, term: number, dataBytes = 16): Entry {
  return { index, term, type: 'normal', data: entryData(index, term, dataBytes) }
}

export function entries(first: number, last: number, term: number, dataBytes = 16): Entry[] {
  const out: Entry[] = []
  for (let i = first; i <= last; i++) out.push(entry(i, term, dataBytes))
  return out
}

export function snapshotAt(index: number, term: number, dataBytes = 64): Snapshot {
  return {
    meta: { index, term, confState: { voters: [1, 2, 3], learners: [4] } },
    data: entryData(index, term, dataBytes),
  }
}

export function batch(
  parts: { entries?: Entry[]; hardState?: HardState; snapshot?: Snapshot },
  sync = true,
): SaveBatch {
  return { snapshot: parts.snapshot, entries: parts.entries ?? [], hardState: parts.hardState, sync }
}

/** Entries as comparable plain values (Buffer vs Uint8Array does not matter). */
export function plain(list: readonly Entry[]): unknown[] {
  return list.map((e) => ({ ...e, data: Array.from(e.data) }))
}
