/**
 * bench/raft-core: committed entries per second through an in-memory 3-node cluster.
 *
 * Measures the pure core plus the Ready loop (persist to in-memory disks, deliver messages, apply,
 * advance): no sockets, no fsync. Proposals arrive in batches of `batch` entries between Ready
 * cycles, so the figure shows what batching buys: one append message per follower and one Ready
 * per node carry a whole batch. Entries are 128 bytes.
 *
 *   npm run bench:raft                   all batch sizes, 3 s each
 *   npm run bench:raft -- --seconds 1 --batch 64
 *
 * There is no etcd counterpart to run in-process for the core alone; the end-to-end benchmarks
 * (bench/ for the keys API) print ratios against the real etcd when it is installed.
 */
import { parseArgs } from 'node:util'
import { persistCompaction, TestCluster } from '../src/raft/core/test-cluster.ts'

interface Result {
  batch: number
  entries: number
  seconds: number
  perSecond: number
}

function run(batch: number, seconds: number): Result {
  const cluster = new TestCluster([1, 2, 3], { uncommittedBytesMax: 1 << 30 })
  cluster.elect(1)
  const leader = cluster.core(1)
  const payload = new Uint8Array(128).fill(7)
  const appliedBefore = cluster.node(1).applied.length
  const deadline = performance.now() + seconds * 1000
  let proposed = 0
  let trimmedApplied = 0
  const start = performance.now()
  while (performance.now() < deadline) {
    for (let i = 0; i < batch; i++) leader.propose(payload)
    proposed += batch
    cluster.process()
    // Keep memory flat: the bench does not need the applied history or old log entries.
    for (const node of cluster.nodes.values()) {
      if (node.applied.length > 100_000) {
        if (node === cluster.node(1)) trimmedApplied += node.applied.length
        node.applied = []
      }
      const applied = node.core.appliedIndex
      if (applied - node.disk.logStart.index > 200_000) {
        persistCompaction(node.disk, node.core.compact(applied, new Uint8Array(0)))
      }
    }
  }
  const elapsed = (performance.now() - start) / 1000
  const committed = trimmedApplied + cluster.node(1).applied.length - appliedBefore
  if (committed < proposed * 0.99) throw new Error(`only ${committed} of ${proposed} proposals committed`)
  return { batch, entries: committed, seconds: elapsed, perSecond: committed / elapsed }
}

function main(): void {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '3' }, batch: { type: 'string' } },
  })
  const seconds = Number(values.seconds)
  const batches = values.batch === undefined ? [1, 16, 64, 256] : [Number(values.batch)]
  run(64, 0.5) // warm up the JIT
  console.log(`raft-core: 3 in-memory nodes, 128-byte entries, ${seconds} s per batch size`)
  for (const batch of batches) {
    const r = run(batch, seconds)
    console.log(
      `batch ${String(r.batch).padStart(4)}: ${Math.round(r.perSecond).toLocaleString('en-US').padStart(10)} committed entries/s (${r.entries} in ${r.seconds.toFixed(2)} s)`,
    )
  }
}

main()
