/**
 * The unit runner: runs, on this machine, the units the scheduler's engine assigned to it, as
 * child processes of the agent (no systemd), and reports their states. docs/unit-runner.md is the
 * operator's page.
 *
 * Keyspace (src/scheduler/records.ts): it follows only `assign/<this machine>/` (a prefix feed:
 * one read at a revision, then a watch from the next; a cancelled watch reads again), and writes
 * only `states/<this machine>/<unit>`, each attached to the machine lease.
 *
 * Invariants:
 * - Fencing. Units run only while the machine lease is surely alive on the servers: status
 *   'alive' and the machine's fence deadline (send time of the last acknowledged keep-alive or
 *   grant + TTL; the leader's own deadline is at least that late) not yet passed on the fence
 *   clock. When it passes without a newer acknowledgement, or the lease is found lost, every unit's
 *   process groups are SIGKILLed at once (no ExecStop, no grace), the assignment feed stops and
 *   no state is written. So by the time the engine can see the machine's key expire and move its
 *   units, they no longer run here. When the lease is good again the assignments are read afresh
 *   and what is still assigned starts.
 * - A unit runs only while its assignment exists with desiredState 'launched'; an assignment that
 *   goes away stops the unit, then its state key is deleted and the unit forgotten.
 * - States are written on every change, coalesced over stateWriteDelayMs, at most
 *   stateWritesPerTxnMax per transaction, always with the current machine lease; a new lease
 *   re-writes every state. Nothing is written while fenced.
 * - At start, process groups a previous run of this agent left (pids.json) are SIGKILLed and their
 *   services deregistered before anything starts: a returning agent never double-runs.
 * - At most unitsMax units are held; more are reported (loadState 'error'), never run.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { KvEvent } from '../../kv/events.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { KeyValue, TxnOp } from '../../kv/mvcc.ts'
import { type PrefixFeed, startPrefixFeed } from '../../kv/prefix-feed.ts'
import type { UnitJournals } from '../../scheduler/journal.ts'
import { type Assignment, decodeAssignment, machineAssignPrefix, stateKey } from '../../scheduler/records.ts'
import { type Clock, systemClock } from '../checks/runner.ts'
import { FileJournals } from './journal.ts'
import { type RunnerLimits, runnerLimits } from './limits.ts'
import { ManagedUnit, type UnitContext, type UnitRegistry } from './managed-unit.ts'
import { killLeftover, PidFile } from './pid-file.ts'
import { findSetpriv } from './spawn.ts'
import { currentUnixUser, lookupPasswdUser, type UnitEnvironmentSource } from './unit-environment.ts'

/** What the runner needs from the machine lease (MachineLease implements it). */
export interface MachineFence {
  /** The lease the machine's records are attached to; 0 while none is held. */
  readonly lease: number
  /** 'alive': the machine key is written and kept alive. */
  readonly status: string
  /**
   * On the fence clock: the time by which the lease may have expired on the servers (the send time
   * of the last acknowledged keep-alive or grant + TTL); undefined while none is acknowledged.
   */
  readonly fenceDeadlineMs: number | undefined
  /** Called after every acknowledged grant or keep-alive, status change and loss. */
  onLeaseChange(listener: () => void): () => void
}

export interface RunnerLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface UnitRunnerOptions {
  store: Pick<KvStore, 'range' | 'watch' | 'txn'>
  /** The agent's --name (the machine id). */
  node: string
  /** The agent's data directory: journals and pids.json go to `<dataDir>/units/`. */
  dataDir: string
  machine: MachineFence
  /** The agent's local registry, for the services units declare ([X-Cairn] ServiceName). */
  registry?: UnitRegistry | undefined
  log?: RunnerLog
  limits?: Partial<RunnerLimits>
  /** Timers of units and state writes, monotonic now; default the process's. */
  clock?: Clock
  /** The clock of the machine's fence deadline (MachineLease's monotonic clock); default the process's. */
  fenceClock?: Clock
  /** ms since the epoch (journal lines, sinceMs). */
  wallClock?: () => number
  /** setpriv's path; null: spawn without it; default /usr/bin/setpriv when it exists. */
  setpriv?: string | null
  /** Overrides of the units' environment source (tests). */
  environment?: Partial<UnitEnvironmentSource>
}

