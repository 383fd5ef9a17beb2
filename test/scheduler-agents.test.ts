/**
 * The scheduler end to end (issue 6): real agents, real unit processes, the real `cairn unit` CLI.
 * Three server agents (zones a, b, c) and six client agents (two per zone) on random loopback
 * ports: nine machines, each with its own data dir, ports and metadata. Machine TTL 2 s: above the
 * 1 s election timeout, so that a Raft leader change does not fence every runner.
 *
 * Proves:
 *   - 9 instances of a template over 3 zones land 3/3/3, one per machine, each run once;
 *   - kill -9 of an agent: its unit dies with it (setpriv --pdeathsig) and comes up on another
 *     machine of the same zone; the agent restarted with the same data dir runs nothing twice and
 *     gets nothing back (no rebalancing);
 *   - fleet's rules: MachineMetadata, MachineOf, Conflicts and Global behave as in fleet;
 *   - a unit's declared service and HTTP check put it in DNS while healthy; a rolling update
 *     replaces the instances one at a time and a failing version is rolled back;
 *   - kill -9 of the server running the engine: a new engine is elected and the dead server's
 *     units run elsewhere, each once.
 * Every process a test starts is counted with pgrep by a marker in its command line and stopped
 * at the end; every wait polls with a deadline.
 */
import { execFile, execFileSync } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AgentCluster,
  type AgentProcess,
  cairnBin,
  http,
  pollUntil,
  spawnCairn,
} from './helpers/agent-processes.ts'
import { freePorts } from './helpers/ports.ts'

const machineTtlMs = 2_000
const zones = ['a', 'b', 'c'] as const
/** A marker no other test's process carries: `sleep 7531<i>`. */
const sleepMarker = '7531'

interface UnitState {
  name: string
  hash: string
  machineID: string
  systemdActiveState: string
  systemdSubState: string
}

let cluster: AgentCluster
let serverProcs: AgentProcess[] = []
const clients = new Map<string, { proc: AgentProcess; url: string; zone: string; args: string[] }>()
let unitDir: string
let endpoint: string

function zoneOf(machine: string): string {
  const server = /^m(\d)$/.exec(machine)
  if (server !== null) return zones[Number(server[1]) - 1] as string
  return clients.get(machine)?.zone ?? '?'
}

function startClient(name: string): void {
  const entry = clients.get(name)
  if (entry === undefined) throw new Error(`no client ${name}`)
  entry.proc = spawnCairn(entry.args, name, entry.url)
}

beforeAll(async () => {
  cluster = await AgentCluster.create(3)
  cluster.extraArgs = ['--machine-ttl', String(machineTtlMs)]
  for (const [i, n] of cluster.names.entries()) cluster.memberArgs.set(n, ['--metadata', `zone=${zones[i]}`])
  serverProcs = cluster.startAll()
  await cluster.leader()
  endpoint = cluster.clientUrl('m1')
  const servers = cluster.names.map((n) => cluster.clientUrl(n).replace('http://', '')).join(',')
  const ports = await freePorts(12)
  for (const zone of zones) {
    for (const k of [1, 2]) {
      const name = `c${zone}${k}`
      const port = ports.pop() as number
      const url = `http://127.0.0.1:${port}`
      const args = [
        'agent',
        '--join',
        servers,
        '--name',
        name,
        '--data-dir',
        join(cluster.dir, name),
        '--client-addr',
        `127.0.0.1:${port}`,
        '--dns-addr',
        `127.0.0.1:${ports.pop() as number}`,
        '--metadata',
        `zone=${zone}`,
        '--machine-ttl',
        String(machineTtlMs),
      ]
      clients.set(name, { proc: spawnCairn(args, name, url), url, zone, args })
    }
  }
  unitDir = mkdtempSync(join(tmpdir(), 'cairn-units-'))
  await pollUntil(
    async () => {
      const res = await http('GET', `${endpoint}/fleet/v1/machines`)
      const machines = (res?.body as { machines?: unknown[] } | undefined)?.machines ?? []
      const status = await Promise.all(
        cluster.names.map((n) => http('GET', `${cluster.clientUrl(n)}/_cairn/status`)),
      )
      const leading = status.some(
        (s) => (s?.body as { engine?: { leading?: boolean } })?.engine?.leading === true,
      )
      return machines.length === 9 && leading ? true : undefined
    },
    'nine machines in the catalog and an engine leading',
    60_000,
    diagnostics,
  )
}, 90_000)

