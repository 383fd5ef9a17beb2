/**
 * PidFile's writes are serialized and fire-and-forget for their callers (managed-unit.ts); proves
 * that flushed() waits for every write asked for before it, so a runner that stops can say its
 * directory is no longer written (the runner tests remove it right after).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PidFile } from './pid-file.ts'

const dirs: string[] = []
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

describe('PidFile', () => {
  it('flushed() resolves after every write asked for before it, in order, into a new directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-pids-'))
    dirs.push(dir)
    const file = new PidFile(join(dir, 'units', 'pids.json'), 64 * 1024)
    void file.add('a.service', 2_000_001)
    void file.add('b.service', 2_000_002)
    void file.remove(2_000_001)
    await file.flushed()
    const text = JSON.parse(await readFile(file.path, 'utf8')) as { runs: { unit: string; pid: number }[] }
    expect(text.runs.map((r) => [r.unit, r.pid])).toEqual([['b.service', 2_000_002]])
    // Nothing is left being written beside the file.
    expect(await readdir(join(dir, 'units'))).toEqual(['pids.json'])
  })
})
