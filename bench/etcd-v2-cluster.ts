/**
 * bench/etcd-v2-cluster: the two systems under test behind one shape, so every row drives Cairn
 * and etcd with the same code.
 *
 * Both are 3 members on random loopback ports with the default timing (heartbeat 100 ms,
 * election 1000 ms): Cairn as `cairn agent --server` processes (test/helpers/agent-processes.ts),
 * etcd as Debian's etcd-server with --enable-v2 (test/helpers/etcd.ts). Members are addressed by
 * index (0, 1, 2) in clientUrls order. The leader is found the same way for both: the member
 * whose /v2/stats/self says `state: StateLeader`.
 */
import { readFileSync } from 'node:fs'
import { AgentCluster, spawnCairn } from '../test/helpers/agent-processes.ts'
import { startEtcd } from '../test/helpers/etcd.ts'

export type SystemName = 'cairn' | 'etcd'

export interface BenchCluster {
  readonly system: SystemName
  readonly clientUrls: string[]
  /** Process id of a member (the process whose memory is measured and which kill() ends). */
  pid(member: number): number
  /** SIGKILLs one member; resolves once it has exited. */
  kill(member: number): Promise<void>
  stop(): Promise<void>
}

export const clusterSize = 3
/** How long a fresh cluster may take to elect a leader (tsx start-up included). */
const leaderWaitMs = 30_000
const leaderPollMs = 50

/**
 * `bin`: the `bin/cairn` to run (bench/ab.ts runs another checkout's); this checkout's by default.
 * `extraArgs` go after the agent's own.
 */
export async function startCairnCluster(bin?: string, extraArgs: string[] = []): Promise<BenchCluster> {
  const cluster = await AgentCluster.create(clusterSize)
  for (const name of cluster.names) {
    const args = [...cluster.args(name), '--log-level', 'warn', ...extraArgs]
    cluster.running.set(name, spawnCairn(args, name, cluster.clientUrl(name), bin))
  }
  const member = (i: number) => {
    const proc = cluster.running.get(cluster.names[i] ?? '')
    if (proc === undefined) throw new Error(`no cairn member ${i}`)
    return proc
  }
  return {
    system: 'cairn',
    clientUrls: cluster.names.map((n) => cluster.clientUrl(n)),
    pid: (i) => member(i).child.pid ?? -1,
    async kill(i) {
      const proc = member(i)
      proc.child.kill('SIGKILL')
      await proc.exited
    },
    stop: () => cluster.destroy(),
  }
}

export async function startEtcdCluster(): Promise<BenchCluster> {
  const etcd = await startEtcd(clusterSize)
  return {
    system: 'etcd',
    clientUrls: etcd.clientUrls,
    pid: (i) => etcd.pids[i] ?? -1,
    kill: (i) => etcd.kill(i, 'SIGKILL'),
    stop: () => etcd.stop(),
  }
}

/** Index of the member that reports itself leader, among those not listed in `skip`. */
export async function leaderIndex(cluster: BenchCluster, skip: number[] = []): Promise<number> {
  const deadline = Date.now() + leaderWaitMs
  while (Date.now() < deadline) {
    for (const [i, url] of cluster.clientUrls.entries()) {
      if (skip.includes(i)) continue
      try {
        const res = await fetch(`${url}/v2/stats/self`, { signal: AbortSignal.timeout(1_000) })
        const body = (await res.json()) as { state?: string }
        if (body.state === 'StateLeader') return i
      } catch {
        // not listening yet, or busy electing
      }
    }
    await new Promise((resolve) => setTimeout(resolve, leaderPollMs))
  }
  throw new Error(`${cluster.system}: no leader within ${leaderWaitMs} ms`)
}

/** Resident memory of a process in bytes (VmRSS of /proc/<pid>/status). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1]) * 1024
}
