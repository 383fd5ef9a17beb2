/**
 * CatalogState: the agent's in-memory copy of the catalog records (records.ts), fed in revision
 * order by a keyspace watch (feed.ts), answering every catalog, health and DNS query without a Raft
 * round trip. It implements CatalogView, so the DNS server reads it directly.
 *
 * Health: an instance's status is the worst of its own checks, its node's node-level checks, and,
 * for a node an agent owns (NodeRecord.Agent), the machine check `serfHealth`, which is passing
 * while the node's machine key exists and critical once it is gone (the machine lease expired).
 * On a failed machine every service check is also reported critical, with the stored status named
 * in its Output: a dead machine's instances look dead in the catalog too, not only through a node
 * check (Consul's long-standing complaint, hashicorp/consul#646).
 *
 * Topics and blocking queries: every applied change bumps the topics whose answers it can change
 * to the change's revision: `nodes`, `services`, `checks`, `node:<name>`, `service:<name>` (names
 * lower-cased). A topic never changed since the state was loaded reads as the load revision. A
 * blocking query waits on its topics only, so a change to service A never wakes a watcher of B, and
 * a watcher of a service that does not exist waits quietly until it appears.
 *
 * Invariants:
 * - `revision` and every topic revision only increase; a topic revision <= `revision`.
 * - Queries return fresh arrays of frozen-by-convention records; callers never mutate them.
 * - Waiters are woken only from flush(), after a whole revision has been applied, so a woken
 *   query never sees half of a transaction.
 * - Lookups are O(answer): by node or by service name, never a scan of the catalog, except the
 *   list endpoints (nodes, services, checks in a state) whose answer is the whole list anyway.
 */
import { isIP } from 'node:net'
import type { KvEvent } from '../kv/events.ts'
import type { KeyValue } from '../kv/mvcc.ts'
import {
  type CheckRecord,
  type CheckStatus,
  checkKey,
  checkStatusRank,
  decodeCheck,
  decodeMachine,
  decodeNode,
  decodeService,
  type MachineRecord,
  machineKey,
  type NodeRecord,
  nodeKey,
  parseCatalogKey,
  type ServiceRecord,
  serviceKey,
} from './records.ts'
import type { CatalogNode, CatalogView, HealthStatus, ServiceInstance } from './view.ts'

export interface Stored<R> {
  readonly record: R
  readonly createRevision: number
  readonly modRevision: number
}

/** A check as the health endpoints show it: the record plus its node and indexes. */
export interface HealthCheckView extends CheckRecord {
  Node: string
  CreateIndex: number
  ModifyIndex: number
}

export interface ServiceEntry {
  readonly node: Stored<NodeRecord>
  readonly service: Stored<ServiceRecord>
  /** Node-level checks first (serfHealth leading), then the service's own, each by CheckID. */
  readonly checks: HealthCheckView[]
  readonly status: CheckStatus
}

/** The machine check Consul calls serfHealth; synthesized from the machine key. */
export const machineCheckId = 'serfHealth'
export const machineCheckName = 'Serf Health Status'

interface MachineState {
  alive: boolean
  record: MachineRecord | undefined
  /** Revision of the last change (the put, or the deletion that marked it failed). */
  revision: number
}

type Waiter = () => void

export class CatalogState implements CatalogView {
  #revision = 0
  #loadedRevision = 0
  readonly #nodes = new Map<string, Stored<NodeRecord>>()
  readonly #machines = new Map<string, MachineState>()
  /** node (lower) → service id → service. */
  readonly #services = new Map<string, Map<string, Stored<ServiceRecord>>>()
  /** service name (lower) → `${node}\0${id}` → [node lower, service id]. */
  readonly #byName = new Map<string, Map<string, readonly [string, string]>>()
  /** node (lower) → check id → check. */
  readonly #checks = new Map<string, Map<string, Stored<CheckRecord>>>()
  readonly #topics = new Map<string, number>()
  readonly #changed = new Set<string>()
  readonly #waiters = new Map<string, Set<Waiter>>()
  readonly #reachedWaiters = new Set<Waiter>()

  /** The revision of the last change applied (the DNS cache's key). */
  get revision(): number {
    return this.#revision
  }

