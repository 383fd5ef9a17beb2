/**
 * The child process of the kill -9 test (crash.test.ts): a member's storage under a Raft-like
 * write load, run until it is killed.
 *
 *   node --import tsx src/raft/storage/crash-child.ts <dir> <seed>
 *
 * It loads the directory, then loops forever: appends entries (sometimes first truncating
 * the uncommitted tail with a new term, like a new leader), advances commit, and now and then
 * compacts behind a snapshot. Every save is synced. One line per event on stdout, written
 * synchronously (stdout is a pipe), so the parent has seen a line only if it happened:
 *
 *   ready <logStartIndex> <lastIndex>
 *   begin <first> <last> <term>              about to save these entries (1..32, sometimes 100..399)
 *   ack <first> <last> <term> <commit>       save() resolved: durable
 *   compact <snapIndex> <snapTerm> <logStartIndex>   saveCompaction() resolved
 */
import { pathToFileURL } from 'node:url'
import { Prng } from '../core/prng.ts'
import type { Entry } from '../core/types.ts'
import { FileStorage } from './file-storage.ts'
import { entryData } from './test-data-dir.ts'

/** Small segments and few snapshots, so rollover, segment deletion and pruning all happen. */
export const crashStorageOptions = { walSegmentBytesMax: 32 * 1024, snapshotsKeptMax: 3 }

/** The length of entry (index, term)'s data; its bytes are entryData(index, term, length). */
export function crashEntryBytes(index: number, term: number): number {
  return (index * 131 + term * 17) % 512
}

export function crashSnapshotData(index: number, term: number): Uint8Array {
  return entryData(index, term, 32)
}

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

async function main(dir: string, seed: number): Promise<void> {
  const prng = new Prng(seed)
  const storage = new FileStorage(dir, crashStorageOptions)
  const state = await storage.load()
  let logStart = state.logStart
  /** terms[i] is the term of entry logStart.index + 1 + i. */
  let terms = state.entries.map((e) => e.term)
  const lastIndex = () => logStart.index + terms.length
  const termAt = (i: number) => (i === logStart.index ? logStart.term : terms[i - logStart.index - 1]!)
  let term = Math.max(state.hardState.term, termAt(lastIndex()), 1)
  let commit = Math.max(state.hardState.commit, logStart.index)
  if (commit > lastIndex()) throw new Error(`commit ${commit} beyond the last index ${lastIndex()}`)
  say(`ready ${logStart.index} ${lastIndex()}`)
  for (;;) {
    const action = prng.float()
    if (action < 0.08 && commit - logStart.index > 20) {
      const snapIndex = commit
      const snapTerm = termAt(snapIndex)
      const start = { index: snapIndex - 10, term: termAt(snapIndex - 10) }
      const snapshot = {
        meta: { index: snapIndex, term: snapTerm, confState: { voters: [1], learners: [] } },
        data: crashSnapshotData(snapIndex, snapTerm),
      }
      await storage.saveCompaction(snapshot, start)
      terms = terms.slice(start.index - logStart.index)
      logStart = start
      say(`compact ${snapIndex} ${snapTerm} ${start.index}`)
      continue
    }
    let first = lastIndex() + 1
    if (action < 0.18 && lastIndex() > commit) {
      first = prng.int(commit + 1, lastIndex() + 1)
      term++
    }
    // Mostly Ready-sized batches; sometimes a big one, so a kill can land inside a longer write.
    const count = prng.chance(0.05) ? prng.int(100, 400) : prng.int(1, 33)
    const batch: Entry[] = []
    for (let i = first; i < first + count; i++) {
      batch.push({ index: i, term, type: 'normal', data: entryData(i, term, crashEntryBytes(i, term)) })
    }
    const last = first + count - 1
    const nextCommit = prng.chance(0.5) ? prng.int(commit, first) : commit
    say(`begin ${first} ${last} ${term}`)
    await storage.save({
      snapshot: undefined,
      entries: batch,
      hardState: { term, vote: 1, commit: nextCommit },
      sync: true,
    })
    terms.length = first - logStart.index - 1
    for (const e of batch) terms.push(e.term)
    commit = nextCommit
    say(`ack ${first} ${last} ${term} ${commit}`)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, seed] = process.argv.slice(2)
  main(dir!, Number(seed)).catch((error: unknown) => {
    process.stderr.write(`crash-child: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(2)
  })
}
