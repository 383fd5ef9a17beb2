/**
 * bench/dns-qps: DNS queries per second, Cairn's DNS server against BIND serving the same zone.
 *
 * Starts Cairn's DnsServer in a child process (bench/dns-qps/cairn-server.ts) and, when Debian's
 * bind9 is installed, `named` authoritative for an equivalent `cairn.` zone (servers.ts, zone.ts),
 * both on random loopback ports. Asks every distinct question of the mixes once of each server and
 * fails if any answer is wrong (check.ts). Then, row by row (one query mix per row, mixes.ts), runs
 * the same closed-loop load against one server and then the other: dnsperf when installed, else
 * (or with --generator node) a Node load generator (node-load.ts). Stops every child it started,
 * also on errors and on Ctrl-C. The ratio column is Cairn / BIND. docs/bench.md explains the rows.
 *
 * Fairness: Cairn answers on one event loop, so BIND runs with one worker thread (`named -n 1`,
 * --named-threads to change it), and dnsperf with one thread; on a 2-core machine that is one core
 * for the server under load and one for the load generator.
 *
 *   npm run bench:dns-qps
 *   npm run bench:dns-qps -- --seconds 5 --clients 10 --outstanding 100
 *   npm run bench:dns-qps -- --generator node --rows a,big-tcp --systems cairn
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadAverage, machineLine } from './bench-env.ts'
import { type CheckSummary, checkServer } from './dns-qps/check.ts'
import { cpuSeconds } from './dns-qps/cpu.ts'
import {
  dnsperfRunning,
  dnsperfVersion,
  type LoadOptions,
  type LoadResult,
  runDnsperf,
} from './dns-qps/dnsperf.ts'
import { type Mix, mixes } from './dns-qps/mixes.ts'
import { runNodeLoad } from './dns-qps/node-load.ts'
import {
  type DnsUnderTest,
  namedAvailable,
  type SystemName,
  startBind,
  startCairn,
} from './dns-qps/servers.ts'
import { benchZone, type Zone } from './dns-qps/zone.ts'

/** A bad option or environment: printed as one line, exit code 2. */
class UsageError extends Error {}

type Generator = 'dnsperf' | 'node'

interface Options extends LoadOptions {
  generator: Generator
  namedThreads: number
  systems: SystemName[]
  mixes: Mix[]
}

/** Lost queries (no answer within the generator's timeout) above this share fail the row. */
const lostShareMax = 0.01
/** How far the share of NXDOMAIN answers may stray from the mix's share of unknown names. */
const nxdomainShareSlack = 0.02

/**
 * dnsperf 2.10 (Debian 12) reads TCP into a 16 KiB buffer, length prefix included, and never
 * completes a longer answer. A TCP row with a longer answer from either server runs with the Node
 * generator for both servers, and says so.
 */
const dnsperfTcpAnswerBytesMax = 16 * 1024 - 2

const labelWidth = 26
const cellWidth = 49

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      clients: { type: 'string', default: '10' },
      outstanding: { type: 'string', default: '100' },
      generator: { type: 'string' },
      'named-threads': { type: 'string', default: '1' },
      systems: { type: 'string', default: 'cairn,bind' },
      rows: { type: 'string', default: mixes.map((m) => m.key).join(',') },
    },
  })
  const list = (s: string) => s.split(',').filter((x) => x !== '')
  const rows = list(values.rows)
  const unknown = rows.filter((r) => !mixes.some((m) => m.key === r))
  if (unknown.length > 0)
    throw new UsageError(`unknown --rows ${unknown.join(',')}: use ${mixes.map((m) => m.key).join(',')}`)
  const systems = list(values.systems)
  const isSystem = (s: string): s is SystemName => s === 'cairn' || s === 'bind'
  if (systems.length === 0 || !systems.every(isSystem))
    throw new UsageError('--systems is cairn, bind or both')
  const hasDnsperf = dnsperfVersion() !== undefined
  const generator = values.generator ?? (hasDnsperf ? 'dnsperf' : 'node')
  if (generator !== 'dnsperf' && generator !== 'node') throw new UsageError('--generator is dnsperf or node')
  if (generator === 'dnsperf' && !hasDnsperf)
    throw new UsageError('dnsperf is not installed (apt-get install dnsperf), use --generator node')
  const options: Options = {
    seconds: Number(values.seconds),
    clients: Number(values.clients),
    outstanding: Number(values.outstanding),
    generator,
    namedThreads: Number(values['named-threads']),
    systems: (['cairn', 'bind'] as const).filter((s) => systems.includes(s)),
    mixes: mixes.filter((m) => rows.includes(m.key)),
  }
  for (const n of [options.seconds, options.clients, options.outstanding, options.namedThreads])
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`not a positive number: ${n}`)
  if (options.outstanding < options.clients)
    throw new UsageError('--outstanding must be at least --clients (each client keeps one query in flight)')
  return options
}

