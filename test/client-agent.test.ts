/**
 * Client agents end to end: three `cairn agent --server` processes and a `cairn agent --join`
 * process on random loopback ports, driven by real clients (etcdctl v2 where installed, node-etcd,
 * the consul npm package, Node's dns.Resolver).
 *
 * Proves (issue 5, client agents):
 *   - the client agent serves the same endpoint as a server: etcd v2 keys (forwarded; an error is
 *     etcd's), Consul KV, its own services with a TTL check run here, DNS from its catalog copy;
 *   - identical watches on the client agent share one upstream stream;
 *   - a default-mode catalog read on the client agent sees a registration committed on a server
 *     just before it (the read barrier), every time of many;
 *   - kill -9 of the server the client agent is using: etcd v2 reads and writes through the agent
 *     go on (at most a retry while a new leader is elected), and a node-etcd watcher opened before
 *     the kill gets the next change with no gap;
 *   - kill -9 of the client agent: its instance leaves DNS on the servers within the detection
 *     window, its node's serfHealth turns critical.
 * Machine TTL 1 s (--machine-ttl 1000), election timeout 1 s; every wait polls with a deadline.
 */
import { spawn } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import Consul from 'consul'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import {
  AgentCluster,
  type AgentProcess,
  get,
  http,
  pollUntil,
  put,
  spawnCairn,
} from './helpers/agent-processes.ts'
import { etcdctlAvailable } from './helpers/etcd.ts'
import { freePorts } from './helpers/ports.ts'

const require = createRequire(import.meta.url)
interface Reply {
  action: string
  node: { key: string; value?: string; modifiedIndex: number }
}
interface NodeEtcd {
  watcher(
    key: string,
    index?: number | null,
    options?: object,
  ): { on(event: string, cb: (value: Reply) => void): void; stop(): void }
}
const Etcd = require('node-etcd') as new (hosts: string[]) => NodeEtcd

const machineTtlMs = 1_000
const haveEtcdctl = etcdctlAvailable()
if (!haveEtcdctl)
  console.warn('client-agent: etcdctl is not installed; its part of the first test is skipped')

let cluster: AgentCluster | undefined
let client: ClientProcess | undefined

afterEach(async () => {
  if (client !== undefined && client.proc.child.exitCode === null && client.proc.child.signalCode === null) {
    client.proc.child.kill('SIGKILL')
    await client.proc.exited
  }
  client = undefined
  await cluster?.destroy()
  cluster = undefined
})

interface ClientProcess {
  proc: AgentProcess
  url: string
  dnsPort: number
}

async function startAll(): Promise<{ c: AgentCluster; agent: ClientProcess }> {
  const c = await AgentCluster.create(3)
  c.extraArgs = ['--machine-ttl', String(machineTtlMs)]
  cluster = c
  c.startAll()
  await c.leader()
  const [port, dnsPort] = (await freePorts(2)) as [number, number]
  const url = `http://127.0.0.1:${port}`
  const join = c.names.map((n) => c.clientUrl(n).replace('http://', '')).join(',')
  const proc = spawnCairn(
    [
      'agent',
      '--join',
      join,
      '--name',
      'c1',
      '--data-dir',
      joinPath(c.dir, 'c1'),
      '--client-addr',
      `127.0.0.1:${port}`,
      '--dns-addr',
      `127.0.0.1:${dnsPort}`,
      '--metadata',
      'zone=z1',
      '--machine-ttl',
      String(machineTtlMs),
    ],
    'c1',
    url,
  )
  const agent = { proc, url, dnsPort }
  client = agent
  const diagnostics = () => `${c.outputs()}\n--- c1\n${proc.output.join('')}`
  // The client agent's machine is in a server's catalog, and the servers' in the client's.
  await pollUntil(
    async () => {
      const [onServer, onClient] = await Promise.all([nodes(c.clientUrl('m1')), nodes(url)])
      return onServer.includes('c1') && onClient.length === 4 ? true : undefined
    },
    'the client agent in the catalogs',
    20_000,
    diagnostics,
  )
  return { c, agent }
}

const joinPath = join

