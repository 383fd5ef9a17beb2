/**
 * LocalRegistry: this agent's own services and checks (the /v1/agent endpoints' LocalAgent). As in
 * Consul, the agent is authoritative for them: it keeps them in memory, persists them in its data
 * directory (local-state-file.ts) so a restart picks up where it was, runs their checks
 * (checks/runner.ts), and keeps the catalog's records for its node equal to them (anti-entropy).
 *
 * Anti-entropy, two paths into one writer:
 * - On every local change (a registration, a deregistration, a maintenance toggle, a check result
 *   that changed) the changed ids are marked dirty (or dead) and a push pass writes them: a
 *   service with its changed checks in one transaction (several services and lone check updates
 *   share transactions, at most syncRecordsPerTxnMax records and syncTxnBytesMax bytes each),
 *   deletions through deregisterService/deregisterCheck. A pass that fails puts its ids back and
 *   retries with exponential backoff (retryDelayMsMin .. retryDelayMsMax, at most
 *   retryAttemptsMax times, then it waits for the next full sync).
 * - Every fullSyncMs plus a random offset in [0, fullSyncMs / 2), a full sync compares the
 *   catalog view (CatalogState) for this node with the local state, marks what differs dirty,
 *   marks what the agent does not know dead, and pushes. Services with EnableTagOverride keep
 *   the catalog's tags (the local copy adopts them); the synthesized machine check is never
 *   touched.
 * The node record belongs to the machine module: writes here use skipNodeUpdate, so they fail
 * (CATALOG_NODE_NOT_FOUND) while the node is missing; the registry then logs it once, keeps
 * everything dirty and syncs as soon as the catalog view shows the node.
 *
 * Invariants:
 * - The maps (#services, #checks) change only under #lock, and only after the new state was
 *   persisted: a refused or failed request changes nothing, in memory, on disk or in the catalog.
 *   (The one exception is EnableTagOverride: a full sync, also under #lock, adopts catalog tags in
 *   memory without persisting them; the next full sync after a restart adopts them again.)
 * - Entries are replaced, never edited: a check entry whose object identity changed is a new
 *   check (new runner); an identical re-registration keeps the entry, its runner and its status.
 * - Every local check has a running CheckRunner while the registry runs (maintenance checks have
 *   none); a runner's report is applied only while its entry is the current one for its id.
 * - A dirty id is taken out of its set before its record is read for a write, so a change during
 *   the write marks it again: nothing changed locally is ever left out of the catalog for good.
 * - At most one push pass runs at a time; store writes never happen under #lock.
 * - A TTL check's status is saved (ttl-check-state.ts) after each update and before it is answered;
 *   one check's saves are chained and each writes the runner's state at that moment, so the file
 *   ends with the newest status. A check entry that leaves (deregistered, redefined) has its file
 *   removed after its pending saves, and a new entry under the same id saves only after that.
 *   At start, a saved status whose TTL has not run out is the runner's initial state.
 */

import type {
  AgentCheckView,
  AgentMemberView,
  AgentServiceView,
  LocalAgent,
} from '../api/consul/local-agent.ts'
import { formatDurationMs } from '../catalog/durations.ts'
import { type CheckRecord, type CheckStatus, nodeRecord, type ServiceRecord } from '../catalog/records.ts'
import { type CatalogState, machineCheckId } from '../catalog/state.ts'
import type { CatalogWriter } from '../catalog/writer.ts'
import { CairnError, isCairnError } from '../errors.ts'
import { type CheckDefinition, type ParseCheckOptions, parseCheckDefinition } from './checks/definition.ts'
import { notesBytesMax } from './checks/limits.ts'
import { type CheckChange, CheckRunner, type Clock, systemClock } from './checks/runner.ts'
import {
  encodeLocalState,
  type LocalMaintenance,
  type LocalState,
  localStateBytesMax,
  readLocalState,
  writeLocalState,
} from './local-state-file.ts'
import {
  nodeMaintenanceCheckId,
  parseServiceDefinition,
  reservedCheckIdProblem,
  serviceBody,
  serviceChecksMax,
  serviceMaintenanceCheckPrefix,
} from './service-definition.ts'
import {
  pruneTtlCheckStates,
  readTtlCheckState,
  removeTtlCheckState,
  writeTtlCheckState,
} from './ttl-check-state.ts'

/** Consul's full-sync interval for clusters of up to 128 nodes. */
export const fullSyncMsDefault = 60_000
/** Consul's check_reap_interval: how often DeregisterCriticalServiceAfter is looked at. */
export const reapIntervalMsDefault = 30_000
/** Services on one agent; past it a registration is refused (CATALOG_INVALID). */
export const servicesMaxDefault = 4_096
/** Checks on one agent (maintenance checks not counted: at most one per service plus one). */
export const checksMaxDefault = 4_096
/** First retry of a failed push, doubled on each further failure up to retryDelayMsMaxDefault. */
export const retryDelayMsMinDefault = 500
export const retryDelayMsMaxDefault = 30_000
/** Retries of failed pushes before waiting for the next full sync. */
export const retryAttemptsMaxDefault = 10
/** Records (services and checks) in one store transaction; the store takes at most 128 operations. */
export const syncRecordsPerTxnMax = 64
/**
 * Encoded record bytes in one store transaction. A command is at most 2 MiB (kvLimits), and one
 * check's Output may be 1 MiB, so batches are cut by size as well as by count.
 */
export const syncTxnBytesMax = 1024 * 1024
/** A maintenance reason becomes the check's Notes. */
export const maintenanceReasonBytesMax = notesBytesMax

export const serviceMaintenanceNotesDefault =
  'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.'
export const nodeMaintenanceNotesDefault =
  'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.'

