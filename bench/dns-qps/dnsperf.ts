/**
 * bench/dns-qps/dnsperf: one closed-loop run of DNS-OARC's dnsperf against one server, parsed.
 *
 *   dnsperf -s 127.0.0.1 -p <port> -d <file> -m udp|tcp -l <seconds> -c <clients> -q <outstanding> -T 1
 *
 * `-c` sockets (UDP) or connections (TCP), at most `-q` queries in flight in all, one thread, no
 * EDNS0, no rate limit (-Q): it sends as fast as answers come back. dnsperf reports the mean and
 * standard deviation of latency, not percentiles.
 */
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { dnsperfFileText, type Mix } from './mixes.ts'

export interface LoadOptions {
  seconds: number
  clients: number
  outstanding: number
}

/** One cell of the table, whichever generator measured it. */
export interface LoadResult {
  queriesPerSecond: number
  sent: number
  completed: number
  lost: number
  /** Rcode name → answers with it. */
  rcodes: Map<string, number>
  responseBytesMean: number
  /** Either p50/p99 (Node generator) or mean/stddev (dnsperf), in ms. */
  latency: { kind: 'p50/p99' | 'avg/sd'; first: number; second: number }
}

export function dnsperfVersion(): string | undefined {
  const run = spawnSync('dnsperf', ['-h'], { encoding: 'utf8' })
  if (run.error !== undefined) return undefined
  return /Version (\S+)/.exec(`${run.stdout}${run.stderr}`)?.[1] ?? 'unknown version'
}

/** Children started and not yet exited, so Ctrl-C can stop them. */
export const dnsperfRunning = new Set<ReturnType<typeof spawn>>()

export async function runDnsperf(port: number, mix: Mix, o: LoadOptions, dir: string): Promise<LoadResult> {
  const file = join(dir, `${mix.key}.txt`)
  writeFileSync(file, dnsperfFileText(mix))
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-m', mix.transport]
  args.push('-l', String(o.seconds), '-c', String(o.clients), '-q', String(o.outstanding), '-T', '1')
  const child = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  dnsperfRunning.add(child)
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += String(chunk)))
  child.stderr.on('data', (chunk: Buffer) => (out += String(chunk)))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (c) => resolve(c))
  }).finally(() => dnsperfRunning.delete(child))
  if (code !== 0) throw new Error(`dnsperf ${args.join(' ')} exited with ${code}:\n${out}`)
  return parseDnsperf(out)
}

/** Reads dnsperf 2.x's "Statistics:" block; throws on a line it needs and cannot find. */
export function parseDnsperf(out: string): LoadResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const match = re.exec(out)
    if (match === null) throw new Error(`dnsperf output has no ${what}:\n${out}`)
    return match
  }
  const num = (re: RegExp, what: string) => Number(need(re, what)[1])
  const rcodes = new Map<string, number>()
  const codes = need(/Response codes:\s+(.*)/, 'response codes')[1] ?? ''
  for (const [, name, count] of codes.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes.set(name ?? '?', Number(count))
  return {
    queriesPerSecond: num(/Queries per second:\s+([\d.]+)/, 'queries per second'),
    sent: num(/Queries sent:\s+(\d+)/, 'queries sent'),
    completed: num(/Queries completed:\s+(\d+)/, 'queries completed'),
    lost: num(/Queries lost:\s+(\d+)/, 'queries lost'),
    rcodes,
    responseBytesMean: num(/Average packet size:.*response (\d+)/, 'packet size'),
    latency: {
      kind: 'avg/sd',
      first: num(/Average Latency \(s\):\s+([\d.]+)/, 'average latency') * 1000,
      second: num(/Latency StdDev \(s\):\s+([\d.]+)/, 'latency stddev') * 1000,
    },
  }
}
