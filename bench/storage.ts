/**
 * bench/storage: durable saves per second, our WAL (FileStorage) against classic-level (LevelDB),
 * in the same process run, on the same disk (a directory under os.tmpdir()).
 *
 * One save is what the node driver does per Ready: N entries of 256 bytes plus the hard state,
 * made durable before it resolves (group commit: one fdatasync for the whole batch).
 *   ours:          storage.save({ entries, hardState, sync: true })
 *   classic-level: db.batch([put entry key -> msgpackr entry, ..., put hardState], { sync: true })
 * Saves run back to back (one at a time, as the driver awaits each), so the figures are bound by
 * the disk's sync latency; entries/s shows what batching buys.
 *
 *   npx tsx bench/storage.ts                 batches of 1, 16 and 256 entries, 3 s each
 *   npx tsx bench/storage.ts --seconds 1 --batch 16 --rounds 2
 *
 * There is no etcd counterpart in-process; etcd's own WAL does the same work (one fdatasync per
 * Ready) and is compared end to end by the keys-API benchmarks.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { ClassicLevel } from 'classic-level'
import { Packr } from 'msgpackr'
import type { Entry, HardState } from '../src/raft/core/types.ts'
import { FileStorage } from '../src/raft/storage/file-storage.ts'

const entryBytes = 256
const packr = new Packr({ useRecords: false })

interface Result {
  store: 'ours' | 'classic-level'
  batch: number
  saves: number
  seconds: number
  latencyMsP50: number
  latencyMsP99: number
}

interface Store {
  save(entries: Entry[], hardState: HardState): Promise<void>
  close(): Promise<void>
}

async function openOurs(dir: string): Promise<Store> {
  const storage = new FileStorage(dir)
  await storage.load()
  return {
    save: (entries, hardState) => storage.save({ snapshot: undefined, entries, hardState, sync: true }),
    close: () => storage.close(),
  }
}

async function openLevel(dir: string): Promise<Store> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  const hardStateKey = new Uint8Array([0x68])
  return {
    save: (entries, hardState) => {
      const ops = entries.map((e) => ({
        type: 'put' as const,
        key: entryKey(e.index),
        value: packr.pack([e.index, e.term, e.data]),
      }))
      ops.push({
        type: 'put',
        key: hardStateKey,
        value: packr.pack([hardState.term, hardState.vote, hardState.commit]),
      })
      return db.batch(ops, { sync: true })
    },
    close: () => db.close(),
  }
}

/** 'e' + the index big-endian, so entries sort by index as LevelDB keys. */
function entryKey(index: number): Uint8Array {
  const key = Buffer.alloc(9)
  key[0] = 0x65
  key.writeBigUInt64BE(BigInt(index), 1)
  return key
}

async function run(store: Result['store'], batch: number, seconds: number): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `cairn-bench-${store}-`))
  try {
    const s =
      store === 'ours' ? await openOurs(path.join(dir, 'data')) : await openLevel(path.join(dir, 'data'))
    const data = new Uint8Array(entryBytes).fill(7)
    const latencies: number[] = []
    let next = 1
    const start = performance.now()
    const deadline = start + seconds * 1000
    for (let now = start; now < deadline; ) {
      const entries: Entry[] = []
      for (let i = 0; i < batch; i++) entries.push({ index: next + i, term: 1, type: 'normal', data })
      next += batch
      await s.save(entries, { term: 1, vote: 1, commit: next - 1 })
      const after = performance.now()
      latencies.push(after - now)
      now = after
    }
    const elapsed = (performance.now() - start) / 1000
    await s.close()
    latencies.sort((a, b) => a - b)
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
    return {
      store,
      batch,
      saves: latencies.length,
      seconds: elapsed,
      latencyMsP50: at(0.5),
      latencyMsP99: at(0.99),
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function row(r: Result): string {
  const savesPerSecond = r.saves / r.seconds
  const n = (x: number, width: number) => Math.round(x).toLocaleString('en-US').padStart(width)
  return (
    `${r.store.padEnd(13)} batch ${String(r.batch).padStart(3)}: ${n(savesPerSecond, 7)} saves/s ` +
    `${n(savesPerSecond * r.batch, 9)} entries/s   p50 ${r.latencyMsP50.toFixed(2)} ms  p99 ${r.latencyMsP99.toFixed(2)} ms`
  )
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      batch: { type: 'string' },
      rounds: { type: 'string', default: '1' },
    },
  })
  const seconds = Number(values.seconds)
  const rounds = Number(values.rounds)
  const batches = values.batch === undefined ? [1, 16, 256] : [Number(values.batch)]
  console.log(
    `storage: ${entryBytes}-byte entries, every save synced, ${seconds} s per run, ${rounds} round(s); ` +
      `node ${process.version}, ${os.platform()} ${os.release()}, dir ${os.tmpdir()}`,
  )
  await run('ours', 16, 0.3) // warm up both code paths and the disk
  await run('classic-level', 16, 0.3)
  for (let round = 1; round <= rounds; round++) {
    for (const batch of batches) {
      // Alternate which store goes first, so neither always runs on a "warmer" disk.
      const order: Result['store'][] =
        (round + batch) % 2 === 0 ? ['ours', 'classic-level'] : ['classic-level', 'ours']
      const results: Result[] = []
      for (const store of order) results.push(await run(store, batch, seconds))
      const ours = results.find((r) => r.store === 'ours')!
      const level = results.find((r) => r.store === 'classic-level')!
      console.log(row(ours))
      console.log(row(level))
      const ratio = ours.saves / ours.seconds / (level.saves / level.seconds)
      console.log(`  ours / classic-level: ${ratio.toFixed(2)}x saves/s`)
    }
  }
}

await main()