async function nodes(url: string): Promise<string[]> {
  const res = await http('GET', `${url}/v1/catalog/nodes`)
  return res?.status === 200 ? (res.body as { Node: string }[]).map((n) => n.Node) : []
}

function consulAt(url: string): Consul {
  return new Consul({ host: '127.0.0.1', port: Number(new URL(url).port) })
}

async function addressesOf(dnsPort: number, name: string): Promise<string[]> {
  const resolver = new Resolver({ timeout: 1000, tries: 1 })
  resolver.setServers([`127.0.0.1:${dnsPort}`])
  try {
    return (await resolver.resolve4(name)).sort()
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOTFOUND') return []
    throw error
  }
}

function etcdctl(
  endpoint: string,
  ...args: string[]
): Promise<{ status: number | null; out: string; err: string }> {
  const child = spawn('etcdctl', ['--endpoints', endpoint, '--no-sync', ...args], {
    env: { ...process.env, ETCDCTL_API: '2' },
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, out, err })))
}

async function clientStatus(
  url: string,
): Promise<{ currentServer: string; upstreamWatches: number; watchers: number }> {
  const res = await http('GET', `${url}/_cairn/status`)
  if (res?.status !== 200) throw new Error(`no status from the client agent: ${JSON.stringify(res)}`)
  return res.body as { currentServer: string; upstreamWatches: number; watchers: number }
}