afterAll(async () => {
  // Destroy every unit first so the runners stop their processes, then stop the agents.
  await cli(['destroy', 'web@{1..9}.service', 'web@.service', 'db.service', 'backup.service'], 20_000).catch(
    () => {},
  )
  await cli(['destroy', 'lonely@{1..4}.service', 'lonely@.service', 'exporter.service'], 20_000).catch(
    () => {},
  )
  for (const c of clients.values()) c.proc.child.kill('SIGKILL')
  await Promise.all([...clients.values()].map((c) => c.proc.exited))
  await cluster?.destroy()
  rmSync(unitDir, { recursive: true, force: true })
  // Anything of ours still running is a leak: kill it so it cannot outlive the run.
  execFile('pkill', ['-f', `^/bin/sleep ${sleepMarker}`])
}, 60_000)

function diagnostics(): string {
  const exited = serverProcs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null)
  const dead = exited.map(
    (p) =>
      `--- ${p.name} (exited ${p.child.exitCode ?? p.child.signalCode})\n${p.output.slice(-30).join('')}`,
  )
  const tails = [...clients.entries()].map(([n, c]) => `--- ${n}\n${c.proc.output.slice(-20).join('')}`)
  return `${cluster.outputs()}\n${dead.join('\n')}\n${tails.join('\n')}`
}

function unitFile(name: string, text: string): void {
  writeFileSync(join(unitDir, name), text)
}

/** Runs `cairn unit ...` against m1 from the unit directory. */
async function cli(args: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  return await new Promise((resolve) => {
    execFile(
      process.execPath,
      [cairnBin, 'unit', ...args],
      { cwd: unitDir, env: { ...process.env, CAIRN_ENDPOINT: endpoint }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, out: `${stdout}${stderr}` })
      },
    )
  })
}

async function states(): Promise<UnitState[]> {
  const all: UnitState[] = []
  let token = ''
  for (;;) {
    const res = await http(
      'GET',
      `${endpoint}/fleet/v1/state${token === '' ? '' : `?nextPageToken=${token}`}`,
    )
    const body = res?.body as { states?: UnitState[]; nextPageToken?: string } | undefined
    all.push(...(body?.states ?? []))
    if (body?.nextPageToken === undefined) return all
    token = body.nextPageToken
  }
}

/** Running units matching `prefix`: unit → machines reporting it active/running. */
async function running(prefix: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const s of await states()) {
    if (!s.name.startsWith(prefix) || s.systemdActiveState !== 'active' || s.systemdSubState !== 'running')
      continue
    out.set(s.name, [...(out.get(s.name) ?? []), s.machineID])
  }
  return out
}

/** Processes per `sleep 7531<i>` argument, counted from the process table. */
function sleepers(): Map<string, number> {
  let text = ''
  try {
    text = execFileSync('pgrep', ['-af', `^/bin/sleep ${sleepMarker}`], { encoding: 'utf8' })
  } catch {}
  const counts = new Map<string, number>()
  for (const line of text.split('\n')) {
    const arg = line.trim().split(/\s+/)[2]
    if (arg !== undefined) counts.set(arg, (counts.get(arg) ?? 0) + 1)
  }
  return counts
}

function zoneCounts(placements: Map<string, string[]>): number[] {
  const counts = new Map<string, number>()
  for (const machines of placements.values())
    for (const m of machines) counts.set(zoneOf(m), (counts.get(zoneOf(m)) ?? 0) + 1)
  return zones.map((z) => counts.get(z) ?? 0)
}

