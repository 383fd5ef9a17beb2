/**
 * Proves `cairn dev` runs a local cluster as its child processes: with --nodes 3 every member
 * serves on base-port, base-port+1, base-port+2 and they agree on one leader; one SIGINT (Ctrl-C)
 * stops every member gracefully and the command exits 0, leaving no member running. Bad flags
 * exit 2. The plan (names, ports, data directories) is checked without processes.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { devPlan, peerPortOffset } from '../src/agent/dev-plan.ts'
import { type AgentProcess, pollUntil, spawnCairn, status } from './helpers/agent-processes.ts'
import { freePort } from './helpers/ports.ts'

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

async function isFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A base port whose client and peer ports are all free (re-checked, since ports are shared). */
async function freeBasePort(nodes: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort()
    if (base + peerPortOffset + nodes > 65535) continue
    const ports = Array.from({ length: nodes }, (_, i) => [base + i, base + peerPortOffset + i]).flat()
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base
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
    expect(await proc.exited).toEqual({ code: 0, signal: null })
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