export interface RegistryLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface LocalRegistryOptions {
  nodeName: string
  datacenter: string
  writer: CatalogWriter
  /** This agent's catalog view (fed by the catalog feed): what the catalog has for this node. */
  catalog: CatalogState
  dataDir: string
  /** Script checks run arbitrary commands: refused unless set (--enable-script-checks). */
  enableScriptChecks: boolean
  /** 'server' (Consul's member role "consul") or 'client' (role "node"). */
  role: 'server' | 'client'
  log: RegistryLog
  /** Consul's NodeID (a UUID); shown by self() and members(). */
  nodeId?: string
  /** The member address and port members() and self() show. */
  address?: string
  port?: number
  version?: string
  revision?: string
  /** Node metadata, shown as self().Meta. */
  nodeMeta?: Record<string, string>
  /** Timers and the checks' clock; default the process's monotonic clock. */
  clock?: Clock
  /** Wall-clock ms (Date.now by default): when a saved TTL status expires, across restarts. */
  wallClock?: () => number
  /** Random in [0, 1), for the full-sync offset. */
  random?: () => number
  fullSyncMs?: number
  reapIntervalMs?: number
  retryDelayMsMin?: number
  retryDelayMsMax?: number
  retryAttemptsMax?: number
  servicesMax?: number
  checksMax?: number
  /** Shortest check Interval (tests lower it; default 1 s, Consul's). */
  checkIntervalMsMin?: number
  /** Delay before a check's first run; default a random stagger in [0, Interval). */
  checkFirstRunDelayMs?: number
}

interface LocalCheck {
  readonly id: string
  readonly name: string
  /** '' for a node-level check. */
  readonly serviceId: string
  readonly notes: string
  /** http, tcp, ttl, script, or maintenance. */
  readonly type: string
  readonly view: Record<string, unknown>
  /** Undefined for a maintenance check, which has no runner and is always critical. */
  readonly definition: CheckDefinition | undefined
  /** The definition body, persisted (undefined for a maintenance check: `maintenance` is). */
  readonly body: Record<string, unknown> | undefined
  readonly maintenance: LocalMaintenance | undefined
  runner: CheckRunner | undefined
  /** When the first run comes (default: the registry's, else a random stagger). */
  firstRunDelayMs?: number
  /** A TTL check's saved status, read at start, that its first runner starts from. */
  restoredTtl?: { status: CheckStatus; output: string }
  /** The last write of this TTL check's status to disk, in order (persistTtl). */
  ttlWrite?: Promise<void>
}

type Phase = 'new' | 'running' | 'stopped'

interface PushOp {
  readonly what: string
  run(): Promise<unknown>
  /** Puts the op's ids back into the dirty or dead sets. */
  requeue(): void
}

export class LocalRegistry implements LocalAgent {
  readonly #o: LocalRegistryOptions
  readonly #clock: Clock
  readonly #wallClock: () => number
  readonly #random: () => number
  readonly #checkOptions: ParseCheckOptions
  readonly #limits: { servicesMax: number; checksMax: number }
  readonly #retry: { delayMsMin: number; delayMsMax: number; attemptsMax: number }
  #phase: Phase = 'new'
  #services = new Map<string, ServiceRecord>()
  #checks = new Map<string, LocalCheck>()
  #lock: Promise<unknown> = Promise.resolve()
  readonly #dirtyServices = new Set<string>()
  readonly #dirtyChecks = new Set<string>()
  readonly #checkListeners = new Set<(serviceId: string) => void>()
  readonly #deadServices = new Set<string>()
  /** Check id → the service id it had (its deletion is covered by that service's deletion). */
  readonly #deadChecks = new Map<string, string>()
  #pass: Promise<void> | undefined
  #nextPass: Promise<void> | undefined
  #retryAttempt = 0
  #retryTimer: unknown
  #fullSyncTimer: unknown
  #reapTimer: unknown
  #nodeWait: AbortController | undefined
  #nodeMissingLogged = false
  /** A run of failed passes is under way (logged at its start and its end only). */
  #failing = false
  readonly #stopping = new Set<Promise<void>>()

