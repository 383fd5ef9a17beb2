/**
 * The lease table: v3-style leases with a TTL, an absolute deadline and the keys attached to them.
 *
 * A lease's deadline is replicated state (set by the grant or keep-alive command from the proposer's
 * stamped clock), so a new leader sees the remaining time, not a fresh TTL (etcd #9888). Expiry is
 * never decided here: `due(now)` only lists leases for the leader to propose an `expire` for.
 *
 * Invariants: ids are positive safe integers; `nextId` is greater than every id it handed out;
 * a key is in `lease.keys` exactly when the key's node has `lease === id` (the keyspace keeps this).
 */
import { DeadlineIndex } from './deadline-index.ts'

export interface Lease {
  readonly id: number
  ttlMs: number
  deadlineMs: number
  readonly keys: Set<string>
}

/** What a reader may see of a lease. */
export interface LeaseInfo {
  id: number
  ttlMs: number
  deadlineMs: number
  keys: string[]
}

export class LeaseTable {
  #leases = new Map<number, Lease>()
  #deadlines = new DeadlineIndex()
  #nextId = 1

  get size(): number {
    return this.#leases.size
  }

  get nextId(): number {
    return this.#nextId
  }

  get(id: number): Lease | undefined {
    return this.#leases.get(id)
  }

  /** The next free automatic id (deterministic: the same on every member). */
  allocateId(): number {
    while (this.#leases.has(this.#nextId)) this.#nextId++
    return this.#nextId++
  }

  grant(id: number, ttlMs: number, deadlineMs: number): Lease {
    if (this.#leases.has(id)) throw new Error(`lease table: lease ${id} already exists`)
    const lease: Lease = { id, ttlMs, deadlineMs, keys: new Set() }
    this.#leases.set(id, lease)
    this.#deadlines.set(String(id), deadlineMs)
    if (id >= this.#nextId) this.#nextId = id + 1
    return lease
  }

  setDeadline(lease: Lease, deadlineMs: number): void {
    lease.deadlineMs = deadlineMs
    this.#deadlines.set(String(lease.id), deadlineMs)
  }

  /** Forgets the lease (its keys must already be gone or detached). */
  remove(id: number): void {
    const lease = this.#leases.get(id)
    if (lease === undefined) return
    if (lease.keys.size !== 0) throw new Error(`lease table: removing lease ${id} with keys attached`)
    this.#leases.delete(id)
    this.#deadlines.set(String(id), undefined)
  }

  attach(id: number, key: string): void {
    const lease = this.#leases.get(id)
    if (lease === undefined) throw new Error(`lease table: attach to missing lease ${id}`)
    lease.keys.add(key)
  }

  detach(id: number, key: string): void {
    this.#leases.get(id)?.keys.delete(key)
  }

  /** Ids of leases whose deadline is <= nowMs, earliest first. */
  due(nowMs: number, countMax: number): number[] {
    return this.#deadlines.due(nowMs, countMax).map(Number)
  }

  /** Every lease, by id. */
  sorted(): Lease[] {
    return [...this.#leases.values()].sort((a, b) => a.id - b.id)
  }

  info(id: number): LeaseInfo | undefined {
    const lease = this.#leases.get(id)
    if (lease === undefined) return undefined
    return { id, ttlMs: lease.ttlMs, deadlineMs: lease.deadlineMs, keys: [...lease.keys].sort() }
  }

  /** Restores the id counter from a snapshot. */
  setNextId(nextId: number): void {
    this.#nextId = nextId
  }
}
