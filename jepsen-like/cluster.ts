/**
 * A cluster of real `cairn agent --server` processes on loopback, every peer link through a
 * FaultProxy owned by the harness.
 *
 * Layout per member: a client port (HTTP), a peer port the member listens on (--peer-addr), and a
 * proxy port the member is known by (its URL in --initial-cluster). Each member dials the others
 * at their proxy ports, so the proxy of member Y carries exactly the links X→Y (proxy.ts). Member
 * ids are memberId(token, proxy URL), the same the agents compute, which is how a proxy names a
 * hello's `from`. Data directories live under one temp dir (removed by stop()), logs are appended
 * to `<logDir>/<name>.log` across restarts.
 *
 * Member states: running → killed (SIGKILL) → running (restart, same flags); running ↔ paused
 * (SIGSTOP / SIGCONT); running → removed (DELETE /v2/members until the leader no longer lists it,
 * then SIGKILL) → running (POST /v2/members with the same peer URL, fresh data dir,
 * `--initial-cluster-state existing --cluster-id`); crashed: exited without the harness asking (a server bug, kept in
 * `unexpectedExits`); healAll() restarts it like a killed one.
 *
 * Invariants: at most one process per member; a member's state matches its process (running and
 * paused have one, the others none); a member's data directory is wiped only when the leader lists
 * it as absent or a learner, never while it is a voter; stop() leaves no process running, and
 * cluster-processes.ts kills any left (and deletes the data) on the harness's exit.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterId as clusterIdOf, memberId } from '../src/agent/cluster-config.ts'
import { Prng } from '../src/raft/core/prng.ts'
import { fetchStatus, type HttpReply, httpCall, type MemberStatus } from './cluster-http.ts'
import {
  type Exit,
  forgetOnExit,
  type MemberProcess,
  removeOnExit,
  signal,
  spawnMember,
} from './cluster-processes.ts'
import { FaultProxy, type LinkFaults } from './proxy.ts'

export type MemberState = 'running' | 'paused' | 'killed' | 'removed' | 'crashed'

export interface ClusterOptions {
  nodes: number
  seed: number
  /** Where `<name>.log` files go. */
  logDir: string
  heartbeatMs: number
  electionMs: number
  snapshotCount: number
  logLevel: string
  /** Passed to every agent as --planted-bug. */
  plantedBug?: string | undefined
  /** Keep the data directories after stop() (for debugging a run). */
  keepData?: boolean
  /** Progress of membership changes and heals (the runner's stderr). */
  log?: (line: string) => void
}

export interface UnexpectedExit {
  member: string
  pid: number
  code: number | null
  signal: string | null
  /** ms since the cluster was created. */
  at: number
}

interface Member {
  name: string
  id: number
  clientPort: number
  peerPort: number
  proxy: FaultProxy
  dataDir: string
  logPath: string
  state: MemberState
  /** Started with --initial-cluster-state existing (re-added after a removal). */
  joinsExisting: boolean
  process: MemberProcess | undefined
}

/** Attempts of a membership change before giving up (each attempt waits for its own reply). */
const membershipChangeMs = 20_000
const pollIntervalMs = 100

export class Cluster {
  readonly names: string[]
  readonly token: string
  readonly clusterId: string
  readonly dataRoot: string
  readonly unexpectedExits: UnexpectedExit[] = []
  /** A member's proxy that could not listen again on its port (its member is then unreachable). */
  readonly proxyErrors: string[] = []
  readonly #options: ClusterOptions
  readonly #members = new Map<string, Member>()
  readonly #nameById = new Map<number, string>()
  readonly #initialCluster: string
  readonly #createdAt = performance.now()
  #stopped = false

