/**
 * bench/scheduler-cluster: the four machines of the scheduler bench (issue 6), as real processes.
 *
 * Three `cairn agent --server` members (m1, m2, m3: metadata zone=a, b, c) and one client agent
 * `cairn agent --join` (m4, zone=d), each with its own data directory under one temp dir, on random
 * free loopback ports, each running a unit runner; the servers are also engine candidates. Ready
 * means: all four machines are alive in the catalog (GET /fleet/v1/machines) and one server says
 * `engine.leading` in GET /_cairn/status. stop() SIGKILLs every agent still running (their units die
 * with them through `setpriv --pdeathsig`) and removes the temp dir.
 */
import { join } from 'node:path'
import { request } from 'undici'
import { AgentCluster, type AgentProcess, spawnCairn } from '../test/helpers/agent-processes.ts'
import { freePort } from '../test/helpers/ports.ts'

export interface SchedulerMachine {
  readonly name: string
  readonly url: string
  readonly server: boolean
  readonly proc: AgentProcess
}

export interface SchedulerCluster {
  readonly machines: SchedulerMachine[]
  readonly machineTtlMs: number
  /** The server whose engine leads now. */
  engineMachine(): Promise<SchedulerMachine>
  /** SIGKILLs one agent; resolves once it has exited. */
  kill(name: string): Promise<void>
  /** The last lines an agent printed (warn and above), for a failure message. */
  output(name: string): string
  stop(): Promise<void>
}

const zones = ['a', 'b', 'c', 'd'] as const
/** A fresh cluster: election, bundle build on the first start, four machine leases, an engine. */
const readyWaitMs = 60_000
const readyPollMs = 50

export async function startSchedulerCluster(machineTtlMs: number): Promise<SchedulerCluster> {
  const servers = await AgentCluster.create(3)
  const common = ['--machine-ttl', String(machineTtlMs), '--log-level', 'warn']
  const machines: SchedulerMachine[] = []
  for (const [i, name] of servers.names.entries()) {
    const args = [...servers.args(name), '--metadata', `zone=${zones[i]}`, ...common]
    const proc = spawnCairn(args, name, servers.clientUrl(name))
    servers.running.set(name, proc)
    machines.push({ name, url: servers.clientUrl(name), server: true, proc })
  }
  const clientUrl = `http://127.0.0.1:${await freePort()}`
  const join_ = servers.names.map((n) => servers.clientUrl(n).replace('http://', '')).join(',')
  const clientArgs = [
    'agent',
    '--join',
    join_,
    '--name',
    'm4',
    '--data-dir',
    join(servers.dir, 'm4'),
    '--client-addr',
    clientUrl.replace('http://', ''),
    '--dns-addr',
    '127.0.0.1:0',
    '--metadata',
    `zone=${zones[3]}`,
    ...common,
  ]
  const client = spawnCairn(clientArgs, 'm4', clientUrl)
  servers.running.set('m4', client)
  machines.push({ name: 'm4', url: clientUrl, server: false, proc: client })

  const byName = (name: string) => {
    const m = machines.find((x) => x.name === name)
    if (m === undefined) throw new Error(`no machine ${name}`)
    return m
  }
  const cluster: SchedulerCluster = {
    machines,
    machineTtlMs,
    engineMachine: () => waitFor(() => engineLeader(machines), 'an engine leading', readyWaitMs),
    async kill(name) {
      const m = byName(name)
      m.proc.child.kill('SIGKILL')
      await m.proc.exited
    },
    output: (name) => byName(name).proc.output.join(''),
    stop: () => servers.destroy(),
  }
  try {
    await waitFor(
      async () => ((await aliveMachines(clientUrl)).length === machines.length ? true : undefined),
      'all four machines alive in the catalog',
      readyWaitMs,
    )
    await cluster.engineMachine()
  } catch (error) {
    const outputs = machines.map((m) => `--- ${m.name}\n${cluster.output(m.name)}`).join('\n')
    await cluster.stop()
    throw new Error(`${(error as Error).message}\n${outputs}`)
  }
  return cluster
}

/** GET a JSON document; undefined when the agent does not answer 200. */
export async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await request(url, { headersTimeout: 5_000, bodyTimeout: 5_000 })
    const text = await res.body.text()
    return res.statusCode === 200 ? (JSON.parse(text) as T) : undefined
  } catch {
    return undefined
  }
}

/** Machine ids alive in this agent's catalog copy (fleet's Machines, every page). */
export async function aliveMachines(url: string): Promise<string[]> {
  const ids: string[] = []
  let token = ''
  for (;;) {
    const q = token === '' ? '' : `?nextPageToken=${encodeURIComponent(token)}`
    const page = await getJson<{ machines?: { id: string }[]; nextPageToken?: string }>(
      `${url}/fleet/v1/machines${q}`,
    )
    if (page === undefined) return ids
    for (const m of page.machines ?? []) ids.push(m.id)
    if (page.nextPageToken === undefined) return ids
    token = page.nextPageToken
  }
}

async function engineLeader(machines: SchedulerMachine[]): Promise<SchedulerMachine | undefined> {
  for (const m of machines) {
    if (!m.server || m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) continue
    const status = await getJson<{ engine?: { leading?: boolean } }>(`${m.url}/_cairn/status`)
    if (status?.engine?.leading === true) return m
  }
  return undefined
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, ms: number): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, readyPollMs))
  }
}
