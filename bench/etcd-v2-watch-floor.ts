/**
 * bench/etcd-v2-watch-floor: the watch row's client floor. Three stand-in servers
 * (etcd-v2-watch-floor-server.mjs, one process each, as three members) that hold the long polls
 * and end them all on a PUT with one pre-encoded write per watcher, the least any server can do.
 * The row run against them, with the same client, shows how fast the load generator itself can
 * take 5,000 responses on this machine while three processes write them: no server, etcd's or
 * ours, can be measured below that.
 *
 * The first server takes the PUT and tells the other two over a TCP connection opened at start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { BenchCluster } from './etcd-v2-cluster.ts'

const serverScript = fileURLToPath(new URL('./etcd-v2-watch-floor-server.mjs', import.meta.url))
const startWaitMs = 10_000

interface FloorServer {
  child: ChildProcess
  url: string
  controlPort: number
}

async function startServer(peerControlPorts: number[]): Promise<FloorServer> {
  const child = spawn(process.execPath, [serverScript, peerControlPorts.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const [data] = (await Promise.race([
      once(child.stdout as NodeJS.ReadableStream, 'data'),
      once(child, 'exit').then(() => Promise.reject(new Error('watch floor server exited at start'))),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('watch floor server did not start')), startWaitMs).unref(),
      ),
    ])) as [Buffer]
    const [word, port, controlPort] = String(data).trim().split(' ')
    if (word !== 'ready') throw new Error(`watch floor server said: ${String(data).trim()}`)
    return { child, url: `http://127.0.0.1:${port}`, controlPort: Number(controlPort) }
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
}

export type WatchFloor = Pick<BenchCluster, 'clientUrls' | 'stop'>

/** Three stand-in servers; member 0 takes the PUT (pass 0 as the leader). */
export async function startWatchFloor(): Promise<WatchFloor> {
  const servers: FloorServer[] = []
  const stop = async () => {
    await Promise.all(
      servers.map(async (s) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return
        const exited = once(s.child, 'exit')
        s.child.kill('SIGKILL')
        await exited
      }),
    )
  }
  try {
    servers.push(await startServer([]), await startServer([]))
    servers.unshift(await startServer(servers.map((s) => s.controlPort)))
  } catch (error) {
    await stop()
    throw error
  }
  return { clientUrls: servers.map((s) => s.url), stop }
}
