/**
 * Real `cairn agent --server` processes for multi-process tests: each member on random free
 * loopback ports with its own data directory under one temp dir, its stdout and stderr kept for
 * the failure message, helpers to kill (any signal), restart with the same flags, and poll over
 * HTTP with deadlines (never fixed sleeps). destroy() SIGKILLs whatever is still running and
 * removes the temp dir; every test calls it in afterEach.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePorts } from './ports.ts'

export const cairnBin = fileURLToPath(new URL('../../bin/cairn', import.meta.url))

/** Keep the last lines of each process's output for failure messages. */
const outputLinesMax = 200
/** One HTTP attempt; polls retry until their own deadline. */
const httpTimeoutMs = 5_000

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface AgentProcess {
  name: string
  clientUrl: string
  child: ChildProcess
  output: string[]
  exited: Promise<Exit>
}

export interface ClusterTiming {
  heartbeatMs: number
  electionMs: number
}

export class AgentCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'cairn-agent-test-'))
  readonly names: string[]
  readonly timing: ClusterTiming
  readonly #ports = new Map<string, { client: number; peer: number; dns: number }>()
  readonly running = new Map<string, AgentProcess>()
  /** Flags added to every member's command line (e.g. a short --machine-ttl). */
  extraArgs: string[] = []
  /** Flags added to one member's command line (e.g. its --metadata). */
  readonly memberArgs = new Map<string, string[]>()

  private constructor(names: string[], ports: number[], timing: ClusterTiming) {
    this.names = names
    this.timing = timing
    for (const [i, n] of names.entries()) {
      this.#ports.set(n, {
        client: ports[3 * i] as number,
        peer: ports[3 * i + 1] as number,
        dns: ports[3 * i + 2] as number,
      })
    }
  }

  static async create(size: number, timing: ClusterTiming = { heartbeatMs: 100, electionMs: 1_000 }) {
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`)
    return new AgentCluster(names, await freePorts(3 * size), timing)
  }

  clientUrl(name: string): string {
    return `http://127.0.0.1:${this.#ports.get(name)?.client}`
  }

  args(name: string): string[] {
    const ports = this.#ports.get(name)!
    const initialCluster = this.names
      .map((n) => `${n}=http://127.0.0.1:${this.#ports.get(n)!.peer}`)
      .join(',')
    return [
      'agent',
      '--server',
      '--name',
      name,
      '--data-dir',
      join(this.dir, name),
      '--client-addr',
      `127.0.0.1:${ports.client}`,
      '--peer-addr',
      `127.0.0.1:${ports.peer}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-token',
      'agent-test',
      '--heartbeat-interval',
      String(this.timing.heartbeatMs),
      '--election-timeout',
      String(this.timing.electionMs),
      '--dns-addr',
      `127.0.0.1:${ports.dns}`,
      ...this.extraArgs,
      ...(this.memberArgs.get(name) ?? []),
    ]
  }

  /** The member's DNS port (UDP and TCP). */
  dnsPort(name: string): number {
    return this.#ports.get(name)!.dns
  }

  start(name: string): AgentProcess {
    if (this.running.has(name)) throw new Error(`${name} is already running`)
    const proc = spawnCairn(this.args(name), name, this.clientUrl(name))
    this.running.set(name, proc)
    void proc.exited.then(() => {
      if (this.running.get(name) === proc) this.running.delete(name)
    })
    return proc
  }

  startAll(): AgentProcess[] {
    return this.names.map((n) => this.start(n))
  }

  async kill(name: string, signal: NodeJS.Signals): Promise<Exit> {
    const proc = this.running.get(name)
    if (proc === undefined) throw new Error(`${name} is not running`)
    proc.child.kill(signal)
    return await proc.exited
  }

  /** The leader's name, once every running member agrees on it. */
  async leader(timeoutMs = 30_000): Promise<string> {
    return await pollUntil(
      async () => {
        const statuses = await Promise.all([...this.running.keys()].map((n) => status(this.clientUrl(n))))
        const leaders = new Set(statuses.map((s) => s?.leader ?? null))
        if (leaders.size !== 1) return undefined
        const leaderStatus = statuses.find((s) => s !== undefined && s.role === 'leader')
        return leaderStatus?.name
      },
      'a leader every running member agrees on',
      timeoutMs,
      () => this.outputs(),
    )
  }

  outputs(): string {
    return [...this.running.values()].map((p) => `--- ${p.name}\n${p.output.join('')}`).join('\n')
  }

  async destroy(): Promise<void> {
    const procs = [...this.running.values()]
    for (const p of procs) p.child.kill('SIGKILL')
    await Promise.all(procs.map((p) => p.exited))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export function spawnCairn(args: string[], name = 'cairn', clientUrl = '', bin = cairnBin): AgentProcess {
  // A server agent serves DNS on 8600 unless told otherwise: tests never take the fixed port.
  const dns = args[0] === 'agent' && args.includes('--server') && !args.includes('--dns-addr')
  const all = dns ? [args[0] as string, '--dns-addr', '127.0.0.1:0', ...args.slice(1)] : args
  const child = spawn(process.execPath, [bin, ...all], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString('utf8'))
    if (output.length > outputLinesMax) output.shift()
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return { name, clientUrl, child, output, exited }
}

export interface MemberStatus {
  name: string
  /** Hex, as etcd shows ids. */
  id: string
  role: string
  leader: string | null
  term: number
  applied: number
}

export async function status(clientUrl: string): Promise<MemberStatus | undefined> {
  const res = await http('GET', `${clientUrl}/_cairn/status`)
  return res?.status === 200 ? (res.body as MemberStatus) : undefined
}

/** One HTTP call; undefined when the connection failed or timed out (the member may be down). */
export async function http(
  method: 'GET' | 'PUT' | 'POST',
  url: string,
  body?: string,
): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const res = await request(url, {
      method,
      body,
      headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' },
      headersTimeout: httpTimeoutMs,
      bodyTimeout: httpTimeoutMs,
    })
    const text = await res.body.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: res.statusCode, body: parsed }
  } catch {
    return undefined
  }
}

/** Sets a key with the etcd v2 API; true only when the write was acknowledged (200 or 201). */
export async function put(clientUrl: string, key: string, value: string): Promise<boolean> {
  const res = await http('PUT', `${clientUrl}/v2/keys/${key}`, new URLSearchParams({ value }).toString())
  return res?.status === 200 || res?.status === 201
}

/** Linearizable read (etcd v2 `quorum=true`); undefined when absent or unreachable. */
export async function get(clientUrl: string, key: string): Promise<string | undefined> {
  const res = await http('GET', `${clientUrl}/v2/keys/${key}?quorum=true`)
  return res?.status === 200 ? (res.body as { node: { value: string } }).node.value : undefined
}

export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs: number,
  diagnostics: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${diagnostics()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