describe('the scheduler with real agents', () => {
  it('spreads 9 instances 3/3/3 over the zones, one per machine, each process run once', async () => {
    unitFile(
      'web@.service',
      `[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/bin/sleep ${sleepMarker}%i\n`,
    )
    const started = await cli(['start', 'web@{1..9}.service'])
    expect(started.code, started.out).toBe(0)
    expect(started.out).toMatch(/Unit web@9.service launched on /)
    const placed = await pollUntil(
      async () => {
        const r = await running('web@')
        return r.size === 9 ? r : undefined
      },
      'nine web instances running',
      20_000,
      diagnostics,
    )
    expect(zoneCounts(placed)).toEqual([3, 3, 3])
    const machines = [...placed.values()].flat()
    expect(new Set(machines).size).toBe(9)
    const procs = sleepers()
    for (let i = 1; i <= 9; i++) expect(procs.get(`${sleepMarker}${i}`), `web@${i}`).toBe(1)
  }, 60_000)

  it('kill -9 of an agent: its unit comes up elsewhere in its zone; back, it runs nothing twice', async () => {
    const before = await running('web@')
    const [victimUnit, [victim]] = [...before.entries()].find(([, m]) => clients.has(m[0] as string)) as [
      string,
      string[],
    ]
    const client = clients.get(victim as string)!
    client.proc.child.kill('SIGKILL')
    await client.proc.exited
    const killedAt = Date.now()
    const after = await pollUntil(
      async () => {
        const r = await running('web@')
        const on = r.get(victimUnit)
        return r.size === 9 && on?.length === 1 && on[0] !== victim ? r : undefined
      },
      `${victimUnit} running on another machine`,
      20_000,
      diagnostics,
    )
    const failoverMs = Date.now() - killedAt
    console.log(
      `scheduler-agents: ${victimUnit} running again on ${after.get(victimUnit)} ${failoverMs} ms after kill -9 of ${victim}`,
    )
    expect(zoneOf(after.get(victimUnit)?.[0] as string)).toBe(client.zone)
    expect(zoneCounts(after)).toEqual([3, 3, 3])
    const procs = sleepers()
    for (let i = 1; i <= 9; i++) expect(procs.get(`${sleepMarker}${i}`), `web@${i} after failover`).toBe(1)

    // The agent comes back with the same name and data dir: nothing runs twice, nothing moves back.
    startClient(victim as string)
    await pollUntil(
      async () => {
        const res = await http('GET', `${client.url}/_cairn/status`)
        const units = (res?.body as { units?: { fenced?: boolean } } | undefined)?.units
        const machines = await http('GET', `${endpoint}/fleet/v1/machines`)
        const list = (machines?.body as { machines?: { id: string }[] } | undefined)?.machines ?? []
        return units?.fenced === false && list.some((m) => m.id === victim) ? true : undefined
      },
      `${victim} back in the catalog`,
      20_000,
      diagnostics,
    )
    // Give the returning agent's runner time to act on anything it wrongly believed it had.
    await new Promise((r) => setTimeout(r, 2 * machineTtlMs))
    const settled = await running('web@')
    expect([...settled.values()].flat()).not.toContain(victim)
    const again = sleepers()
    for (let i = 1; i <= 9; i++) expect(again.get(`${sleepMarker}${i}`), `web@${i} after the return`).toBe(1)
  }, 60_000)

  it('follows fleet: MachineMetadata, MachineOf, Conflicts and Global', async () => {
    unitFile(
      'db.service',
      `[Service]\nExecStart=/bin/sleep ${sleepMarker}0\n\n[X-Fleet]\nMachineMetadata=zone=b\n`,
    )
    unitFile('backup.service', `[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineOf=db.service\n`)
    unitFile(
      'lonely@.service',
      `[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nConflicts=lonely@*.service\nMachineMetadata=zone=c\n`,
    )
    unitFile(
      'exporter.service',
      `[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nGlobal=true\nMachineMetadata=zone=c\n`,
    )
    const started = await cli([
      'start',
      'db.service',
      'backup.service',
      'lonely@{1..3}.service',
      'exporter.service',
    ])
    expect(started.code, started.out).toBe(0)
    const placed = await pollUntil(
      async () => {
        const db = await running('db.service')
        const backup = await running('backup.service')
        const lonely = await running('lonely@')
        const exporter = await running('exporter.service')
        const ok =
          db.size === 1 &&
          backup.size === 1 &&
          lonely.size === 3 &&
          exporter.get('exporter.service')?.length === 3
        return ok ? { db, backup, lonely, exporter } : undefined
      },
      'db, backup, three lonely instances and the global exporter running',
      20_000,
      diagnostics,
    )
    const dbMachine = placed.db.get('db.service')?.[0] as string
    expect(zoneOf(dbMachine)).toBe('b')
    expect(placed.backup.get('backup.service')).toEqual([dbMachine])
    const lonelyMachines = [...placed.lonely.values()].flat()
    expect(new Set(lonelyMachines).size).toBe(3)
    for (const m of lonelyMachines) expect(zoneOf(m)).toBe('c')
    const exporterMachines = (placed.exporter.get('exporter.service') ?? []).sort()
    expect(exporterMachines).toEqual(['cc1', 'cc2', 'm3'])

    // A fourth lonely instance has no zone-c machine left: it stays unplaced and says why.
    const third = await cli(['start', '--no-block', 'lonely@4.service'])
    expect(third.code, third.out).toBe(0)
    const why = await pollUntil(
      async () => {
        const res = await http('GET', `${endpoint}/fleet/v1/units/lonely@4.service/status`)
        const reason = (res?.body as { unplaced?: { reason?: string } } | undefined)?.unplaced?.reason
        return reason
      },
      'an unplaced reason for lonely@4',
      10_000,
      diagnostics,
    )
    expect(why).toMatch(/Conflicts/)
    const status = await cli(['status', 'lonely@4.service'])
    expect(status.out).toContain(why)
    await cli(['destroy', 'lonely@4.service'])
  }, 60_000)

  it("registers a unit's service while its check passes, rolls an update, and rolls back a failing one", async () => {
    const ports = await freePorts(2)
    const server = (body: string) =>
      `${process.execPath} -e "require('http').createServer((q,s)=>s.end('${body}')).listen(%i,'127.0.0.1')"`
    const template = (exec: string) =>
      [
        '[Service]',
        `ExecStart=${exec}`,
        '',
        '[X-Fleet]',
        'MachineMetadata=zone=a',
        '',
        '[X-Cairn]',
        'ServiceName=hello',
        'ServicePort=%i',
        'CheckHTTP=http://127.0.0.1:%i/',
        'CheckInterval=1s',
        'UpdateTimeoutSec=20s',
        '',
      ].join('\n')
    unitFile('hello@.service', template(server('v1')))
    const names = ports.map((p) => `hello@${p}.service`)
    const started = await cli(['start', ...names])
    expect(started.code, started.out).toBe(0)
    const resolver = new Resolver({ timeout: 1000, tries: 1 })
    resolver.setServers([`127.0.0.1:${cluster.dnsPort('m1')}`])
    const srvPorts = async (): Promise<number[]> => {
      try {
        return (await resolver.resolveSrv('hello.service.cairn')).map((r) => r.port).sort()
      } catch {
        return []
      }
    }
    await pollUntil(
      async () => ((await srvPorts()).join() === [...ports].sort().join() ? true : undefined),
      'both hello instances in DNS',
      20_000,
      diagnostics,
    )
    const bodies = async () =>
      await Promise.all(
        ports.map(async (p) => {
          try {
            return await (await request(`http://127.0.0.1:${p}/`)).body.text()
          } catch {
            return 'down'
          }
        }),
      )
    expect(await bodies()).toEqual(['v1', 'v1'])

    // v2: a rolling update, one instance at a time; DNS never loses both.
    unitFile('hello@.service', template(server('v2')))
    const submitted = await cli(['submit', 'hello@.service'])
    expect(submitted.code, submitted.out).toBe(0)
    let emptiest = 2
    await pollUntil(
      async () => {
        emptiest = Math.min(emptiest, (await srvPorts()).length)
        const res = await http('GET', `${endpoint}/fleet/v1/units/hello@.service/status`)
        const rollout = (res?.body as { rollout?: { state?: string } } | undefined)?.rollout
        const b = await bodies()
        return rollout?.state === 'done' && b.every((x) => x === 'v2') ? true : undefined
      },
      'the rollout to v2 done',
      30_000,
      diagnostics,
    )
    expect(emptiest).toBeGreaterThanOrEqual(1)

    // v3 exits at once: the first updated instance fails, the template goes back to v2.
    unitFile('hello@.service', template('/bin/sh -c "exit 3"'))
    expect((await cli(['submit', 'hello@.service'])).code).toBe(0)
    const rolledBack = await pollUntil(
      async () => {
        const res = await http('GET', `${endpoint}/fleet/v1/units/hello@.service/status`)
        const rollout = (res?.body as { rollout?: { state?: string; reason?: string } } | undefined)?.rollout
        return rollout?.state === 'rolled-back' ? rollout : undefined
      },
      'the rollout to v3 rolled back',
      30_000,
      diagnostics,
    )
    expect(rolledBack.reason).toMatch(/hello@\d+\.service (failed|restarted)/)
    // What the engine and the runners said last, for the message should this wait time out (CI
    // failed here once with m1's v3 instance exited and no v2 started after the rollback).
    let seen = ''
    try {
      await pollUntil(
        async () => {
          const [b, srv, template, states] = await Promise.all([
            bodies(),
            srvPorts(),
            http('GET', `${endpoint}/fleet/v1/units/hello@.service/status`),
            http('GET', `${endpoint}/fleet/v1/state`),
          ])
          seen = JSON.stringify({ bodies: b, srv, template: template?.body, states: states?.body })
          return b.every((x) => x === 'v2') && srv.length === 2 ? true : undefined
        },
        'both instances serving v2 again',
        30_000,
        () => `last seen: ${seen}\n${diagnostics()}`,
      )
    } catch (error) {
      // CI failed here twice with both ports answering v2 and DNS listing one: v3's registration
      // answered after v3 had exited and the rollback had registered v2 again, and deregistered
      // v2's service (fixed in managed-unit.ts; runner.test.ts, "registrations that answer late").
      // Should it fail again: who holds the ports, and what each machine's runner wrote.
      throw new Error(`${(error as Error).message}\n${await portsAndJournals(ports, names)}`)
    }
    await cli(['destroy', ...names, 'hello@.service'])
  }, 120_000)
  it("kill -9 of the server running the engine: another is elected and that server's units run elsewhere", async () => {
    const engines = await Promise.all(
      cluster.names.map(async (n) => {
        const res = await http('GET', `${cluster.clientUrl(n)}/_cairn/status`)
        return (res?.body as { engine?: { leading?: boolean } } | undefined)?.engine?.leading === true
          ? n
          : undefined
      }),
    )
    const leader = engines.find((n) => n !== undefined) as string
    const before = await running('web@')
    const onLeader = [...before.entries()].filter(([, m]) => m.includes(leader)).map(([u]) => u)
    expect(onLeader.length).toBeGreaterThan(0)
    endpoint = cluster.clientUrl(cluster.names.find((n) => n !== leader) as string)
    await cluster.kill(leader, 'SIGKILL')
    const killedAt = Date.now()
    await pollUntil(
      async () => {
        const r = await running('web@')
        return r.size === 9 && onLeader.every((u) => r.get(u)?.[0] !== leader) ? true : undefined
      },
      `the units of ${leader} running elsewhere`,
      30_000,
      diagnostics,
    )
    console.log(
      `scheduler-agents: ${onLeader.join(', ')} running again ${Date.now() - killedAt} ms after kill -9 of ${leader}, the engine's server`,
    )
    const newEngine = await pollUntil(
      async () => {
        for (const n of cluster.names.filter((x) => x !== leader)) {
          const res = await http('GET', `${cluster.clientUrl(n)}/_cairn/status`)
          if ((res?.body as { engine?: { leading?: boolean } } | undefined)?.engine?.leading === true)
            return n
        }
        return undefined
      },
      'a new engine',
      10_000,
      diagnostics,
    )
    expect(newEngine).not.toBe(leader)
    const procs = sleepers()
    for (let i = 1; i <= 9; i++) expect(procs.get(`${sleepMarker}${i}`), `web@${i}`).toBe(1)
  }, 60_000)
})