  private constructor(options: ClusterOptions, members: Member[]) {
    this.#options = options
    this.names = members.map((m) => m.name)
    this.token = `jepsen-${options.seed}`
    this.dataRoot = members[0] === undefined ? '' : join(members[0].dataDir, '..')
    for (const m of members) {
      this.#members.set(m.name, m)
      this.#nameById.set(m.id, m.name)
    }
    const initial = members.map((m) => ({ name: m.name, peerUrl: proxyUrl(m) }))
    this.#initialCluster = initial.map((m) => `${m.name}=${m.peerUrl}`).join(',')
    this.clusterId = clusterIdOf(this.token, initial)
  }

  /** Binds the proxies and ports, starts every member; does not wait for a leader. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    mkdirSync(options.logDir, { recursive: true })
    const dataRoot = mkdtempSync(join(tmpdir(), 'cairn-jepsen-'))
    if (options.keepData !== true) removeOnExit(dataRoot)
    const token = `jepsen-${options.seed}`
    const prng = new Prng(options.seed ^ 0x5eed)
    const members: Member[] = []
    const nameById = new Map<number, string>()
    try {
      for (let i = 0; i < options.nodes; i++) {
        const name = `n${i + 1}`
        const [clientPort, peerPort] = await freePorts(2)
        const proxyRandom = prng.fork()
        const proxy = new FaultProxy({
          member: name,
          listen: { host: '127.0.0.1', port: 0 },
          target: { host: '127.0.0.1', port: peerPort as number },
          nameOf: (id) => nameById.get(id),
          random: () => proxyRandom.float(),
        })
        await proxy.start()
        const member: Member = {
          name,
          id: 0,
          clientPort: clientPort as number,
          peerPort: peerPort as number,
          proxy,
          dataDir: join(dataRoot, name),
          logPath: join(options.logDir, `${name}.log`),
          state: 'killed',
          joinsExisting: false,
          process: undefined,
        }
        member.id = memberId(token, proxyUrl(member))
        nameById.set(member.id, name)
        members.push(member)
      }
    } catch (error) {
      await Promise.all(members.map((m) => m.proxy.stop()))
      rmSync(dataRoot, { recursive: true, force: true })
      throw error
    }
    const cluster = new Cluster(options, members)
    for (const name of cluster.names) cluster.start(name)
    return cluster
  }

  clientUrl(name: string): string {
    return `http://127.0.0.1:${this.#member(name).clientPort}`
  }

  peerUrl(name: string): string {
    return proxyUrl(this.#member(name))
  }

  idHex(name: string): string {
    return this.#member(name).id.toString(16)
  }

  nameOfHex(hex: string | null | undefined): string | undefined {
    return hex === null || hex === undefined ? undefined : this.#nameById.get(Number.parseInt(hex, 16))
  }

  state(name: string): MemberState {
    return this.#member(name).state
  }

  /** Names of members in one of the states. */
  membersIn(...states: MemberState[]): string[] {
    return this.names.filter((n) => states.includes(this.state(n)))
  }

