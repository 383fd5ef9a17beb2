/**
 * bench/storage: durable saves per second, our WAL (FileStorage) against classic-level (LevelDB),
 * in the same process run, on the same disk (directories under os.tmpdir()).
 *
 * One save is what the node driver does per Ready: N entries of 256 bytes plus the hard state,
 * made durable before it resolves (group commit: one fdatasync for the whole batch).
 *   ours:          storage.save({ entries, hardState, sync: true })
 *   classic-level: db.batch([put entry key -> msgpackr entry, ..., put hardState], { sync: true })
 * Saves run back to back (one at a time, as the driver awaits each), so the figures are bound by
 * the disk's sync latency; entries/s shows what batching buys. Two modes, both printed by default:
 *   alone        each store runs by itself (LevelDB's background compaction cannot slow ours);
 *   interleaved  both run in alternating short slices of one run, so a noisy neighbour on a shared
 *                disk slows both alike (but LevelDB's compaction thread also runs in our slices).
 *
 *   npx tsx bench/storage.ts                 batches of 1, 16 and 256 entries, 3 s per store each
 *   npx tsx bench/storage.ts --seconds 5 --batch 16 --mode interleaved --slice-ms 50
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

type StoreName = 'ours' | 'classic-level'

interface Result {
  store: StoreName
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

/** One store's progress during a run. */
interface Lane {
  name: StoreName
  store: Store
  next: number
  busyMs: number
  latencies: number[]
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

async function openLane(name: StoreName, dir: string): Promise<Lane> {
  const store =
    name === 'ours' ? await openOurs(path.join(dir, 'ours')) : await openLevel(path.join(dir, 'level'))
  return { name, store, next: 1, busyMs: 0, latencies: [] }
}

/** Saves back to back on one lane for sliceMs. */
async function runSlice(lane: Lane, batch: number, sliceMs: number, data: Uint8Array): Promise<void> {
  const sliceStart = performance.now()
  for (let now = sliceStart; now - sliceStart < sliceMs; ) {
    const entries: Entry[] = []
    for (let i = 0; i < batch; i++) entries.push({ index: lane.next + i, term: 1, type: 'normal', data })
    lane.next += batch
    await lane.store.save(entries, { term: 1, vote: 1, commit: lane.next - 1 })
    const after = performance.now()
    lane.latencies.push(after - now)
    now = after
  }
  lane.busyMs += performance.now() - sliceStart
}

function result(lane: Lane, batch: number): Result {
  const sorted = lane.latencies.slice().sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return {
    store: lane.name,
    batch,
    saves: sorted.length,
    seconds: lane.busyMs / 1000,
    latencyMsP50: at(0.5),
    latencyMsP99: at(0.99),
  }
}

/** Runs the given stores in alternating slices of sliceMs until each had `seconds` of it. */
async function run(names: StoreName[], batch: number, seconds: number, sliceMs: number): Promise<Result[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-bench-storage-'))
  try {
    const lanes: Lane[] = []
    for (const name of names) lanes.push(await openLane(name, dir))
    const data = new Uint8Array(entryBytes).fill(7)
    for (let slice = 0; lanes.some((lane) => lane.busyMs < seconds * 1000); slice++) {
      // Alternate which lane goes first.
      for (const lane of slice % 2 === 0 ? lanes : lanes.slice().reverse())
        await runSlice(lane, batch, sliceMs, data)
    }
    for (const lane of lanes) await lane.store.close()
    return lanes.map((lane) => result(lane, batch))
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

function report(results: Result[]): void {
  const ours = results.find((r) => r.store === 'ours')!
  const level = results.find((r) => r.store === 'classic-level')!
  console.log(row(ours))
  console.log(row(level))
  const ratio = ours.saves / ours.seconds / (level.saves / level.seconds)
  console.log(`  ours / classic-level: ${ratio.toFixed(2)}x`)
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      batch: { type: 'string' },
      mode: { type: 'string', default: 'both' },
      'slice-ms': { type: 'string', default: '20' },
    },
  })
  const seconds = Number(values.seconds)
  const sliceMs = Number(values['slice-ms'])
  const mode = values.mode
  if (mode !== 'alone' && mode !== 'interleaved' && mode !== 'both')
    throw new Error('--mode alone|interleaved|both')
  const batches = values.batch === undefined ? [1, 16, 256] : [Number(values.batch)]
  console.log(
    `storage: ${entryBytes}-byte entries, every save synced, ${seconds} s per store and batch; ` +
      `node ${process.version}, ${os.platform()} ${os.release()}, dir ${os.tmpdir()}`,
  )
  await run(['ours', 'classic-level'], 16, 0.3, sliceMs) // warm up both code paths and the disk
  if (mode !== 'interleaved') {
    console.log('\nalone (one store at a time, which goes first alternating):')
    for (const batch of batches) {
      const order: StoreName[] = batch % 2 === 0 ? ['ours', 'classic-level'] : ['classic-level', 'ours']
      const results: Result[] = []
      for (const name of order) results.push(...(await run([name], batch, seconds, seconds * 1000)))
      report(results)
    }
  }
  if (mode !== 'alone') {
    console.log(`\ninterleaved (${sliceMs} ms slices of one run, the same neighbours for both):`)
    for (const batch of batches) report(await run(['ours', 'classic-level'], batch, seconds, sliceMs))
  }
}

await main()
