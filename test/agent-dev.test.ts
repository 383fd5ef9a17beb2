/**
 * Proves `cairn dev` runs a local cluster as its child processes: with --nodes 3 every member
 * serves on base-port, base-port+1, base-port+2 and they agree on one leader; one SIGINT (Ctrl-C)
 * stops every member gracefully and the command exits 0, leaving no member running. Bad flags
 * exit 2. The plan (names, ports, data directories) is checked without processes.
 */
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { devPlan, dnsPortOffset, peerPortOffset } from '../src/agent/dev-plan.ts'
import { type AgentProcess, pollUntil, spawnCairn, status } from './helpers/agent-processes.ts'

let dev: AgentProcess | undefined
let dir: string | undefined

afterEach(async () => {
  if (dev !== undefined && dev.child.exitCode === null && dev.child.signalCode === null) {
    dev.child.kill('SIGINT')
    await dev.exited
  }
  dev = undefined
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

async function isFreeTcp(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function isFreeUdp(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createSocket('udp4')
    socket.once('error', () => {
      socket.close()
      resolve(false)
    })
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)))
  })
}

/** The lowest port the kernel hands out to port-0 binds and outgoing connections. */
function ephemeralPortLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isSafeInteger(low) && low > 0 ? low : 32768
  } catch {
    return 32768
  }
}

/**
 * A base port whose client, peer and DNS ports (TCP and UDP) are all free. Every one of them lies
 * below the kernel's ephemeral range, so no parallel test's port-0 bind or outgoing connection can
 * take one between this check and the members' listens (CI failed once on a DNS port taken so).
 */
async function freeBasePort(nodes: number): Promise<number> {
  const low = 10_000
  const high = Math.min(ephemeralPortLow(), 65536) - dnsPortOffset - nodes
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low))
    const offsets = [0, peerPortOffset, dnsPortOffset]
    const ports = offsets.flatMap((offset) => Array.from({ length: nodes }, (_, i) => base + offset + i))
    const free = await Promise.all(ports.map(async (p) => (await isFreeTcp(p)) && (await isFreeUdp(p))))
    if (free.every(Boolean)) return base
  }
  throw new Error('no free base port found')
}

describe('cairn dev', () => {
  it('plans n1..nN on consecutive client ports, peers 3000 above, one data dir per cluster size', () => {
    const plan = devPlan(3, '/d', 4001)
    expect(plan.map((m) => [m.name, m.clientUrl])).toEqual([
      ['n1', 'http://127.0.0.1:4001'],
      ['n2', 'http://127.0.0.1:4002'],
      ['n3', 'http://127.0.0.1:4003'],
    ])
    expect(plan[1]?.args).toContain('/d/3-members/n2')
    expect(plan[1]?.args).toContain('127.0.0.1:7002')
    expect(plan[0]?.args).toContain(
      'n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003',
    )
    expect(() => devPlan(2, '/d', 4001)).toThrow('--nodes')
    expect(() => devPlan(1, '/d', 65000)).toThrow('--base-port')
  })

  it('--nodes 3 runs three members that elect a leader; one SIGINT stops them all and exits 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-dev-test-'))
    const base = await freeBasePort(3)
    dev = spawnCairn(['dev', '--nodes', '3', '--base-port', String(base), '--data-dir', dir])
    const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`)
    const proc = dev
    await pollUntil(
      async () => {
        const statuses = await Promise.all(urls.map(status))
        const leaders = new Set(statuses.map((s) => s?.leader))
        return leaders.size === 1 && statuses.every((s) => s?.leader) ? true : undefined
      },
      'a leader on all three dev members',
      60_000,
      () => proc.output.join(''),
    )
    proc.child.kill('SIGINT')
    // On a failure, the message carries what the dev process and its members printed.
    expect(await proc.exited, proc.output.join('')).toEqual({ code: 0, signal: null })
    for (const url of urls) expect(await status(url)).toBeUndefined()
    expect(proc.output.join('')).toContain('Ctrl-C stops all')
  })

  it.each([
    [['dev', '--nodes', '2'], '--nodes: 2'],
    [['dev', '--nodes', 'three'], 'whole numbers'],
    [['dev', '--base-port', '65000'], '--base-port'],
  ])('cairn %j exits 2 with a clear reason', async (args, message) => {
    const proc = spawnCairn(args)
    expect((await proc.exited).code).toBe(2)
    expect(proc.output.join('')).toContain(message)
  })
})
