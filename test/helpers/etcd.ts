/**
 * The real etcd (Debian's etcd-server) as a child process, for differential tests and benchmarks:
 * single member or a local cluster, v2 API enabled, random free ports, a temporary data directory,
 * stopped and removed by stop(). `etcdAvailable()` tells whether the binary is installed; callers
 * skip with a clear message when it is not (CI installs it).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePorts } from './ports.ts'

export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Debian's etcd-client in v2 mode (its default v3 mode has no --version flag). */
export function etcdctlAvailable(): boolean {
  const env = { ...process.env, ETCDCTL_API: '2' }
  return spawnSync('etcdctl', ['--version'], { stdio: 'ignore', env }).status === 0
}

export interface EtcdCluster {
  clientUrls: string[]
  /** Process id of each member, in clientUrls order (benchmarks read /proc/<pid>/status). */
  pids: number[]
  /** Sends a signal to one member (index into clientUrls); resolves once it has exited. */
  kill(member: number, signal: NodeJS.Signals): Promise<void>
  stop(): Promise<void>
}

export async function startEtcd(members = 1): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-etcd-'))
  const ports = await freePorts(members * 2)
  const names = Array.from({ length: members }, (_, i) => `e${i + 1}`)
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`
  const clientUrls = names.map((_, i) => `http://127.0.0.1:${ports[2 * i]}`)
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',')
  const children: ChildProcess[] = names.map((name, i) =>
    spawn(
      'etcd',
      [
        '--name',
        name,
        '--data-dir',
        join(dir, name),
        '--enable-v2=true',
        '--listen-client-urls',
        clientUrls[i] as string,
        '--advertise-client-urls',
        clientUrls[i] as string,
        '--listen-peer-urls',
        peerUrl(i),
        '--initial-advertise-peer-urls',
        peerUrl(i),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        `cairn-test-${ports[0]}`,
      ],
      { stdio: 'ignore' },
    ),
  )
  const kill = (child: ChildProcess, signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      // A member killed earlier has a signalCode and no exitCode.
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill(signal)
    })
  const stop = async () => {
    await Promise.all(children.map((child) => kill(child, 'SIGKILL')))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitHealthy(clientUrls)
  } catch (error) {
    await stop()
    throw error
  }
  const pids = children.map((child) => child.pid ?? -1)
  const killMember = async (member: number, signal: NodeJS.Signals) => {
    const child = children[member]
    if (child === undefined) throw new Error(`no etcd member ${member}`)
    await kill(child, signal)
  }
  return { clientUrls, pids, kill: killMember, stop }
}

async function waitHealthy(clientUrls: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const url of clientUrls) {
    for (;;) {
      try {
        const response = await fetch(`${url}/health`)
        const body = (await response.json()) as { health?: string }
        if (body.health === 'true') break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd at ${url} did not become healthy`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