describe('a client agent (cairn agent --join)', () => {
  it('serves etcd v2, Consul KV, its services and DNS from the servers; identical watches share an upstream', async () => {
    const { c, agent } = await startAll()
    // etcd v2 through the client agent, read back on a server.
    expect(await put(agent.url, 'app/config', 'v1')).toBe(true)
    expect(await get(c.clientUrl('m2'), 'app/config')).toBe('v1')
    const missing = await http('GET', `${agent.url}/v2/keys/app/none`)
    expect(missing?.status).toBe(404)
    expect(missing?.body).toMatchObject({ errorCode: 100, message: 'Key not found' })
    if (haveEtcdctl) {
      expect(await etcdctl(agent.url, 'set', '/ctl/a', 'one')).toMatchObject({ status: 0, out: 'one\n' })
      expect(await etcdctl(c.clientUrl('m3'), 'get', '/ctl/a')).toMatchObject({ status: 0, out: 'one\n' })
    }

    // Two identical long polls on the client agent: one upstream more, both get the change.
    const before = await clientStatus(agent.url)
    const polls = [0, 1].map(() => request(`${agent.url}/v2/keys/app/config?wait=true`))
    await pollUntil(
      async () => ((await clientStatus(agent.url)).watchers === before.watchers + 2 ? true : undefined),
      'both watches registered',
      10_000,
    )
    expect((await clientStatus(agent.url)).upstreamWatches).toBe(before.upstreamWatches + 1)
    expect(await put(c.clientUrl('m1'), 'app/config', 'v2')).toBe(true)
    for (const poll of polls) {
      const res = await poll
      expect(res.statusCode).toBe(200)
      expect(((await res.body.json()) as Reply).node.value).toBe('v2')
    }

    // Consul KV and a service with a TTL check, registered on the client agent.
    const consul = consulAt(agent.url)
    await consul.kv.set('cfg/db', 'postgres://db')
    const kv = (await consulAt(c.clientUrl('m1')).kv.get('cfg/db')) as { Value: string }
    expect(kv.Value).toBe('postgres://db')
    await consul.agent.service.register({
      name: 'api',
      id: 'api-1',
      address: '127.0.0.9',
      port: 9000,
      check: { name: 'api ttl', ttl: '30s', timeout: '1s' },
    })
    await consul.agent.check.pass({ id: 'service:api-1' })
    const onServer = await pollUntil(
      async () => {
        const found = await addressesOf(c.dnsPort('m1'), 'api.service.cairn')
        return found.length > 0 ? found : undefined
      },
      'api in DNS on a server',
      10_000,
    )
    expect(onServer).toEqual(['127.0.0.9'])
    expect(await addressesOf(agent.dnsPort, 'api.service.cairn')).toEqual(['127.0.0.9'])
    const passing = (await consul.health.service({ service: 'api', passing: true })) as {
      Node: { Node: string }
    }[]
    expect(passing.map((e) => e.Node.Node)).toEqual(['c1'])
  })

  it('a default-mode catalog read on the client agent sees a registration just committed on a server', async () => {
    const { c, agent } = await startAll()
    const server = consulAt(c.clientUrl('m1'))
    const onClient = consulAt(agent.url)
    for (let i = 0; i < 30; i++) {
      await server.catalog.register({
        node: `ext-${i}`,
        address: `10.0.0.${i + 1}`,
        service: { service: 'ext', id: `ext-${i}` },
      })
      const seen = (await onClient.catalog.service.nodes('ext')) as { ServiceID: string }[]
      expect(seen.map((s) => s.ServiceID)).toContain(`ext-${i}`)
    }
  })

  it('kill -9 of the server it uses: v2 reads and writes go on, a node-etcd watcher misses nothing', async () => {
    const { c, agent } = await startAll()
    expect(await put(agent.url, 'w/k', 'before')).toBe(true)
    const etcd = new Etcd([agent.url.replace('http://', '')])
    const seen: string[] = []
    const watcher = etcd.watcher('w/k')
    watcher.on('change', (reply: Reply) => seen.push(reply.node.value ?? ''))
    // node-etcd retries a failed long poll after 300 ms * 2^n plus up to 1 s: a few failures while
    // the client agent's upstream moves can add up to seconds (CI once waited 10 s for all three).
    const reconnects: string[] = []
    watcher.on('reconnect', (event: unknown) => {
      const error = event as Error & { error?: unknown }
      reconnects.push(`${error.message} ${String(error.error)}`)
    })
    await pollUntil(
      async () => ((await clientStatus(agent.url)).watchers >= 1 ? true : undefined),
      'the watcher',
      5_000,
    )
    const current = (await clientStatus(agent.url)).currentServer
    const victim = c.names.find((n) => c.clientUrl(n) === current)
    expect(victim).toBeDefined()
    await c.kill(victim as string, 'SIGKILL')
    // Every write is acknowledged, at worst after a retry while a new leader is elected.
    let retries = 0
    for (const value of ['after-1', 'after-2', 'after-3']) {
      while (!(await put(agent.url, 'w/k', value))) {
        retries++
        expect(retries).toBeLessThan(100)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(await get(agent.url, 'w/k')).toBe(value)
    }
    await pollUntil(
      async () => (seen.length >= 3 ? true : undefined),
      'the watcher to see the writes',
      30_000,
      () =>
        `seen ${JSON.stringify(seen)}; watcher reconnects: ${JSON.stringify(reconnects)}\n--- c1\n${agent.proc.output.slice(-40).join('')}`,
    )
    watcher.stop()
    expect(seen).toEqual(['after-1', 'after-2', 'after-3'])
    expect((await clientStatus(agent.url)).currentServer).not.toBe(current)
  })

  it('kill -9 of the client agent takes its instance out of DNS on the servers within the window', async () => {
    const { c, agent } = await startAll()
    const consul = consulAt(agent.url)
    await consul.agent.service.register({ name: 'job', id: 'job-1', address: '127.0.0.7', port: 7000 })
    await pollUntil(
      async () => ((await addressesOf(c.dnsPort('m2'), 'job.service.cairn')).length === 1 ? true : undefined),
      'job in DNS',
      10_000,
    )
    const killedAt = Date.now()
    agent.proc.child.kill('SIGKILL')
    await agent.proc.exited
    await pollUntil(
      async () => ((await addressesOf(c.dnsPort('m2'), 'job.service.cairn')).length === 0 ? true : undefined),
      'job to leave DNS',
      10_000,
    )
    const detectedMs = Date.now() - killedAt
    console.log(`kill -9 of a client agent to out of DNS: ${detectedMs} ms (machine TTL ${machineTtlMs} ms)`)
    // The detection window: the machine TTL plus one expiry sweep (500 ms) and slack for a loaded CI.
    expect(detectedMs).toBeLessThan(machineTtlMs + 2_500)
    const checks = (await consulAt(c.clientUrl('m1')).health.node('c1')) as {
      CheckID: string
      Status: string
    }[]
    expect(checks.find((check) => check.CheckID === 'serfHealth')?.Status).toBe('critical')
  })
})