  describe(): Record<string, unknown>[] {
    return [...this.#members.values()].map((m) => ({
      name: m.name,
      id: m.id.toString(16),
      clientUrl: this.clientUrl(m.name),
      peerAddr: `127.0.0.1:${m.peerPort}`,
      advertisedPeerUrl: proxyUrl(m),
      log: m.logPath,
    }))
  }

  proxyStats(): Record<string, unknown> {
    return Object.fromEntries([...this.#members.values()].map((m) => [m.name, m.proxy.stats()]))
  }

  args(name: string): string[] {
    const m = this.#member(name)
    const o = this.#options
    return [
      'agent',
      '--server',
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--client-addr',
      `127.0.0.1:${m.clientPort}`,
      '--peer-addr',
      `127.0.0.1:${m.peerPort}`,
      '--initial-cluster',
      this.#initialCluster,
      '--initial-cluster-token',
      this.token,
      '--heartbeat-interval',
      String(o.heartbeatMs),
      '--election-timeout',
      String(o.electionMs),
      '--snapshot-count',
      String(o.snapshotCount),
      '--log-level',
      o.logLevel,
      '--dns-addr',
      '127.0.0.1:0',
      ...(m.joinsExisting ? ['--initial-cluster-state', 'existing', '--cluster-id', this.clusterId] : []),
      ...(o.plantedBug === undefined ? [] : ['--planted-bug', o.plantedBug]),
    ]
  }

  /** Starts a member that has no process (killed, crashed, or being re-added). */
  start(name: string): void {
    const m = this.#member(name)
    if (this.#stopped) throw new Error('the cluster is stopped')
    if (m.process !== undefined) throw new Error(`${name} already has a process`)
    void m.proxy.setListening(true).catch((error: unknown) => this.proxyErrors.push(`${name}: ${error}`))
    const proc = spawnMember(this.args(name), m.logPath, `start ${name}`)
    m.process = proc
    m.state = 'running'
    void proc.exited.then((exit) => this.#onExit(m, proc, exit))
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(name: string): Promise<void> {
    const m = this.#member(name)
    const proc = m.process
    if (proc === undefined) return
    proc.expectExit = true
    signal(proc, 'SIGKILL')
    await proc.exited
    m.state = 'killed'
    await m.proxy.setListening(false)
  }

  pause(name: string): void {
    const m = this.#member(name)
    if (m.state !== 'running' || m.process === undefined) return
    if (signal(m.process, 'SIGSTOP')) m.state = 'paused'
  }

  resume(name: string): void {
    const m = this.#member(name)
    if (m.state !== 'paused' || m.process === undefined) return
    signal(m.process, 'SIGCONT')
    m.state = 'running'
  }

  /** Changes some faults of the directed link from→to (at to's proxy). */
  setLink(from: string, to: string, faults: Partial<LinkFaults>): void {
    if (from === to) return
    this.#member(to).proxy.setFaults(from, faults)
  }

  healLinks(): void {
    for (const m of this.#members.values()) m.proxy.healAll()
  }

  async status(name: string, timeoutMs = 1_000): Promise<MemberStatus | undefined> {
    const m = this.#member(name)
    if (m.state !== 'running') return undefined
    return await fetchStatus(this.clientUrl(name), timeoutMs)
  }

  /** One probe: the running member that says it leads with the highest term, if any. */
  async leader(): Promise<string | undefined> {
    const running = this.membersIn('running')
    const statuses = await Promise.all(running.map((n) => this.status(n)))
    let best: MemberStatus | undefined
    for (const s of statuses) {
      if (s?.role === 'leader' && (best === undefined || s.term > best.term)) best = s
    }
    return best?.name
  }

  /**
   * Polls until every running member names the same leader; undefined past the deadline.
   * `failOnExit`: throw as soon as a member has exited by itself (a start that cannot succeed).
   */
  async waitForLeader(timeoutMs: number, failOnExit = false): Promise<string | undefined> {
    return await pollFor(timeoutMs, async () => {
      const exit = this.unexpectedExits[0]
      if (failOnExit && exit !== undefined) {
        throw new Error(
          `${exit.member} exited by itself (code ${exit.code}, signal ${exit.signal}); see ${this.#member(exit.member).logPath}`,
        )
      }
      const running = this.membersIn('running')
      const statuses = await Promise.all(running.map((n) => this.status(n)))
      const leaders = new Set(statuses.map((s) => s?.leader ?? null))
      if (leaders.size !== 1 || statuses.some((s) => s === undefined)) return undefined
      return this.nameOfHex(statuses[0]?.leader)
    })
  }

  /**
   * Polls until the whole cluster is settled: every member runs, all name one leader, every member
   * is a voter in the leader's view, and all have applied the same index. false past the deadline.
   */
  async waitQuiet(timeoutMs: number): Promise<boolean> {
    const settled = await pollFor(timeoutMs, async () => {
      if (this.membersIn('running').length !== this.names.length) return undefined
      const statuses = await Promise.all(this.names.map((n) => this.status(n)))
      if (statuses.some((s) => s === undefined)) return undefined
      const all = statuses as MemberStatus[]
      const leader = all.find((s) => s.role === 'leader')
      if (leader === undefined || all.some((s) => s.leader !== leader.id)) return undefined
      if (leader.learners.length > 0 || leader.voters.length !== this.names.length) return undefined
      return all.every((s) => s.applied === leader.applied) ? true : undefined
    })
    return settled === true
  }

  /**
   * Removes a running member, then SIGKILLs it. The removal counts as done only when the leader
   * (the member with the highest term that says it leads) no longer lists it: a DELETE's 404 can
   * come from a member whose applied view is behind (one just restarted), so answers are not
   * trusted. DELETE goes to that leader, retried until the deadline. false if never confirmed.
   */
  async removeMember(name: string): Promise<boolean> {
    const m = this.#member(name)
    if (m.state !== 'running') return false
    const hex = this.idHex(name)
    const done = await pollFor(membershipChangeMs, async () => {
      const view = await this.#leaderView()
      if (view === undefined) return undefined
      if (!view.voters.has(hex) && !view.learners.has(hex)) return true
      const reply = await httpCall('DELETE', `${this.clientUrl(view.leader)}/v2/members/${hex}`, {
        timeoutMs: 6_000,
      })
      this.#log(`remove ${name}: DELETE via ${view.leader}: ${describeReply(reply)}`)
      return undefined
    })
    if (done !== true) return false
    await this.kill(name)
    m.state = 'removed'
    return true
  }

  /**
   * Adds a removed member back under its old peer URL (so its old id) and starts it. In the
   * leader's view: absent → POST /v2/members to the leader until it answers 201 or the member
   * shows as a learner (an earlier POST that timed out committed), then a fresh data directory
   * and `--initial-cluster-state existing`; still a voter → the removal never happened after all,
   * so it restarts with its data (wiping a voter's data would break Raft's assumptions, not the
   * server). false if neither happens before the deadline.
   */
  async addMember(name: string): Promise<boolean> {
    const m = this.#member(name)
    if (m.state !== 'removed') return false
    const hex = this.idHex(name)
    const outcome = await pollFor(membershipChangeMs, async (): Promise<'added' | 'voter' | undefined> => {
      const view = await this.#leaderView()
      if (view === undefined) return undefined
      if (view.voters.has(hex)) return 'voter'
      if (view.learners.has(hex)) return 'added'
      const reply = await httpCall('POST', `${this.clientUrl(view.leader)}/v2/members`, {
        json: { peerURLs: [this.peerUrl(name)] },
        timeoutMs: 6_000,
      })
      this.#log(`re-add ${name}: POST via ${view.leader}: ${describeReply(reply)}`)
      return reply?.status === 201 ? 'added' : undefined
    })
    if (outcome === undefined) {
      const view = await this.#leaderView()
      this.#log(`re-add ${name}: gave up; leader view ${JSON.stringify(view ?? null, setsAsArrays)}`)
      return false
    }
    if (outcome === 'added') {
      rmSync(m.dataDir, { recursive: true, force: true })
      m.joinsExisting = true
    }
    this.start(name)
    return true
  }

  /**
   * Undoes every fault: links healed, paused members resumed, killed and crashed ones restarted,
   * removed ones added back, and a member the leader no longer lists (a removal that committed
   * after the harness gave up on it) removed and added back too. false when something could not
   * be undone before the deadlines.
   */
  async healAll(): Promise<boolean> {
    this.healLinks()
    for (const name of this.membersIn('paused')) this.resume(name)
    for (const name of this.membersIn('killed', 'crashed')) this.start(name)
    let ok = true
    for (const name of this.membersIn('removed')) ok = (await this.addMember(name)) && ok
    // A member whose removal committed after the harness gave up on it runs but hears no leader,
    // so wait for a leader, not for every running member to agree on one.
    if ((await pollFor(30_000, () => this.leader())) === undefined) return false
    for (const name of await this.#unlisted()) ok = (await this.readdIfUnlisted(name)) !== false && ok
    return ok
  }

  /**
   * For a running member the leader does not list (a removal that committed after the harness
   * gave up on it): SIGKILL it and add it back. undefined when there is nothing to do (it is
   * listed, or no leader is known); otherwise whether the re-add worked.
   */
  async readdIfUnlisted(name: string): Promise<boolean | undefined> {
    const view = await this.#leaderView()
    const hex = this.idHex(name)
    if (
      this.state(name) !== 'running' ||
      view === undefined ||
      view.voters.has(hex) ||
      view.learners.has(hex)
    ) {
      return undefined
    }
    this.#log(`${name} runs but the leader does not list it: adding it back`)
    await this.kill(name)
    this.#member(name).state = 'removed'
    return await this.addMember(name)
  }

  /** Kills every process, closes the proxies, removes the data (unless keepData). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    await Promise.all(this.names.map((n) => this.kill(n)))
    await Promise.all([...this.#members.values()].map((m) => m.proxy.stop()))
    if (this.#options.keepData !== true) {
      rmSync(this.dataRoot, { recursive: true, force: true })
      forgetOnExit(this.dataRoot)
    }
  }

  #log(line: string): void {
    this.#options.log?.(`cluster: ${line}`)
  }

  #member(name: string): Member {
    const m = this.#members.get(name)
    if (m === undefined) throw new Error(`no member ${name}`)
    return m
  }

  /**
   * The membership the leader has applied: the running member with the highest term that says it
   * leads, asked again for its status. undefined without one.
   */
  async #leaderView(): Promise<{ leader: string; voters: Set<string>; learners: Set<string> } | undefined> {
    const leader = await this.leader()
    const s = leader === undefined ? undefined : await this.status(leader)
    if (leader === undefined || s?.role !== 'leader') return undefined
    return { leader, voters: new Set(s.voters), learners: new Set(s.learners) }
  }

  /** Running members missing from the leader's membership. */
  async #unlisted(): Promise<string[]> {
    const view = await this.#leaderView()
    if (view === undefined) return []
    return this.membersIn('running').filter(
      (n) => !view.voters.has(this.idHex(n)) && !view.learners.has(this.idHex(n)),
    )
  }

  #onExit(m: Member, proc: MemberProcess, exit: Exit): void {
    if (m.process !== proc) return
    m.process = undefined
    if (proc.expectExit) return
    m.state = 'crashed'
    void m.proxy.setListening(false)
    this.unexpectedExits.push({
      member: m.name,
      pid: proc.pid,
      code: exit.code,
      signal: exit.signal,
      at: performance.now() - this.#createdAt,
    })
  }
}

function describeReply(reply: HttpReply | undefined): string {
  if (reply === undefined) return 'no answer'
  return `${reply.status} ${JSON.stringify(reply.body ?? null).slice(0, 200)}`
}

function setsAsArrays(_key: string, value: unknown): unknown {
  return value instanceof Set ? [...value] : value
}

function proxyUrl(m: Member): string {
  return `http://127.0.0.1:${m.proxy.port}`
}

/** Polls `probe` until it gives a value or the deadline passes (then undefined). */
export async function pollFor<T>(
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) return undefined
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs))
  }
}

/** Free loopback ports (bind port 0, read it, close), as test/helpers/ports.ts. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) {
    ports.add(
      await new Promise<number>((resolve, reject) => {
        const server = createServer()
        server.unref()
        server.on('error', reject)
        server.listen(0, '127.0.0.1', () => {
          const address = server.address()
          const port = typeof address === 'object' && address !== null ? address.port : 0
          server.close(() => resolve(port))
        })
      }),
    )
  }
  return [...ports]
}