  constructor(options: LocalRegistryOptions) {
    this.#o = options
    this.#clock = options.clock ?? systemClock
    this.#wallClock = options.wallClock ?? Date.now
    this.#random = options.random ?? Math.random
    this.#checkOptions = {
      enableScriptChecks: options.enableScriptChecks,
      ...(options.checkIntervalMsMin !== undefined ? { intervalMsMin: options.checkIntervalMsMin } : {}),
    }
    this.#limits = {
      servicesMax: options.servicesMax ?? servicesMaxDefault,
      checksMax: options.checksMax ?? checksMaxDefault,
    }
    this.#retry = {
      delayMsMin: options.retryDelayMsMin ?? retryDelayMsMinDefault,
      delayMsMax: options.retryDelayMsMax ?? retryDelayMsMaxDefault,
      attemptsMax: options.retryAttemptsMax ?? retryAttemptsMaxDefault,
    }
  }

  // ---- lifecycle ----

  /** Loads the persisted registrations, starts their checks, and runs a full sync. */
  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new Error(`LocalRegistry.start: already ${this.#phase}`)
    const state = await readLocalState(this.#o.dataDir)
    if (state !== undefined) this.#restore(state)
    await this.#readTtlStates()
    this.#phase = 'running'
    for (const entry of this.#checks.values()) this.#startRunner(entry)
    this.#scheduleReap()
    this.#scheduleFullSync()
    await this.fullSync()
  }

  /**
   * Stops the checks and timers and waits for the push in flight. Deregisters nothing: a
   * restarted agent picks up where it was.
   */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return
    this.#phase = 'stopped'
    for (const timer of [this.#retryTimer, this.#fullSyncTimer, this.#reapTimer])
      this.#clock.clearTimeout(timer)
    this.#nodeWait?.abort()
    for (const entry of this.#checks.values()) this.#stopRunner(entry)
    await Promise.all([...this.#stopping])
    await this.#pass
    await this.#lock
  }

  // ---- LocalAgent ----

  /**
   * `firstCheckDelayMs` (Cairn-internal, not an API field): when the service's new checks run
   * first, instead of a random stagger within their Interval. The unit runner registers a unit's
   * service as its process starts and wants its health soon (a rolling update waits for it).
   */
  async registerService(
    body: unknown,
    options: { replaceExistingChecks: boolean; firstCheckDelayMs?: number },
  ): Promise<void> {
    this.#assertRunning()
    const parsed = parseServiceDefinition(body, this.#checkOptions)
    const { service } = parsed
    await this.#locked(async () => {
      const services = new Map(this.#services)
      const checks = new Map(this.#checks)
      const old = services.get(service.ID)
      services.set(service.ID, old !== undefined && jsonEqual(old, service) ? old : service)
      const kept = new Set<string>()
      for (const { definition, body: checkBody } of parsed.checks) {
        kept.add(definition.id)
        const entry = this.#reuseOrNew(checks.get(definition.id), definition, checkBody)
        if (options.firstCheckDelayMs !== undefined && entry.runner === undefined)
          entry.firstRunDelayMs = options.firstCheckDelayMs
        checks.set(definition.id, entry)
      }
      if (options.replaceExistingChecks) {
        for (const [id, entry] of checks) {
          if (entry.serviceId === service.ID && entry.maintenance === undefined && !kept.has(id))
            checks.delete(id)
        }
      }
      this.#checkLimits(services, checks, service.ID)
      if (await this.#commit(services, checks)) {
        this.#o.log.info({ service: service.ID, checks: parsed.checks.length }, 'agent: service registered')
      }
      for (const warning of parsed.warnings) this.#o.log.warn({ service: service.ID }, `agent: ${warning}`)
    })
    await this.#requestPush()
  }

  async deregisterService(id: string): Promise<boolean> {
    this.#assertRunning()
    const existed = await this.#locked(async () => {
      if (!this.#services.has(id)) return false
      const services = new Map(this.#services)
      services.delete(id)
      const checks = new Map([...this.#checks].filter(([, entry]) => entry.serviceId !== id))
      await this.#commit(services, checks)
      this.#o.log.info({ service: id }, 'agent: service deregistered')
      return true
    })
    if (existed) await this.#requestPush()
    return existed
  }

  async registerCheck(body: unknown): Promise<void> {
    this.#assertRunning()
    const { definition, warnings } = parseCheckDefinition(body, this.#checkOptions)
    const reserved = reservedCheckIdProblem(definition.id)
    if (reserved !== undefined) throw new CairnError('CHECK_INVALID', `ID: ${reserved}`)
    const stored = JSON.parse(JSON.stringify(body)) as Record<string, unknown>
    await this.#locked(async () => {
      const sid = definition.serviceId
      if (sid !== '' && !this.#services.has(sid)) {
        throw new CairnError('CHECK_INVALID', `ServiceID: no service ${JSON.stringify(sid)} on this agent`)
      }
      const checks = new Map(this.#checks)
      checks.set(definition.id, this.#reuseOrNew(checks.get(definition.id), definition, stored))
      this.#checkLimits(this.#services, checks, sid)
      if (await this.#commit(this.#services, checks)) {
        this.#o.log.info({ check: definition.id, service: sid }, 'agent: check registered')
      }
      for (const warning of warnings) this.#o.log.warn({ check: definition.id }, `agent: ${warning}`)
    })
    await this.#requestPush()
  }

  async deregisterCheck(id: string): Promise<boolean> {
    this.#assertRunning()
    const existed = await this.#locked(async () => {
      if (!this.#checks.has(id)) return false
      const checks = new Map(this.#checks)
      checks.delete(id)
      await this.#commit(this.#services, checks)
      this.#o.log.info({ check: id }, 'agent: check deregistered')
      return true
    })
    if (existed) await this.#requestPush()
    return existed
  }

  async setServiceMaintenance(id: string, enable: boolean, reason: string): Promise<void> {
    this.#assertRunning()
    checkReason(reason)
    await this.#locked(async () => {
      const service = this.#services.get(id)
      if (service === undefined) throw new CairnError('CATALOG_SERVICE_NOT_FOUND', JSON.stringify(id))
      await this.#setMaintenance(serviceMaintenanceCheckPrefix + id, { serviceId: id, reason }, enable)
    })
    await this.#requestPush()
  }

  async setNodeMaintenance(enable: boolean, reason: string): Promise<void> {
    this.#assertRunning()
    checkReason(reason)
    await this.#locked(() => this.#setMaintenance(nodeMaintenanceCheckId, { serviceId: '', reason }, enable))
    await this.#requestPush()
  }

  async updateTtlCheck(id: string, status: CheckStatus, output: string): Promise<void> {
    this.#assertRunning()
    const entry = this.#checks.get(id)
    if (entry === undefined) throw new CairnError('CATALOG_CHECK_NOT_FOUND', JSON.stringify(id))
    if (entry.runner === undefined)
      throw new CairnError('CHECK_NOT_TTL', `check ${id} is a maintenance check`)
    // CHECK_NOT_TTL, CHECK_INVALID; reports a change through onChange
    if (entry.runner.updateTtl(status, output)) await this.#persistTtl(entry)
    await this.#requestPush()
  }

  services(): AgentServiceView[] {
    return [...this.#services.values()]
      .sort((a, b) => compare(a.ID, b.ID))
      .map((s) => ({ ...s, Tags: [...s.Tags], Datacenter: this.#o.datacenter }))
  }

  checks(): AgentCheckView[] {
    return [...this.#checks.values()]
      .sort((a, b) => compare(a.id, b.id))
      .map((entry) => ({ ...this.#checkRecord(entry), Node: this.#o.nodeName }))
  }

  members(): AgentMemberView[] {
    const o = this.#o
    const port = o.port ?? 0
    return [
      {
        Name: o.nodeName,
        Addr: o.address ?? '127.0.0.1',
        Port: port,
        Tags: {
          dc: o.datacenter,
          role: o.role === 'server' ? 'consul' : 'node',
          port: String(port),
          id: o.nodeId ?? '',
          build: o.version ?? '',
        },
        Status: 1,
        ProtocolMin: 1,
        ProtocolMax: 5,
        ProtocolCur: 2,
        DelegateMin: 2,
        DelegateMax: 5,
        DelegateCur: 4,
      },
    ]
  }

  self(): Record<string, unknown> {
    const o = this.#o
    return {
      Config: {
        Datacenter: o.datacenter,
        NodeName: o.nodeName,
        NodeID: o.nodeId ?? '',
        Server: o.role === 'server',
        Revision: o.revision ?? '',
        Version: o.version ?? '',
      },
      Member: this.members()[0],
      Meta: { ...(o.nodeMeta ?? {}) },
    }
  }

  // ---- anti-entropy ----

  /**
   * Compares the catalog view for this node with the local state and writes what differs
   * (Consul's full sync). Resolves once the push pass that carries the repairs has ended; never
   * rejects.
   */
  async fullSync(): Promise<void> {
    if (this.#phase !== 'running') return
    const nodePresent = await this.#locked(async () => this.#compareWithCatalog())
    this.#retryAttempt = 0
    if (!nodePresent) {
      this.#onNodeMissing()
      return
    }
    await this.#requestPush()
  }

  /** Marks what differs between the catalog view and the local state; false if the node is missing. */
  #compareWithCatalog(): boolean {
    const { catalog, nodeName } = this.#o
    if (catalog.nodeEntry(nodeName) === undefined) return false
    const before =
      this.#dirtyServices.size + this.#dirtyChecks.size + this.#deadServices.size + this.#deadChecks.size
    const remoteServices = new Map(catalog.nodeServices(nodeName).map((s) => [s.record.ID, s.record]))
    for (const [id, remote] of remoteServices) {
      let local = this.#services.get(id)
      if (local === undefined) {
        this.#deadServices.add(id)
        continue
      }
      if (local.EnableTagOverride && !this.#dirtyServices.has(id) && !jsonEqual(local.Tags, remote.Tags)) {
        local = { ...local, Tags: [...remote.Tags] } // the catalog's tags win; kept in memory only
        this.#services.set(id, local)
      }
      if (!jsonEqual(local, remote)) this.#dirtyServices.add(id)
    }
    for (const id of this.#services.keys()) if (!remoteServices.has(id)) this.#dirtyServices.add(id)
    // A failed machine's checks read critical in the view whatever is stored: compare the rest.
    const statusKnown = catalog.machineAlive(nodeName) !== false
    const remoteChecks = new Map<string, CheckRecord>()
    for (const view of catalog.nodeChecks(nodeName)) {
      if (view.CheckID === machineCheckId) continue // synthesized from the machine key, not stored
      const { Node: _node, CreateIndex: _c, ModifyIndex: _m, ...record } = view
      remoteChecks.set(view.CheckID, record)
    }
    for (const [id, remote] of remoteChecks) {
      const local = this.#checks.get(id)
      if (local === undefined) this.#deadChecks.set(id, remote.ServiceID)
      else if (!sameCheck(this.#checkRecord(local), remote, statusKnown)) this.#dirtyChecks.add(id)
    }
    for (const id of this.#checks.keys()) if (!remoteChecks.has(id)) this.#dirtyChecks.add(id)
    const found =
      this.#dirtyServices.size + this.#dirtyChecks.size + this.#deadServices.size + this.#deadChecks.size
    if (found > before)
      this.#o.log.info({ repairs: found - before }, 'anti-entropy: the catalog differed; repairing')
    return true
  }

  /** Starts a push pass, or queues one after the pass in flight; resolves when that pass ends. */
  #requestPush(): Promise<void> {
    if (this.#phase !== 'running') return Promise.resolve()
    if (this.#pass === undefined) {
      this.#pass = this.#runPass().finally(() => {
        this.#pass = undefined
      })
      return this.#pass
    }
    this.#nextPass ??= this.#pass.then(() => {
      this.#nextPass = undefined
      return this.#requestPush()
    })
    return this.#nextPass
  }

  /** Writes every dirty and dead id once. Never rejects; failures requeue and schedule a retry. */
  async #runPass(): Promise<void> {
    const ops = this.#takeOps()
    let failed = false
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (this.#phase !== 'running') {
        for (const rest of ops.slice(i)) rest.requeue()
        return
      }
      try {
        await op.run()
      } catch (error) {
        op.requeue()
        failed = true
        if (isCairnError(error, 'CATALOG_NODE_NOT_FOUND')) {
          for (const rest of ops.slice(i + 1)) rest.requeue()
          this.#onNodeMissing()
          return
        }
        if (isDefinitive(error)) {
          // The store refused this write itself (a limit): the others may still go through.
          this.#o.log.error(
            { op: op.what, err: errorMessage(error) },
            'anti-entropy: a catalog write was refused',
          )
          continue
        }
        for (const rest of ops.slice(i + 1)) rest.requeue()
        // Logged once per run of failures, not once per pass: a down store fails every pass.
        if (!this.#failing) {
          this.#o.log.warn(
            { op: op.what, err: errorMessage(error) },
            'anti-entropy: catalog write failed; will retry',
          )
        }
        this.#failing = true
        break
      }
    }
    if (failed) this.#scheduleRetry()
    else if (ops.length > 0) {
      if (this.#failing) this.#o.log.info({}, 'anti-entropy: catalog writes go through again')
      this.#failing = false
      this.#retryAttempt = 0
      this.#nodeMissingLogged = false
    }
  }

  /** Empties the dirty and dead sets into store operations, deletions first. */
  #takeOps(): PushOp[] {
    const { writer, nodeName } = this.#o
    const ops: PushOp[] = []
    const deadServices = [...this.#deadServices].filter((id) => !this.#services.has(id))
    const deletingServices = new Set(deadServices)
    const deadChecks = [...this.#deadChecks].filter(
      ([id, serviceId]) => !this.#checks.has(id) && !deletingServices.has(serviceId),
    )
    const dirtyServices = [...this.#dirtyServices].filter((id) => this.#services.has(id))
    const dirtyChecks = new Set([...this.#dirtyChecks].filter((id) => this.#checks.has(id)))
    this.#deadServices.clear()
    this.#deadChecks.clear()
    this.#dirtyServices.clear()
    this.#dirtyChecks.clear()
    for (const id of deadServices) {
      ops.push({
        what: `deregister service ${id}`,
        run: () => writer.deregisterService(nodeName, id),
        requeue: () => this.#deadServices.add(id),
      })
    }
    for (const [id, serviceId] of deadChecks) {
      ops.push({
        what: `deregister check ${id}`,
        run: () => writer.deregisterCheck(nodeName, id),
        requeue: () => this.#deadChecks.set(id, serviceId),
      })
    }
    // Each service followed by its own checks, then the other checks, packed into transactions.
    const records: { kind: 'service' | 'check'; id: string }[] = []
    for (const id of dirtyServices) {
      records.push({ kind: 'service', id })
      for (const c of dirtyChecks) {
        if (this.#checks.get(c)?.serviceId !== id) continue
        records.push({ kind: 'check', id: c })
        dirtyChecks.delete(c)
      }
    }
    for (const c of dirtyChecks) records.push({ kind: 'check', id: c })
    let batch = { services: [] as string[], checks: [] as string[], bytes: 0 }
    for (const record of records) {
      const bytes = this.#recordBytes(record.kind, record.id)
      const count = batch.services.length + batch.checks.length
      if (count > 0 && (count >= syncRecordsPerTxnMax || batch.bytes + bytes > syncTxnBytesMax)) {
        ops.push(this.#registerOp(batch.services, batch.checks))
        batch = { services: [], checks: [], bytes: 0 }
      }
      ;(record.kind === 'service' ? batch.services : batch.checks).push(record.id)
      batch.bytes += bytes
    }
    if (batch.services.length + batch.checks.length > 0)
      ops.push(this.#registerOp(batch.services, batch.checks))
    return ops
  }

  /** The stored size of a record as it is now (its key is small next to the batch budget). */
  #recordBytes(kind: 'service' | 'check', id: string): number {
    if (kind === 'service') return Buffer.byteLength(JSON.stringify(this.#services.get(id) ?? {}))
    const entry = this.#checks.get(id)
    return entry === undefined ? 0 : Buffer.byteLength(JSON.stringify(this.#checkRecord(entry)))
  }

  /** One transaction writing services and checks as they are when it runs (skipNodeUpdate). */
  #registerOp(serviceIds: string[], checkIds: string[]): PushOp {
    return {
      what: `register ${serviceIds.length} services and ${checkIds.length} checks`,
      run: () => {
        const services = serviceIds.flatMap((id) => this.#services.get(id) ?? [])
        const checks = checkIds.flatMap((id) => {
          const entry = this.#checks.get(id)
          return entry === undefined ? [] : [this.#checkRecord(entry)]
        })
        if (services.length + checks.length === 0) return Promise.resolve()
        return this.#o.writer.register({
          node: nodeRecord({ Node: this.#o.nodeName, Address: '' }), // not written (skipNodeUpdate)
          skipNodeUpdate: true,
          services,
          checks,
        })
      },
      requeue: () => {
        for (const id of serviceIds) this.#dirtyServices.add(id)
        for (const id of checkIds) this.#dirtyChecks.add(id)
      },
    }
  }

  #scheduleRetry(): void {
    if (this.#phase !== 'running' || this.#retryTimer !== undefined) return
    if (this.#retryAttempt >= this.#retry.attemptsMax) {
      this.#o.log.error(
        { attempts: this.#retryAttempt },
        'anti-entropy: catalog writes keep failing; waiting for the next full sync',
      )
      return
    }
    const delayMs = Math.min(this.#retry.delayMsMax, this.#retry.delayMsMin * 2 ** this.#retryAttempt)
    this.#retryAttempt++
    this.#retryTimer = this.#setTimer(() => {
      this.#retryTimer = undefined
      void this.#requestPush()
    }, delayMs)
  }

  /** The node is not in the catalog: say so once, and sync as soon as the view shows it. */
  #onNodeMissing(): void {
    if (!this.#nodeMissingLogged) {
      this.#nodeMissingLogged = true
      this.#o.log.warn(
        { node: this.#o.nodeName },
        'anti-entropy: this node is not in the catalog yet; registrations wait for it',
      )
    }
    if (this.#nodeWait !== undefined || this.#phase !== 'running') return
    const controller = new AbortController()
    this.#nodeWait = controller
    const { catalog, nodeName } = this.#o
    const topic = `node:${nodeName.toLowerCase()}`
    const wait = async (): Promise<void> => {
      // Wait for a change of the node after now, so a view that lags the store cannot spin.
      do {
        await catalog.waitForChange([topic], catalog.indexOf([topic]), controller.signal)
      } while (!controller.signal.aborted && catalog.nodeEntry(nodeName) === undefined)
      this.#nodeWait = undefined
      if (controller.signal.aborted || this.#phase !== 'running') return
      this.#o.log.info({ node: nodeName }, 'anti-entropy: the node is in the catalog; syncing')
      await this.fullSync()
    }
    void wait()
  }

  #scheduleFullSync(): void {
    const ms = this.#o.fullSyncMs ?? fullSyncMsDefault
    const delayMs = ms + Math.floor(this.#random() * (ms / 2))
    this.#fullSyncTimer = this.#setTimer(() => {
      void this.fullSync().finally(() => {
        if (this.#phase === 'running') this.#scheduleFullSync()
      })
    }, delayMs)
  }

  // ---- DeregisterCriticalServiceAfter ----

  #scheduleReap(): void {
    this.#reapTimer = this.#setTimer(() => {
      void this.#reap().finally(() => {
        if (this.#phase === 'running') this.#scheduleReap()
      })
    }, this.#o.reapIntervalMs ?? reapIntervalMsDefault)
  }

  /** Deregisters every service with a check critical for longer than its DeregisterCriticalServiceAfter. */
  async #reap(): Promise<void> {
    const due = new Map<string, string>()
    for (const entry of this.#checks.values()) {
      const afterMs = entry.definition?.deregisterCriticalAfterMs
      if (afterMs === undefined || entry.serviceId === '' || entry.runner === undefined) continue
      if (entry.runner.criticalForMs() >= afterMs) due.set(entry.serviceId, entry.id)
    }
    for (const [serviceId, checkId] of due) {
      if (this.#phase !== 'running') return
      this.#o.log.warn(
        { service: serviceId, check: checkId },
        'agent: check critical longer than DeregisterCriticalServiceAfter; deregistering the service',
      )
      await this.deregisterService(serviceId).catch((error: unknown) => {
        this.#o.log.error({ service: serviceId, err: errorMessage(error) }, 'agent: reaping failed')
      })
    }
  }

  // ---- local state ----

  /**
   * Persists (services, checks), then makes them current: runners of entries that left are
   * stopped, runners of new entries started, changed ids marked dirty and removed ones dead.
   * Returns false, writing nothing, when nothing changed.
   */
  async #commit(services: Map<string, ServiceRecord>, checks: Map<string, LocalCheck>): Promise<boolean> {
    const oldServices = this.#services
    const oldChecks = this.#checks
    if (sameEntries(oldServices, services) && sameEntries(oldChecks, checks)) return false
    const text = encodeLocalState(persistedState(services, checks))
    if (Buffer.byteLength(text) > localStateBytesMax) {
      throw new CairnError(
        'CATALOG_INVALID',
        `the agent's registrations would exceed ${localStateBytesMax} bytes`,
      )
    }
    await writeLocalState(this.#o.dataDir, text)
    this.#services = services
    this.#checks = checks
    for (const [id, record] of services) {
      const old = oldServices.get(id)
      if (old === record) continue
      this.#dirtyServices.add(id)
      if (old !== undefined && (old.Service !== record.Service || !jsonEqual(old.Tags, record.Tags))) {
        for (const entry of checks.values()) if (entry.serviceId === id) this.#dirtyChecks.add(entry.id)
      }
    }
    for (const id of oldServices.keys()) if (!services.has(id)) this.#deadServices.add(id)
    const forgetting = new Map<string, Promise<void>>()
    for (const [id, entry] of oldChecks) {
      if (checks.get(id) === entry) continue
      this.#stopRunner(entry)
      if (!checks.has(id)) this.#deadChecks.set(id, entry.serviceId)
      // Its saved TTL status was the old entry's: deregistered or redefined, it is forgotten.
      if (entry.definition?.kind === 'ttl') forgetting.set(id, this.#forgetTtl(entry))
    }
    for (const [id, entry] of checks) {
      if (oldChecks.get(id) === entry) continue
      this.#dirtyChecks.add(id)
      // A new entry under the same id saves its status only after the old one's is removed.
      const forgotten = forgetting.get(id)
      if (forgotten !== undefined) entry.ttlWrite = forgotten
      this.#startRunner(entry)
    }
    return true
  }

  // ---- TTL statuses across restarts (ttl-check-state.ts) ----

  /** At start: each TTL check whose saved status has not expired starts from it. */
  async #readTtlStates(): Promise<void> {
    const nowMs = this.#wallClock()
    const ttlIds = [...this.#checks.values()].filter((e) => e.definition?.kind === 'ttl').map((e) => e.id)
    const pruned = await pruneTtlCheckStates(this.#o.dataDir, ttlIds).catch(() => 0)
    if (pruned > 0)
      this.#o.log.info({ files: pruned }, 'agent: removed saved TTL statuses of checks that are gone')
    for (const entry of this.#checks.values()) {
      if (entry.definition?.kind !== 'ttl') continue
      const saved = await readTtlCheckState(this.#o.dataDir, entry.id, nowMs)
      if (saved === undefined) continue
      entry.restoredTtl = { status: saved.status, output: saved.output }
      this.#o.log.info({ check: entry.id, status: saved.status }, 'agent: TTL check status restored')
    }
  }

  /**
   * Saves a TTL check's status after an update, with the wall-clock time its TTL runs out. Writes
   * of one check are chained and each writes the runner's state as it is then, so the file ends
   * with the newest status whatever order the updates' writes would finish in. A failed write is
   * logged, not thrown: the update itself took effect, and the saved status is only a hint.
   */
  #persistTtl(entry: LocalCheck): Promise<void> {
    const write = (entry.ttlWrite ?? Promise.resolve()).then(async () => {
      const runner = entry.runner
      const definition = entry.definition
      if (runner === undefined || definition?.kind !== 'ttl' || this.#checks.get(entry.id) !== entry) return
      const { status, output } = runner.state
      const expiresAtMs = this.#wallClock() + definition.ttlMs
      await writeTtlCheckState(this.#o.dataDir, { checkId: entry.id, status, output, expiresAtMs }).catch(
        (error: unknown) =>
          this.#o.log.warn({ check: entry.id, err: errorMessage(error) }, 'agent: TTL status not saved'),
      )
    })
    entry.ttlWrite = write
    return write
  }

  /** Removes a TTL check's saved status once its pending writes are done; never rejects. */
  async #forgetTtl(entry: LocalCheck): Promise<void> {
    await entry.ttlWrite
    await removeTtlCheckState(this.#o.dataDir, entry.id).catch((error: unknown) =>
      this.#o.log.warn({ check: entry.id, err: errorMessage(error) }, 'agent: saved TTL status not removed'),
    )
  }

  async #setMaintenance(checkId: string, maintenance: LocalMaintenance, enable: boolean): Promise<void> {
    const present = this.#checks.has(checkId)
    if (enable === present) return // Consul: enabling twice keeps the first reason
    const checks = new Map(this.#checks)
    if (enable) checks.set(checkId, maintenanceCheck(checkId, maintenance))
    else checks.delete(checkId)
    await this.#commit(this.#services, checks)
    const what = maintenance.serviceId === '' ? 'node' : `service ${maintenance.serviceId}`
    this.#o.log.info(
      { reason: maintenance.reason },
      `agent: ${what} ${enable ? 'entered' : 'left'} maintenance mode`,
    )
  }

  /** The existing entry when its definition is the same (its runner and status carry on), else a new one. */
  #reuseOrNew(
    existing: LocalCheck | undefined,
    definition: CheckDefinition,
    body: Record<string, unknown>,
  ): LocalCheck {
    if (existing?.definition !== undefined && jsonEqual(existing.definition, definition)) return existing
    return definedCheck(definition, body)
  }

  #checkLimits(
    services: Map<string, ServiceRecord>,
    checks: Map<string, LocalCheck>,
    serviceId: string,
  ): void {
    const { servicesMax, checksMax } = this.#limits
    if (services.size > servicesMax) {
      throw new CairnError('CATALOG_INVALID', `this agent has ${servicesMax} services already (servicesMax)`)
    }
    let count = 0
    let ofService = 0
    for (const entry of checks.values()) {
      if (entry.maintenance !== undefined) continue
      count++
      if (serviceId !== '' && entry.serviceId === serviceId) ofService++
    }
    if (count > checksMax) {
      throw new CairnError('CATALOG_INVALID', `this agent has ${checksMax} checks already (checksMax)`)
    }
    if (ofService > serviceChecksMax) {
      throw new CairnError(
        'CATALOG_INVALID',
        `service ${JSON.stringify(serviceId)} would have more than ${serviceChecksMax} checks (serviceChecksMax)`,
      )
    }
  }

  /** Reads the persisted state back through today's validation; what fails it is logged and left out. */
  #restore(state: LocalState): void {
    const log = this.#o.log
    for (const body of state.services) {
      try {
        const { service } = parseServiceDefinition(body, this.#checkOptions)
        if (this.#services.size >= this.#limits.servicesMax) throw new Error('servicesMax reached')
        this.#services.set(service.ID, service)
      } catch (error) {
        log.error(
          { service: body.ID, err: errorMessage(error) },
          'agent: a persisted service was not restored',
        )
      }
    }
    let count = 0
    for (const body of state.checks) {
      try {
        const { definition } = parseCheckDefinition(body, this.#checkOptions)
        const problem =
          reservedCheckIdProblem(definition.id) ??
          (definition.serviceId !== '' && !this.#services.has(definition.serviceId)
            ? 'its service is gone'
            : undefined) ??
          (count >= this.#limits.checksMax ? 'checksMax reached' : undefined)
        if (problem !== undefined) throw new Error(problem)
        this.#checks.set(definition.id, definedCheck(definition, body))
        count++
      } catch (error) {
        log.error({ check: body.ID, err: errorMessage(error) }, 'agent: a persisted check was not restored')
      }
    }
    for (const m of state.maintenance) {
      if (m.serviceId !== '' && !this.#services.has(m.serviceId)) continue
      const id = m.serviceId === '' ? nodeMaintenanceCheckId : serviceMaintenanceCheckPrefix + m.serviceId
      this.#checks.set(id, maintenanceCheck(id, m))
    }
    log.info(
      { services: this.#services.size, checks: this.#checks.size },
      'agent: local registrations restored',
    )
  }

  #checkRecord(entry: LocalCheck): CheckRecord {
    const service = entry.serviceId === '' ? undefined : this.#services.get(entry.serviceId)
    const state = entry.runner?.state
    const status: CheckStatus =
      entry.maintenance !== undefined ? 'critical' : (state?.status ?? entry.definition?.status ?? 'critical')
    return {
      CheckID: entry.id,
      Name: entry.name,
      Status: status,
      Notes: entry.notes,
      Output: state?.output ?? '',
      ServiceID: entry.serviceId,
      ServiceName: service?.Service ?? '',
      ServiceTags: service === undefined ? [] : [...service.Tags],
      Type: entry.type,
      Definition: entry.view,
    }
  }

  #startRunner(entry: LocalCheck): void {
    if (this.#phase !== 'running' || entry.definition === undefined || entry.runner !== undefined) return
    const restored = entry.restoredTtl
    entry.restoredTtl = undefined // a later runner of this entry starts afresh
    const runner = new CheckRunner(entry.definition, {
      onChange: (change) => this.#onCheckChange(entry, change),
      clock: this.#clock,
      ...(restored !== undefined ? { initial: restored } : {}),
      ...(this.#o.checkFirstRunDelayMs !== undefined || entry.firstRunDelayMs !== undefined
        ? { firstRunDelayMs: this.#o.checkFirstRunDelayMs ?? entry.firstRunDelayMs }
        : {}),
    })
    entry.runner = runner
    runner.start()
  }

  #stopRunner(entry: LocalCheck): void {
    const runner = entry.runner
    if (runner === undefined) return
    const stopping = runner.stop().finally(() => this.#stopping.delete(stopping))
    this.#stopping.add(stopping)
  }

  /**
   * Calls `listener` with the service id each time a check of a service changes status (the unit
   * runner reports a unit's health at once, not at its next poll). Returns the unsubscribe.
   */
  onServiceCheckChange(listener: (serviceId: string) => void): () => void {
    this.#checkListeners.add(listener)
    return () => this.#checkListeners.delete(listener)
  }

  #onCheckChange(entry: LocalCheck, change: CheckChange): void {
    if (this.#checks.get(entry.id) !== entry || this.#phase !== 'running') return
    if (change.status !== change.previousStatus) {
      this.#o.log.info(
        { check: entry.id, service: entry.serviceId, status: change.status, previous: change.previousStatus },
        'agent: check status changed',
      )
      if (entry.serviceId !== '') for (const listener of this.#checkListeners) listener(entry.serviceId)
    }
    this.#dirtyChecks.add(entry.id)
    void this.#requestPush()
  }

  // ---- plumbing ----

  #assertRunning(): void {
    if (this.#phase !== 'running') throw new Error(`LocalRegistry: not running (${this.#phase})`)
  }

  /** Runs `fn` after every earlier locked call has ended (a mutex over the maps and the file). */
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn)
    this.#lock = run.catch(() => {})
    return run
  }

  #setTimer(fn: () => void, ms: number): unknown {
    const handle = this.#clock.setTimeout(fn, ms)
    ;(handle as { unref?: () => void } | undefined)?.unref?.() // timers never keep the process alive
    return handle
  }
}

function checkReason(reason: string): void {
  if (typeof reason !== 'string') throw new CairnError('CATALOG_INVALID', 'reason: expected a string')
  if (Buffer.byteLength(reason) > maintenanceReasonBytesMax) {
    throw new CairnError('CATALOG_INVALID', `reason: longer than ${maintenanceReasonBytesMax} bytes`)
  }
}

function definedCheck(definition: CheckDefinition, body: Record<string, unknown>): LocalCheck {
  return {
    id: definition.id,
    name: definition.name,
    serviceId: definition.serviceId,
    notes: definition.notes,
    type: definition.kind,
    view: definitionView(definition),
    definition,
    body,
    maintenance: undefined,
    runner: undefined,
  }
}

function maintenanceCheck(id: string, maintenance: LocalMaintenance): LocalCheck {
  const node = maintenance.serviceId === ''
  const notesDefault = node ? nodeMaintenanceNotesDefault : serviceMaintenanceNotesDefault
  return {
    id,
    name: node ? 'Node Maintenance Mode' : 'Service Maintenance Mode',
    serviceId: maintenance.serviceId,
    notes: maintenance.reason === '' ? notesDefault : maintenance.reason,
    type: 'maintenance',
    view: {},
    definition: undefined,
    body: undefined,
    maintenance,
    runner: undefined,
  }
}

/**
 * Consul's Definition object for display, as strings. Header and Body are left out: they may
 * carry credentials, and the record is rewritten on every status change.
 */
function definitionView(d: CheckDefinition): Record<string, unknown> {
  const view: Record<string, unknown> = {}
  switch (d.kind) {
    case 'http':
      Object.assign(view, { HTTP: d.url, Method: d.method })
      if (d.disableRedirects) view.DisableRedirects = true
      break
    case 'tcp':
      view.TCP = d.host.includes(':') ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`
      break
    case 'script':
      view.ScriptArgs = [...d.args]
      break
    case 'ttl':
      view.TTL = formatDurationMs(d.ttlMs)
      break
  }
  if (d.kind !== 'ttl') {
    view.Interval = formatDurationMs(d.intervalMs)
    view.Timeout = formatDurationMs(d.timeoutMs)
  }
  if (d.deregisterCriticalAfterMs !== undefined) {
    view.DeregisterCriticalServiceAfter = formatDurationMs(d.deregisterCriticalAfterMs)
  }
  return view
}

function persistedState(services: Map<string, ServiceRecord>, checks: Map<string, LocalCheck>): LocalState {
  const entries = [...checks.values()].sort((a, b) => compare(a.id, b.id))
  return {
    services: [...services.values()].sort((a, b) => compare(a.ID, b.ID)).map(serviceBody),
    checks: entries.flatMap((entry) => (entry.body === undefined ? [] : [entry.body])),
    maintenance: entries.flatMap((entry) => (entry.maintenance === undefined ? [] : [entry.maintenance])),
  }
}

function sameCheck(local: CheckRecord, remote: CheckRecord, statusKnown: boolean): boolean {
  if (!statusKnown)
    return jsonEqual({ ...local, Status: '', Output: '' }, { ...remote, Status: '', Output: '' })
  return jsonEqual(local, remote)
}

function sameEntries<V>(a: Map<string, V>, b: Map<string, V>): boolean {
  if (a.size !== b.size) return false
  for (const [key, value] of a) if (b.get(key) !== value) return false
  return true
}

/** Deep equality of JSON-shaped values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]))
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  if (ka.length !== kb.length) return false
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** Errors where the store refused this one write (a limit, a bad name): retrying it at once is useless. */
function isDefinitive(error: unknown): boolean {
  return isCairnError(error) && (error.code.startsWith('KV_') || error.code === 'CATALOG_INVALID')
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