  get loadedRevision(): number {
    return this.#loadedRevision
  }

  /** Replaces everything with the records of one range read at `revision`. */
  load(revision: number, kvs: readonly KeyValue[]): void {
    this.#nodes.clear()
    this.#machines.clear()
    this.#services.clear()
    this.#byName.clear()
    this.#checks.clear()
    this.#topics.clear()
    for (const kv of kvs) this.#put(kv.key, kv.value, kv.createRevision, kv.modRevision)
    this.#changed.clear()
    this.#revision = revision
    this.#loadedRevision = revision
    this.#wakeAll()
    this.#wakeReached()
  }

  /** Applies one watch event (events arrive in revision order). */
  apply(event: KvEvent): void {
    if (event.refresh) return
    const key = event.key
    const removed =
      event.action === 'delete' || event.action === 'expire' || event.action === 'compareAndDelete'
    if (event.removesDir) this.#removeBelow(key, event.revision)
    else if (removed) this.#remove(key, event.revision)
    else if (event.node.value !== undefined) {
      this.#put(key, event.node.value, event.node.createdIndex, event.revision)
    }
    if (event.revision > this.#revision) this.#revision = event.revision
  }

  /** Ends a batch of whole revisions: stamps the changed topics and wakes their waiters. */
  flush(): void {
    this.#wakeReached()
    if (this.#changed.size === 0) return
    const woken: Waiter[] = []
    for (const topic of this.#changed) {
      this.#topics.set(topic, this.#revision)
      const waiters = this.#waiters.get(topic)
      if (waiters !== undefined) woken.push(...waiters)
    }
    this.#changed.clear()
    for (const wake of new Set(woken)) wake()
  }

  /** The revision at which `topic` last changed (the load revision if never since). */
  topicRevision(topic: string): number {
    return this.#topics.get(topic) ?? this.#loadedRevision
  }

  /** The greatest revision of the topics, at least 1 (Consul clients treat 0 as a busy loop). */
  indexOf(topics: readonly string[]): number {
    let index = 1
    for (const topic of topics) index = Math.max(index, this.topicRevision(topic))
    return index
  }

  /**
   * Resolves when any of `topics` changed after `afterRevision`, or when `signal` aborts. Never
   * rejects.
   */
  waitForChange(topics: readonly string[], afterRevision: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.indexOf(topics) > afterRevision) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        for (const topic of topics) {
          const set = this.#waiters.get(topic)
          set?.delete(wake)
          if (set?.size === 0) this.#waiters.delete(topic)
        }
        signal.removeEventListener('abort', done)
        resolve()
      }
      const wake = (): void => {
        if (this.indexOf(topics) > afterRevision) done()
      }
      for (const topic of topics) {
        let set = this.#waiters.get(topic)
        if (set === undefined) this.#waiters.set(topic, (set = new Set()))
        set.add(wake)
      }
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * Resolves once the state has applied `revision` (or was loaded at or past it), or when
   * `signal` aborts. Never rejects. A client agent's read barrier waits here.
   */
  reached(revision: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.#revision >= revision) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.#reachedWaiters.delete(wake)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const wake = (): void => {
        if (this.#revision >= revision) done()
      }
      this.#reachedWaiters.add(wake)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  #wakeReached(): void {
    for (const wake of [...this.#reachedWaiters]) wake()
  }

  /** Waiting blocking queries, for metrics and tests. */
  get waiterCount(): number {
    let count = 0
    for (const set of this.#waiters.values()) count += set.size
    return count
  }

  // ---- queries ----

  nodes(): Stored<NodeRecord>[] {
    return [...this.#nodes.values()].sort((a, b) => compare(a.record.Node, b.record.Node))
  }

  nodeEntry(name: string): Stored<NodeRecord> | undefined {
    return this.#nodes.get(name.toLowerCase())
  }

  /** undefined: the node is not agent-owned (or unknown), so it has no liveness. */
  machineAlive(name: string): boolean | undefined {
    const node = this.#nodes.get(name.toLowerCase())
    if (node === undefined || !node.record.Agent) return undefined
    return this.#machines.get(name.toLowerCase())?.alive === true
  }

  nodeServices(name: string): Stored<ServiceRecord>[] {
    const services = this.#services.get(name.toLowerCase())
    if (services === undefined) return []
    return [...services.values()].sort((a, b) => compare(a.record.ID, b.record.ID))
  }

  /** Every check of the node as the health API shows it, serfHealth included. */
  nodeChecks(name: string): HealthCheckView[] {
    const lower = name.toLowerCase()
    return this.#checkViews(lower, this.#nodes.get(lower), name, () => true, byCheckId)
  }

  /** Service names with the union of their instances' tags, by name. */
  serviceNames(): Map<string, string[]> {
    const out = new Map<string, Set<string>>()
    for (const instances of this.#byName.values()) {
      for (const [node, id] of instances.values()) {
        const stored = this.#services.get(node)?.get(id)
        if (stored === undefined) continue
        let tags = out.get(stored.record.Service)
        if (tags === undefined) out.set(stored.record.Service, (tags = new Set()))
        for (const tag of stored.record.Tags) tags.add(tag)
      }
    }
    const sorted = new Map<string, string[]>()
    for (const name of [...out.keys()].sort(compare))
      sorted.set(name, [...(out.get(name) ?? [])].sort(compare))
    return sorted
  }

  /** Every instance of the service (whatever its health), by node then id. */
  serviceEntries(service: string): ServiceEntry[] {
    const instances = this.#byName.get(service.toLowerCase())
    if (instances === undefined) return []
    const out: ServiceEntry[] = []
    for (const [nodeLower, id] of instances.values()) {
      const entry = this.#entry(nodeLower, id)
      if (entry !== undefined) out.push(entry)
    }
    return out.sort(
      (a, b) =>
        compare(a.node.record.Node, b.node.record.Node) || compare(a.service.record.ID, b.service.record.ID),
    )
  }

  /** The checks of every instance of the service (its own checks only, as Consul's /health/checks). */
  serviceChecks(service: string): HealthCheckView[] {
    const out: HealthCheckView[] = []
    for (const entry of this.serviceEntries(service)) {
      for (const check of entry.checks) if (check.ServiceID === entry.service.record.ID) out.push(check)
    }
    return out
  }

  /** Every check (serfHealth included) in `state`, or all of them for 'any'. */
  checksInState(state: CheckStatus | 'any'): HealthCheckView[] {
    const out: HealthCheckView[] = []
    for (const node of this.nodes()) {
      for (const check of this.nodeChecks(node.record.Node))
        if (state === 'any' || check.Status === state) out.push(check)
    }
    return out
  }

  // ---- CatalogView (DNS) ----

  serviceInstances(service: string, tag?: string): readonly ServiceInstance[] {
    const out: ServiceInstance[] = []
    const wanted = tag?.toLowerCase()
    for (const entry of this.serviceEntries(service)) {
      const svc = entry.service.record
      if (wanted !== undefined && !svc.Tags.some((t) => t.toLowerCase() === wanted)) continue
      const address = svc.Address !== '' ? svc.Address : entry.node.record.Address
      if (isIP(address) === 0) continue // a host name: DNS answers only addresses (docs/catalog.md)
      out.push({
        id: svc.ID,
        service: svc.Service,
        node: entry.node.record.Node,
        address,
        port: svc.Port,
        tags: svc.Tags,
        status: entry.status as HealthStatus,
      })
    }
    return out
  }

  hasService(service: string): boolean {
    return this.#byName.has(service.toLowerCase())
  }

  node(name: string): CatalogNode | undefined {
    const stored = this.#nodes.get(name.toLowerCase())
    if (stored === undefined || isIP(stored.record.Address) === 0) return undefined
    return { name: stored.record.Node, address: stored.record.Address, meta: stored.record.Meta }
  }

  // ---- internals ----

  #entry(nodeLower: string, id: string): ServiceEntry | undefined {
    const node = this.#nodes.get(nodeLower)
    const service = this.#services.get(nodeLower)?.get(id)
    if (node === undefined || service === undefined) return undefined // a service before its node
    const checks = this.#checkViews(
      nodeLower,
      node,
      node.record.Node,
      (c) => c.ServiceID === '' || c.ServiceID === id,
      nodeLevelFirst,
    )
    let status: CheckStatus = 'passing'
    for (const check of checks)
      if (checkStatusRank[check.Status] > checkStatusRank[status]) status = check.Status
    return { node, service, checks, status }
  }

  /**
   * The node's checks that `keep` selects, as the health API shows them: serfHealth first (for an
   * agent node), then the stored checks in `order`, each reported critical if the machine failed.
   */
  #checkViews(
    nodeLower: string,
    node: Stored<NodeRecord> | undefined,
    nodeName: string,
    keep: (check: CheckRecord) => boolean,
    order: (a: CheckRecord, b: CheckRecord) => number,
  ): HealthCheckView[] {
    const out: HealthCheckView[] = []
    const machine = node === undefined ? undefined : this.#machineCheck(nodeLower, node)
    if (machine !== undefined) out.push(machine)
    const failed = machine?.Status === 'critical'
    const stored = [...(this.#checks.get(nodeLower)?.values() ?? [])].filter((c) => keep(c.record))
    stored.sort((a, b) => order(a.record, b.record))
    for (const check of stored) out.push(this.#checkView(node?.record.Node ?? nodeName, check, failed))
    return out
  }

  #machineCheck(nodeLower: string, node: Stored<NodeRecord>): HealthCheckView | undefined {
    if (!node.record.Agent) return undefined
    const machine = this.#machines.get(nodeLower)
    const alive = machine?.alive === true
    return {
      Node: node.record.Node,
      CheckID: machineCheckId,
      Name: machineCheckName,
      Status: alive ? 'passing' : 'critical',
      Notes: '',
      Output: alive
        ? 'Agent alive and reachable'
        : 'Machine failed: its lease expired (the agent is dead or cut off from the servers)',
      ServiceID: '',
      ServiceName: '',
      ServiceTags: [],
      Type: '',
      Definition: {},
      CreateIndex: node.createRevision,
      ModifyIndex: Math.max(node.createRevision, machine?.revision ?? 0),
    }
  }

  #checkView(nodeName: string, stored: Stored<CheckRecord>, machineFailed: boolean): HealthCheckView {
    const view: HealthCheckView = {
      ...stored.record,
      Node: nodeName,
      CreateIndex: stored.createRevision,
      ModifyIndex: stored.modRevision,
    }
    if (machineFailed && view.Status !== 'critical') {
      view.Output = `Machine failed (the check's last reported status was ${view.Status}). ${view.Output}`
      view.Status = 'critical'
    }
    return view
  }

  #put(key: string, value: string, createRevision: number, modRevision: number): void {
    const parsed = parseCatalogKey(key)
    if (parsed === undefined) return
    const nodeLower = parsed.node.toLowerCase()
    switch (parsed.kind) {
      case 'node': {
        const record = decodeNode(value)
        if (record === undefined) {
          this.#remove(key, modRevision)
          return
        }
        this.#nodes.set(nodeLower, { record, createRevision, modRevision })
        this.#touchNode(nodeLower, true)
        return
      }
      case 'machine': {
        const record = decodeMachine(value)
        this.#machines.set(nodeLower, { alive: record !== undefined, record, revision: modRevision })
        this.#touchNode(nodeLower, true)
        this.#changed.add('checks')
        return
      }
      case 'service': {
        const record = decodeService(value)
        this.#dropService(nodeLower, parsed.id)
        if (record === undefined) return
        let services = this.#services.get(nodeLower)
        if (services === undefined) this.#services.set(nodeLower, (services = new Map()))
        services.set(parsed.id, { record, createRevision, modRevision })
        const name = record.Service.toLowerCase()
        let instances = this.#byName.get(name)
        if (instances === undefined) this.#byName.set(name, (instances = new Map()))
        instances.set(`${nodeLower}\0${parsed.id}`, [nodeLower, parsed.id])
        this.#changed.add(`service:${name}`).add('services').add(`node:${nodeLower}`)
        return
      }
      case 'check': {
        const record = decodeCheck(value)
        this.#dropCheck(nodeLower, parsed.id)
        if (record === undefined) return
        let checks = this.#checks.get(nodeLower)
        if (checks === undefined) this.#checks.set(nodeLower, (checks = new Map()))
        checks.set(parsed.id, { record, createRevision, modRevision })
        this.#touchCheck(nodeLower, record)
        return
      }
    }
  }

  #remove(key: string, revision: number): void {
    const parsed = parseCatalogKey(key)
    if (parsed === undefined) return
    const nodeLower = parsed.node.toLowerCase()
    switch (parsed.kind) {
      case 'node':
        if (this.#nodes.delete(nodeLower)) this.#touchNode(nodeLower, true)
        return
      case 'machine': {
        const machine = this.#machines.get(nodeLower)
        if (machine === undefined) return
        this.#machines.set(nodeLower, { alive: false, record: machine.record, revision })
        this.#touchNode(nodeLower, true)
        this.#changed.add('checks')
        return
      }
      case 'service':
        this.#dropService(nodeLower, parsed.id)
        return
      case 'check':
        this.#dropCheck(nodeLower, parsed.id)
        return
    }
  }

  /** A removed directory: every record below it goes (only hand-made deletions do this). */
  #removeBelow(dirKey: string, revision: number): void {
    const prefix = `${dirKey}/`
    const keys: string[] = []
    for (const lower of this.#nodes.keys()) keys.push(nodeKey(lower))
    for (const lower of this.#machines.keys()) keys.push(machineKey(lower))
    for (const [lower, services] of this.#services)
      for (const id of services.keys()) keys.push(serviceKey(lower, id))
    for (const [lower, checks] of this.#checks) for (const id of checks.keys()) keys.push(checkKey(lower, id))
    for (const key of keys) if (key.startsWith(prefix)) this.#remove(key, revision)
  }

  #dropService(nodeLower: string, id: string): void {
    const services = this.#services.get(nodeLower)
    const stored = services?.get(id)
    if (services === undefined || stored === undefined) return
    services.delete(id)
    if (services.size === 0) this.#services.delete(nodeLower)
    const name = stored.record.Service.toLowerCase()
    const instances = this.#byName.get(name)
    instances?.delete(`${nodeLower}\0${id}`)
    if (instances?.size === 0) this.#byName.delete(name)
    this.#changed.add(`service:${name}`).add('services').add(`node:${nodeLower}`)
  }

  #dropCheck(nodeLower: string, id: string): void {
    const checks = this.#checks.get(nodeLower)
    const stored = checks?.get(id)
    if (checks === undefined || stored === undefined) return
    checks.delete(id)
    if (checks.size === 0) this.#checks.delete(nodeLower)
    this.#touchCheck(nodeLower, stored.record)
  }

  #touchCheck(nodeLower: string, record: CheckRecord): void {
    this.#changed.add('checks').add(`node:${nodeLower}`)
    if (record.ServiceID === '') {
      this.#touchNode(nodeLower, false)
      return
    }
    const service = this.#services.get(nodeLower)?.get(record.ServiceID)
    if (service !== undefined) this.#changed.add(`service:${service.record.Service.toLowerCase()}`)
  }

  /** Something every instance on the node depends on changed. */
  #touchNode(nodeLower: string, nodeList: boolean): void {
    this.#changed.add(`node:${nodeLower}`)
    // A node appearing or going adds or removes its serfHealth check, so the check lists change too.
    if (nodeList) this.#changed.add('nodes').add('checks')
    for (const stored of this.#services.get(nodeLower)?.values() ?? []) {
      this.#changed.add(`service:${stored.record.Service.toLowerCase()}`)
    }
  }

  #wakeAll(): void {
    const all = new Set<Waiter>()
    for (const set of this.#waiters.values()) for (const wake of set) all.add(wake)
    for (const wake of all) wake()
  }
}

const byCheckId = (a: CheckRecord, b: CheckRecord): number => compare(a.CheckID, b.CheckID)

/** Node-level checks (no ServiceID) before the service's own, each by CheckID. */
const nodeLevelFirst = (a: CheckRecord, b: CheckRecord): number =>
  Number(a.ServiceID !== '') - Number(b.ServiceID !== '') || byCheckId(a, b)

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