/** Servers started and not yet stopped, and temporary directories, for the signal handler. */
const running = new Set<DnsUnderTest>()
const tempDirs = new Set<string>()

async function startServers(o: Options, zone: Zone): Promise<DnsUnderTest[]> {
  const servers: DnsUnderTest[] = []
  for (const system of o.systems) {
    const server = system === 'cairn' ? await startCairn() : await startBind(zone, o.namedThreads)
    running.add(server)
    servers.push(server)
  }
  return servers
}

async function stopServers(servers: DnsUnderTest[]): Promise<void> {
  await Promise.allSettled(servers.map((s) => s.stop()))
  for (const server of servers) running.delete(server)
}

/** Throws when the run's answers do not look like the mix's: wrong rcodes, or lost queries. */
function assertPlausible(system: string, mix: Mix, r: LoadResult): void {
  const where = `${system}, row "${mix.label}"`
  if (r.completed === 0) throw new Error(`${where}: no answers at all`)
  const others = [...r.rcodes].filter(([name]) => name !== 'NOERROR' && name !== 'NXDOMAIN')
  if (others.length > 0) throw new Error(`${where}: unexpected rcodes ${others.map((x) => x.join(' '))}`)
  const nxShare = (r.rcodes.get('NXDOMAIN') ?? 0) / r.completed
  if (Math.abs(nxShare - mix.nxdomainShare) > nxdomainShareSlack)
    throw new Error(`${where}: ${(nxShare * 100).toFixed(1)}% NXDOMAIN, expected ${mix.nxdomainShare * 100}%`)
  if (r.lost > r.sent * lostShareMax) throw new Error(`${where}: ${r.lost} of ${r.sent} queries lost`)
}