/** The processes listening on `ports` (ss) and the two instances' journals on every machine. */
async function portsAndJournals(ports: number[], names: string[]): Promise<string> {
  let listeners: string
  try {
    const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
    listeners = out
      .split('\n')
      .filter((line) => ports.some((p) => line.includes(`:${p} `)))
      .join('\n')
  } catch (error) {
    listeners = `ss: ${(error as Error).message}`
  }
  const machines = [
    ...cluster.names.map((n) => [n, cluster.clientUrl(n)] as const),
    ...[...clients].map(([n, c]) => [n, c.url] as const),
  ]
  // All at once: one at a time, 18 requests to hung agents (5 s each) would outlast the test's
  // own timeout, and the message would be lost with it.
  const journals = await Promise.all(
    machines.flatMap(([machine, url]) =>
      names.map(async (unit) => {
        const res = await http('GET', `${url}/fleet/v1/journal/${unit}?lines=40&machineID=${machine}`)
        const text = typeof res?.body === 'string' ? res.body : JSON.stringify(res?.body)
        return res?.status === 200 && text !== undefined && text.trim() !== ''
          ? `--- ${unit} on ${machine}\n${text}`
          : undefined
      }),
    ),
  )
  const found = journals.filter((j) => j !== undefined).join('\n')
  return `listening on ${ports.join(', ')}:\n${listeners}\n${found}`
}