export interface RunnerStatus {
  fenced: boolean
  units: number
  running: number
  failed: number
  restarts: number
  /** Times the runner fenced itself (killed every unit for a lease it could not vouch for). */
  fences: number
}

const silentLog: RunnerLog = { info: () => {}, warn: () => {} }

export class UnitRunner {
  readonly journals: UnitJournals
  readonly #o: UnitRunnerOptions
  readonly #limits: RunnerLimits
  readonly #clock: Clock
  readonly #fenceClock: Clock
  readonly #log: RunnerLog
  readonly #files: FileJournals
  readonly #pids: PidFile
  readonly #units = new Map<string, ManagedUnit>()
  readonly #environment: UnitEnvironmentSource
  readonly #setpriv: string | undefined
  readonly #prefix: string
  #phase: 'new' | 'running' | 'stopped' = 'new'
  #fenced = true
  #fences = 0
  #fenceTimer: unknown
  #unsubscribe: (() => void) | undefined
  #feed: PrefixFeed | undefined
  /** The next load lifts the fence (set when the lease became good again). */
  #liftOnLoad = false
  readonly #dirty = new Set<string>()
  #writtenLease = 0
  #writeTimer: unknown
  #writing: Promise<void> | undefined
  #retryMs = 0

  constructor(options: UnitRunnerOptions) {
    this.#o = options
    this.#limits = { ...runnerLimits, ...options.limits }
    this.#clock = options.clock ?? systemClock
    this.#fenceClock = options.fenceClock ?? systemClock
    this.#log = options.log ?? silentLog
    const root = join(options.dataDir, 'units')
    this.#files = new FileJournals(root, this.#limits)
    this.journals = this.#files
    this.#pids = new PidFile(join(root, 'pids.json'), this.#limits.pidFileBytesMax)
    this.#setpriv = options.setpriv === null ? undefined : (options.setpriv ?? findSetpriv())
    this.#prefix = machineAssignPrefix(options.node)
    this.#environment = {
      agentEnv: process.env,
      currentUser: currentUnixUser(),
      lookupUser: (name) => lookupPasswdUser(name),
      defaultCwd: '/',
      environmentFileBytesMax: this.#limits.environmentFileBytesMax,
      ...options.environment,
    }
  }

  /** Kills what a previous run left, then runs assigned units whenever the machine lease is good. */
  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new Error(`UnitRunner.start: already ${this.#phase}`)
    await mkdir(join(this.#o.dataDir, 'units'), { recursive: true })
    await this.#killLeftovers()
    this.#phase = 'running'
    const fromLease = this.#o.machine.onLeaseChange(() => this.#evaluateFence())
    // A unit's service id is its name: a check change reaches that unit at once.
    const fromChecks = this.#o.registry?.onServiceCheckChange?.((id) => this.#units.get(id)?.checkChanged())
    this.#unsubscribe = () => {
      fromLease()
      fromChecks?.()
    }
    this.#evaluateFence()
  }

  /** Stops every unit gracefully, SIGKILLing what is left after stopAllMsMax. */
  async stop(): Promise<void> {
    if (this.#phase !== 'running') {
      this.#phase = 'stopped'
      return
    }
    this.#phase = 'stopped'
    this.#unsubscribe?.()
    this.#fenceClock.clearTimeout(this.#fenceTimer)
    this.#clock.clearTimeout(this.#writeTimer)
    this.#feed?.stop()
    this.#feed = undefined
    const units = [...this.#units.values()]
    const all = Promise.all(units.map((u) => u.shutdown()))
    let timer: unknown
    const late = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = this.#clock.setTimeout(() => resolve(true), this.#limits.stopAllMsMax)
      }),
    ])
    this.#clock.clearTimeout(timer)
    if (late) {
      this.#log.warn(
        { units: units.length },
        'unit runner: stop took longer than stopAllMsMax; killing the rest',
      )
      for (const unit of units) unit.kill()
      await all
    }
    await this.#writing
    await this.#files.flushed()
    // Units add and remove their pids without waiting (managed-unit.ts): the last of those writes
    // must be on disk before stop() says the runner is done with its directory.
    await this.#pids.flushed()
  }

  status(): RunnerStatus {
    let running = 0
    let failed = 0
    let restarts = 0
    for (const unit of this.#units.values()) {
      const record = unit.record()
      if (unit.running) running++
      if (record.activeState === 'failed') failed++
      restarts += record.restarts
    }
    return { fenced: this.#fenced, units: this.#units.size, running, failed, restarts, fences: this.#fences }
  }

  /** The state of one unit as the runner would report it (tests, status pages). */
  unitState(unit: string) {
    return this.#units.get(unit)?.record()
  }

  // ---- fencing ----

  #evaluateFence(): void {
    if (this.#phase !== 'running') return
    const m = this.#o.machine
    const deadline = m.fenceDeadlineMs
    const now = this.#fenceClock.now()
    const good = m.status === 'alive' && m.lease !== 0 && deadline !== undefined && deadline > now
    this.#fenceClock.clearTimeout(this.#fenceTimer)
    this.#fenceTimer = undefined
    if (good) {
      this.#fenceTimer = this.#fenceClock.setTimeout(() => this.#evaluateFence(), deadline - now)
      if (this.#fenced && this.#feed === undefined) this.#unfence()
      else if (!this.#fenced && m.lease !== this.#writtenLease) this.#scheduleWrite()
    } else if (!this.#fenced) {
      this.#fence()
    }
  }

  #fence(): void {
    this.#fenced = true
    this.#fences++
    this.#liftOnLoad = false
    this.#feed?.stop()
    this.#feed = undefined
    this.#clock.clearTimeout(this.#writeTimer)
    this.#writeTimer = undefined
    for (const unit of this.#units.values()) unit.setFenced(true)
    this.#log.warn(
      { units: this.#units.size },
      'unit runner: the machine lease may have expired on the servers; every unit was killed',
    )
  }

  /** The lease is good: read the assignments afresh; the load lifts the fence. */
  #unfence(): void {
    this.#liftOnLoad = true
    this.#feed = startPrefixFeed(
      this.#o.store,
      this.#prefix,
      {
        load: (_revision, kvs) => this.#load(kvs),
        apply: (event) => this.#apply(event),
        flush: () => {},
      },
      (error) => this.#log.warn({ err: String(error) }, 'unit runner: reading assignments failed; retrying'),
    )
  }

  // ---- assignments ----

  #load(kvs: readonly KeyValue[]): void {
    const seen = new Map<string, Assignment | undefined>()
    for (const kv of kvs) {
      const unit = kv.key.slice(this.#prefix.length)
      if (unit === '' || unit.includes('/')) continue
      seen.set(unit, decodeAssignment(kv.value))
    }
    for (const name of this.#units.keys()) if (!seen.has(name)) this.#assign(name, undefined)
    for (const [name, assignment] of seen) this.#assign(name, assignment)
    if (this.#liftOnLoad && this.#phase === 'running') {
      this.#liftOnLoad = false
      this.#fenced = false
      this.#writtenLease = 0 // every state is written again, under the current lease
      for (const unit of this.#units.values()) unit.setFenced(false)
      this.#scheduleWrite()
      this.#log.info(
        { units: this.#units.size },
        'unit runner: the machine lease is good; running assigned units',
      )
    }
  }

  #apply(event: KvEvent): void {
    if (event.removesDir && this.#prefix.startsWith(`${event.key}/`)) {
      for (const name of this.#units.keys()) this.#assign(name, undefined)
      return
    }
    if (!event.key.startsWith(this.#prefix)) return
    const unit = event.key.slice(this.#prefix.length)
    if (unit === '' || unit.includes('/')) return
    const gone = event.action === 'delete' || event.action === 'compareAndDelete' || event.action === 'expire'
    this.#assign(unit, gone ? undefined : decodeAssignment(event.node.value ?? ''))
  }

  #assign(name: string, assignment: Assignment | undefined): void {
    if (this.#phase !== 'running') return
    let unit = this.#units.get(name)
    if (assignment !== undefined && assignment.unit !== name) assignment = undefined
    if (unit === undefined) {
      if (assignment === undefined) return
      const refused =
        this.#units.size >= this.#limits.unitsMax
          ? `more than unitsMax (${this.#limits.unitsMax}) units on this machine: not run`
          : undefined
      unit = new ManagedUnit(name, this.#context(name), refused)
      this.#units.set(name, unit)
      unit.setFenced(this.#fenced)
    }
    unit.assign(assignment)
    if (assignment === undefined) void this.#forget(unit)
  }

  /** Once an unassigned unit has stopped: forget it and delete its state. */
  async #forget(unit: ManagedUnit): Promise<void> {
    await unit.idle()
    if (unit.assignment !== undefined || unit.running || this.#units.get(unit.name) !== unit) return
    this.#units.delete(unit.name)
    this.#files.release(unit.name)
    this.#markDirty(unit.name)
  }

  #context(name: string): UnitContext {
    return {
      node: this.#o.node,
      journal: this.#files.journal(name),
      pids: this.#pids,
      registry: this.#o.registry,
      limits: this.#limits,
      clock: this.#clock,
      wallClock: this.#o.wallClock ?? Date.now,
      setpriv: this.#setpriv,
      environment: this.#environment,
      onState: (unit) => this.#markDirty(unit.name),
      log: this.#log,
    }
  }

  // ---- state writes ----

  #markDirty(name: string): void {
    this.#dirty.add(name)
    this.#scheduleWrite()
  }

  #scheduleWrite(delayMs = this.#limits.stateWriteDelayMs): void {
    if (this.#phase !== 'running' || this.#fenced || this.#writeTimer !== undefined) return
    this.#writeTimer = this.#clock.setTimeout(() => {
      this.#writeTimer = undefined
      if (this.#writing !== undefined) {
        void this.#writing.then(() => this.#scheduleWrite(0))
        return
      }
      this.#writing = this.#write().finally(() => {
        this.#writing = undefined
      })
    }, delayMs)
  }

  /** Writes every dirty state (all of them under a new lease), in transactions. */
  async #write(): Promise<void> {
    const lease = this.#o.machine.lease
    if (this.#fenced || lease === 0 || this.#phase !== 'running') return
    const names =
      lease !== this.#writtenLease ? [...new Set([...this.#dirty, ...this.#units.keys()])] : [...this.#dirty]
    this.#dirty.clear()
    const node = this.#o.node
    const ops: TxnOp[] = names.map((name) => {
      const unit = this.#units.get(name)
      const key = stateKey(node, name)
      return unit === undefined
        ? { type: 'delete', key }
        : { type: 'put', key, value: JSON.stringify(unit.record()), lease }
    })
    try {
      for (let i = 0; i < ops.length; i += this.#limits.stateWritesPerTxnMax) {
        const success = ops.slice(i, i + this.#limits.stateWritesPerTxnMax)
        await this.#o.store.txn({ compare: [], success, failure: [] })
      }
      this.#writtenLease = lease
      this.#retryMs = 0
    } catch (error) {
      for (const name of names) this.#dirty.add(name)
      this.#retryMs = Math.min(
        this.#limits.stateRetryMsMax,
        this.#retryMs === 0 ? this.#limits.stateRetryMsMin : this.#retryMs * 2,
      )
      this.#log.warn(
        { err: String(error), retryMs: this.#retryMs },
        'unit runner: writing unit states failed',
      )
      this.#scheduleWrite(this.#retryMs)
    }
  }

  // ---- start ----

  async #killLeftovers(): Promise<void> {
    const previous = await this.#pids.readPrevious()
    const units = new Set<string>()
    for (const entry of previous) {
      if (killLeftover(entry)) {
        this.#log.warn(
          { unit: entry.unit, pid: entry.pid },
          'unit runner: killed a process group left by a previous run',
        )
      }
      units.add(entry.unit)
    }
    for (const unit of units) {
      await this.#o.registry?.deregisterService(unit).catch(() => false)
    }
    await this.#pids.clear()
  }
}