function line(label: string, cells: (string | undefined)[], ratio: number | undefined): void {
  const shown = cells.map((c) => (c ?? '-').padStart(cellWidth)).join(' |')
  const r = ratio === undefined || !Number.isFinite(ratio) ? '' : ratio.toFixed(2)
  console.log(`${label.padEnd(labelWidth)}${shown} | ${r}`)
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-').padStart(7)

/** A load result and the server's CPU seconds (all threads) over the wall time of the run. */
interface Cell extends LoadResult {
  serverCpu: number | undefined
  wallSeconds: number
}

function cell(r: Cell): string {
  const qps = Math.round(r.queriesPerSecond).toString().padStart(8)
  const bytes = Math.round(r.responseBytesMean).toString().padStart(6)
  const busy = r.serverCpu === undefined ? '-' : `${Math.round((r.serverCpu / r.wallSeconds) * 100)}%`
  const perAnswer = r.serverCpu === undefined ? '-' : ((r.serverCpu / r.completed) * 1e6).toFixed(1)
  return `${qps} ${ms(r.latency.first)} ${ms(r.latency.second)} ${bytes} ${busy.padStart(5)} ${perAnswer.padStart(6)}`
}

async function measure(
  servers: DnsUnderTest[],
  checks: CheckSummary[],
  o: Options,
  dir: string,
): Promise<void> {
  const tcpTooLong = checks.some((c) => c.tcpAnswerBytesMax > dnsperfTcpAnswerBytesMax)
  const generatorOf = (mix: Mix): Generator =>
    o.generator === 'dnsperf' && mix.transport === 'tcp' && tcpTooLong ? 'node' : o.generator
  let footnote = false
  const latency = o.generator === 'dnsperf' ? 'avg ms   sd ms' : 'p50 ms  p99 ms'
  console.log('')
  console.log(
    `closed loop, ${o.seconds} s per cell, ${o.clients} clients, ${o.outstanding} queries in flight, ` +
      `generator ${o.generator}; bytes = mean answer size; cpu = server CPU (all threads) over the ` +
      'run, and per answer in µs',
  )
  const titles = servers
    .map((s) => `${s.system} qps  ${latency}  bytes  cpu  µs/q`.padStart(cellWidth))
    .join(' |')
  console.log(`${''.padEnd(labelWidth)}${titles} | qps ratio`)
  for (const mix of o.mixes) {
    const rows: Cell[] = []
    // One server after the other, row by row, so that machine noise falls on both.
    const generator = generatorOf(mix)
    for (const server of servers) {
      const cpuBefore = cpuSeconds(server.pid)
      const startMs = performance.now()
      const r =
        generator === 'dnsperf'
          ? await runDnsperf(server.port, mix, o, dir)
          : await runNodeLoad(server.port, mix, o)
      const cpuAfter = cpuSeconds(server.pid)
      assertPlausible(server.system, mix, r)
      const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore
      rows.push({ ...r, serverCpu: cpu, wallSeconds: (performance.now() - startMs) / 1000 })
    }
    const ratio = rows.length === 2 ? rows[0]!.queriesPerSecond / rows[1]!.queriesPerSecond : undefined
    const overridden = generator !== o.generator
    footnote ||= overridden
    line(`${mix.label}${overridden ? ' *' : ''}`, rows.map(cell), ratio)
  }
  if (footnote)
    console.log(
      `* Node generator (p50/p99 ms): an answer over TCP is longer than the ${dnsperfTcpAnswerBytesMax} ` +
        'bytes dnsperf 2.10 can read',
    )
}

function namedVersion(): string {
  const out = spawnSync('named', ['-v'], { encoding: 'utf8' }).stdout ?? ''
  return /BIND (\S+)/.exec(out)?.[1] ?? 'not installed'
}

function machine(): string {
  return machineLine([`BIND ${namedVersion()}`, `dnsperf ${dnsperfVersion() ?? 'not installed'}`])
}

async function main(): Promise<void> {
  const o = parseOptions()
  if (o.systems.includes('bind') && !namedAvailable()) {
    console.log('bind9 is not installed: Cairn only (apt-get install bind9)')
    o.systems = o.systems.filter((s) => s !== 'bind')
    if (o.systems.length === 0) throw new UsageError('no system left to measure')
  }
  const zone = benchZone()
  console.log(`dns-qps bench: ${machine()}`)
  console.log(
    `servers: cairn = one Node process (DnsServer, one event loop); bind = named -n ${o.namedThreads} ` +
      `(${o.namedThreads} worker thread${o.namedThreads === 1 ? '' : 's'}), authoritative, recursion off; ` +
      `load generator: ${o.generator === 'dnsperf' ? 'dnsperf -T 1' : 'this Node process'}`,
  )
  console.log(`load average at start: ${loadAverage()}`)
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-dns-qps-'))
  tempDirs.add(dir)
  try {
    const servers = await startServers(o, zone)
    const checks: CheckSummary[] = []
    for (const server of servers) {
      const s = await checkServer(server.system, server.port, zone, o.mixes)
      checks.push(s)
      const big = o.mixes.some((m) => m.key === 'big-tcp')
        ? `; big SRV over TCP: 300 SRV + ${s.bigTcpAdditionals} additional records`
        : ''
      console.log(
        `${server.system} on 127.0.0.1:${server.port}: ${s.questions} distinct questions answered right ` +
          `(${s.truncated} truncated with TC over UDP)${big}`,
      )
    }
    await measure(servers, checks, o, dir)
  } finally {
    await stopServers([...running])
    rmSync(dir, { recursive: true, force: true })
    tempDirs.delete(dir)
  }
  console.log('')
  console.log(`load average at the end: ${loadAverage()}`)
}

async function stopRunning(signal: NodeJS.Signals): Promise<void> {
  for (const child of dnsperfRunning) child.kill('SIGKILL')
  await stopServers([...running])
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  process.exit(signal === 'SIGINT' ? 130 : 143)
}
process.once('SIGINT', stopRunning)
process.once('SIGTERM', stopRunning)

try {
  await main()
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(`dns-qps bench: ${error.message}`)
  process.exitCode = 2
}
