/**
 * bench/dns-qps/servers: the two DNS servers under test as child processes, behind one shape.
 *
 * - Cairn: cairn-server.ts in its own Node process (DnsServer with its defaults, one event loop).
 * - BIND: Debian's `named -g -n <threads> -c <conf>` (foreground, logs on stderr), authoritative
 *   for `cairn.` from the zone file zone.ts writes, recursion off, on 127.0.0.1 and a port found
 *   free for both UDP and TCP, in a fresh temporary directory. We run as root: named keeps root
 *   (no `-u`), which changes nothing for serving from memory.
 *
 * Both listen on random loopback ports, never 53 or 8600. A server counts as started once it
 * answers an SOA query for the zone. stop() sends SIGTERM, then SIGKILL after stopWaitMs, and
 * removes the temporary directory; it is safe to call twice.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeQuery, headerOf, udpExchange } from '../../src/dns/test-support.ts'
import { Rcode, RecordType } from '../../src/dns/wire.ts'
import { bindZoneText, type Zone } from './zone.ts'

export type SystemName = 'cairn' | 'bind'

export interface DnsUnderTest {
  readonly system: SystemName
  readonly port: number
  readonly pid: number
  stop(): Promise<void>
}

const cairnServerScript = fileURLToPath(new URL('./cairn-server.ts', import.meta.url))
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
/** How long a server may take to answer its first query (tsx start-up, zone load). */
const startWaitMs = 20_000
const startPollMs = 100
const stopWaitMs = 5_000
/** Lines of named's stderr kept to explain a failed start. */
const logLinesMax = 40
/** Tries at finding one port free for both UDP and TCP. */
const portAttemptsMax = 20

export function namedAvailable(): boolean {
  return spawnSync('named', ['-v'], { stdio: 'ignore' }).status === 0
}

export async function startCairn(): Promise<DnsUnderTest> {
  const child = spawn(process.execPath, ['--import', 'tsx', cairnServerScript], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  try {
    const [data] = (await Promise.race([
      once(child.stdout as NodeJS.ReadableStream, 'data'),
      once(child, 'exit').then(() => Promise.reject(new Error('cairn dns server exited at start'))),
      rejectAfter(startWaitMs, 'cairn dns server did not start'),
    ])) as [Buffer]
    const [word, port] = String(data).trim().split(' ')
    if (word !== 'ready') throw new Error(`cairn dns server said: ${String(data).trim()}`)
    await waitAnswering(Number(port), 'cairn')
    return { system: 'cairn', port: Number(port), pid: child.pid ?? -1, stop: () => stopChild(child) }
  } catch (error) {
    await stopChild(child)
    throw error
  }
}

export async function startBind(zone: Zone, threads: number): Promise<DnsUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-named-'))
  const port = await freeUdpTcpPort()
  const zoneFile = join(dir, `${zone.domain}.zone`)
  const confFile = join(dir, 'named.conf')
  writeFileSync(zoneFile, bindZoneText(zone))
  writeFileSync(confFile, namedConf(dir, port, zone.domain, zoneFile))
  const child = spawn('named', ['-g', '-4', '-n', String(threads), '-c', confFile], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const log: string[] = []
  child.stderr?.on('data', (chunk: Buffer) => {
    log.push(...String(chunk).trimEnd().split('\n'))
    if (log.length > logLinesMax) log.splice(0, log.length - logLinesMax)
  })
  const stop = async () => {
    await stopChild(child)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.race([
      waitAnswering(port, 'named'),
      once(child, 'exit').then(() => Promise.reject(new Error('named exited at start'))),
    ])
    return { system: 'bind', port, pid: child.pid ?? -1, stop }
  } catch (error) {
    await stop()
    throw new Error(`${(error as Error).message}; named's last log lines:\n${log.join('\n')}`)
  }
}

/**
 * Authoritative only: no recursion, no DNSSEC validation, no rndc control channel, no IPv6
 * listener, no query log. `minimal-responses no-auth` leaves the NS record out of the authority
 * section of positive answers (Cairn has no NS) but keeps the SRV targets' A records in the
 * additional section, as Cairn does. `rrset-order random` is the closest to Cairn's shuffle.
 * `max-records-per-type 0`: BIND 9.18.28 and later refuse to load an RRset of more than 100
 * records by default (CVE-2024-1737), and the big service has 300; Cairn has no such limit.
 */
export function namedConf(dir: string, port: number, domain: string, zoneFile: string): string {
  return `options {
  directory "${dir}";
  pid-file none;
  session-keyfile none;
  managed-keys-directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  dnssec-validation no;
  minimal-responses no-auth;
  rrset-order { order random; };
  max-records-per-type 0;
  querylog no;
};
controls { };
zone "${domain}" {
  type primary;
  file "${zoneFile}";
};
`
}

async function waitAnswering(port: number, what: string): Promise<void> {
  const deadline = Date.now() + startWaitMs
  const soa = encodeQuery('cairn', RecordType.SOA)
  while (Date.now() < deadline) {
    let answer: Buffer | undefined
    try {
      answer = await udpExchange(port, soa, startPollMs * 5)
    } catch {
      await new Promise((resolve) => setTimeout(resolve, startPollMs))
      continue
    }
    const header = headerOf(answer)
    // A zone that failed to load is answered SERVFAIL: fail now rather than measure that.
    if (header.rcode !== Rcode.NOERROR || !header.aa || header.ancount !== 1)
      throw new Error(`${what} answers the zone's SOA with rcode ${header.rcode}, aa ${header.aa}`)
    return
  }
  throw new Error(`${what} did not answer on 127.0.0.1:${port} within ${startWaitMs} ms`)
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), stopWaitMs)
  await exited
  clearTimeout(timer)
}

function rejectAfter(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref())
}

/** A loopback port that was free for TCP and UDP a moment ago (named binds both). */
async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < portAttemptsMax; attempt++) {
    const tcp = createServer()
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(0, '127.0.0.1', () => resolve())
    })
    const port = (tcp.address() as { port: number }).port
    const udp = createSocket('udp4')
    const bound = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false))
      udp.bind(port, '127.0.0.1', () => resolve(true))
    })
    await new Promise<void>((resolve) => tcp.close(() => resolve()))
    if (bound) {
      await new Promise<void>((resolve) => udp.close(() => resolve()))
      return port
    }
    udp.close()
  }
  throw new Error(`no loopback port free for both UDP and TCP in ${portAttemptsMax} tries`)
}
