/**
 * Proves that everything save() acknowledged survives a real kill -9, torn writes included.
 *
 * A child process (crash-child.ts) writes to one data directory under a Raft-like load and prints
 * each acknowledgement after save() resolved. The test SIGKILLs it at a random line of its output
 * (so at a random point of a write, an fsync, a rollover or a compaction), several times in a row
 * on the same directory, each new child recovering what the last one left. After every kill the
 * test loads a copy of the directory and checks:
 *   - every acknowledged entry is there with its term and bytes, unless compacted behind the
 *     snapshot, or replaced by the one save that was in flight (which may have landed, as a prefix);
 *   - the hard state is at least the acknowledged one; the snapshot at least the acknowledged one.
 * Seeds are fixed, so a failure replays; the failing seed and round are in the message.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, it } from 'vitest'
import { Prng } from '../core/prng.ts'
import type { PersistedState } from '../core/types.ts'
import { snapshotBytes } from '../core/types.ts'
import { crashEntryBytes, crashSnapshotData, crashStorageOptions } from './crash-child.ts'
import { FileStorage } from './file-storage.ts'
import { entryData, TempDirs } from './test-data-dir.ts'

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.ts')
/** 10 by default; a longer soak: CAIRN_CRASH_KILLS=200 CAIRN_CRASH_SEED=7 npx vitest run src/raft/storage/crash.test.ts */
const killsPerRun = Number(process.env['CAIRN_CRASH_KILLS'] ?? 10)
const seed = Number(process.env['CAIRN_CRASH_SEED'] ?? 20_240_601)

const dirs = new TempDirs()
afterEach(() => dirs.removeAll())

/** What the parent knows was acknowledged. */
interface Acked {
  /** Acknowledged live entries: index -> term. */
  terms: Map<number, number>
  term: number
  commit: number
  snapshotIndex: number
  /** Indexes the current child acknowledged (the rest of `terms` is what it loaded). */
  fresh: Set<number>
  /** The save that began and was not acknowledged when the child died. */
  inflight: { first: number; last: number; term: number } | undefined
}

interface ChildRun {
  lines: number
  acks: number
  compactions: number
}

async function runChildUntilKilled(
  dir: string,
  childSeed: number,
  killAtLine: number,
  acked: Acked,
): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, dir, String(childSeed)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const run: ChildRun = { lines: 0, acks: 0, compactions: 0 }
  let stderr = ''
  let pending = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      applyLine(line, acked, run)
      // Lines already in the pipe after the kill are still facts: keep applying them.
      if (++run.lines === killAtLine) child.kill('SIGKILL')
    }
  })
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  if (signal !== 'SIGKILL') throw new Error(`child exited by itself (code ${code}): ${stderr}`)
  return run
}

function applyLine(line: string, acked: Acked, run: ChildRun): void {
  const [kind, ...rest] = line.split(' ')
  const n = rest.map(Number)
  switch (kind) {
    case 'ready':
      return
    case 'begin':
      acked.inflight = { first: n[0]!, last: n[1]!, term: n[2]! }
      return
    case 'ack': {
      const [first, last, term, commit] = n as [number, number, number, number]
      for (const index of [...acked.terms.keys()]) if (index >= first) acked.terms.delete(index)
      for (let i = first; i <= last; i++) {
        acked.terms.set(i, term)
        acked.fresh.add(i)
      }
      acked.term = Math.max(acked.term, term)
      acked.commit = Math.max(acked.commit, commit)
      acked.inflight = undefined
      run.acks++
      return
    }
    case 'compact':
      acked.snapshotIndex = Math.max(acked.snapshotIndex, n[0]!)
      run.compactions++
      return
    default:
      throw new Error(`unexpected child output: ${line}`)
  }
}

/** Checks the loaded state against what was acknowledged; returns how many entries the killed child
 *  acknowledged that it checked, and whether the save in flight at the kill had landed. */
function checkAcked(
  state: PersistedState,
  acked: Acked,
  where: string,
): { checked: number; inflightLanded: boolean } {
  const loaded = new Map(state.entries.map((e) => [e.index, e]))
  for (const e of state.entries) {
    expect(Array.from(e.data), `${where}: bytes of entry ${e.index}`).toEqual(
      Array.from(entryData(e.index, e.term, crashEntryBytes(e.index, e.term))),
    )
  }
  const inflight = acked.inflight
  const inflightLanded = inflight !== undefined && loaded.get(inflight.first)?.term === inflight.term
  let checked = 0
  for (const [index, term] of acked.terms) {
    if (index <= state.logStart.index) continue
    if (inflightLanded && index >= inflight.first) continue
    expect(loaded.get(index)?.term, `${where}: acknowledged entry ${index}`).toBe(term)
    if (acked.fresh.has(index)) checked++
  }
  if (inflightLanded) {
    // It may have landed as a prefix; all it wrote carries its term.
    for (const e of state.entries)
      if (e.index >= inflight.first) expect(e.term, `${where}: entry ${e.index}`).toBe(inflight.term)
  }
  expect(state.hardState.term, `${where}: term`).toBeGreaterThanOrEqual(acked.term)
  expect(Math.max(state.hardState.commit, state.logStart.index), `${where}: commit`).toBeGreaterThanOrEqual(
    acked.commit,
  )
  const snapshot = state.snapshot
  expect(snapshot?.meta.index ?? 0, `${where}: snapshot`).toBeGreaterThanOrEqual(acked.snapshotIndex)
  if (snapshot !== undefined) {
    expect(Array.from(snapshotBytes(snapshot.data))).toEqual(
      Array.from(crashSnapshotData(snapshot.meta.index, snapshot.meta.term)),
    )
    expect(snapshot.meta.index).toBeGreaterThanOrEqual(state.logStart.index)
  }
  return { checked, inflightLanded }
}

it(`acknowledged saves survive ${killsPerRun} SIGKILLs at random moments (seed ${seed})`, async () => {
  const dir = await dirs.make('cairn-crash-')
  const prng = new Prng(seed)
  const acked: Acked = {
    terms: new Map(),
    fresh: new Set(),
    term: 0,
    commit: 0,
    snapshotIndex: 0,
    inflight: undefined,
  }
  const totals = { acks: 0, compactions: 0, checked: 0, torn: 0, landed: 0 }
  for (let round = 1; round <= killsPerRun; round++) {
    const where = `seed ${seed}, round ${round}`
    const run = await runChildUntilKilled(dir, prng.nextUint32(), prng.int(2, 400), acked)
    // Load a copy: the next child must itself recover whatever this kill left behind.
    const copy = await dirs.make('cairn-crash-check-')
    await cp(dir, copy, { recursive: true })
    const storage = new FileStorage(copy, crashStorageOptions)
    const state = await storage.load()
    if (storage.recovery?.tornTail !== undefined) totals.torn++
    await storage.close()
    const result = checkAcked(state, acked, where)
    totals.checked += result.checked
    if (result.inflightLanded) totals.landed++
    totals.acks += run.acks
    totals.compactions += run.compactions
    // The next child starts from what is on disk: that is the new baseline.
    acked.terms = new Map(state.entries.map((e) => [e.index, e.term]))
    acked.term = state.hardState.term
    acked.commit = Math.max(state.hardState.commit, state.logStart.index)
    acked.fresh = new Set()
    acked.inflight = undefined
  }
  expect(totals.acks).toBeGreaterThan(killsPerRun)
  console.info(
    `kill -9 test: ${killsPerRun} kills, ${totals.acks} acknowledged saves, ${totals.compactions} compactions, ` +
      `${totals.checked} entries acknowledged by killed children checked after the kills, ` +
      `${totals.landed} unacknowledged saves found landed, ${totals.torn} torn tails cut`,
  )
})
