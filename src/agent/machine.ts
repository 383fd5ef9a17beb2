/**
 * The machine lease: how the catalog knows this agent's machine is alive.
 *
 * At start the agent writes its node record (NodeRecord with Agent: true, the --metadata pairs as
 * Meta) and grants a lease of `ttlMs`; the machine key (records.ts) is attached to that lease and
 * kept alive every `keepAliveMs`. When the agent dies or is cut off from the servers, the lease
 * expires on the leader, the keyspace deletes the machine key, and every agent's catalog marks the
 * machine failed (serfHealth critical, its instances out of DNS and ?passing). Detection takes at
 * most ttlMs plus the leader's expiry sweep (500 ms): 3.5 s with the defaults.
 *
 * Invariants:
 * - The machine key is only ever written attached to a lease this agent holds; it is never written
 *   without a lease, so it can never outlive the agent.
 * - Flap damping: after losing its lease (a keep-alive answered KV_LEASE_NOT_FOUND), the agent
 *   grants a new lease at once but writes the machine key again only after `rejoinStableMs` of
 *   successful keep-alives, so a machine on a flaky link does not bounce its instances in and out
 *   of DNS on every blip. The first start writes the key at once.
 * - A keep-alive is sent every keepAliveMs even when an earlier one has not answered (it may be
 *   stuck on a leader that died): the tick waits at most one interval for it. stop() waits for the
 *   current tick and, when asked to, revokes the lease (a clean leave is seen at once instead of
 *   after the TTL).
 * - Fence deadline (for the unit runner's self-fencing): the send time, on the monotonic clock, of
 *   the latest grant or keep-alive of the current lease that was acknowledged, plus the TTL. The
 *   leader set the lease's deadline to its own now + TTL when it applied that request, which was
 *   after the send, so the lease cannot expire on the servers before fenceDeadlineMs (clock rates
 *   assumed equal; drift over one TTL is far below the expiry sweep). It only moves forward for a
 *   lease, is undefined while no lease is held, and a late acknowledgement (after the tick gave up
 *   on it) still counts. Listeners (onLeaseChange) hear every acknowledgement, status change and
 *   loss.
 */
import { createHash } from 'node:crypto'
import { nodeRecord } from '../catalog/records.ts'
import type { CatalogWriter } from '../catalog/writer.ts'
import { isCairnError } from '../errors.ts'
import type { KvStore } from '../kv/kv-store.ts'

/** Machine lease TTL: failure detection within ttl + the 500 ms expiry sweep (issue 5: at most 5 s). */
export const machineTtlMsDefault = 3_000
/** Contact needed after a lost lease before the machine is served again (flap damping). */
export const machineRejoinStableMsDefault = 3_000

export interface MachineOptions {
  store: Pick<KvStore, 'leaseGrant' | 'leaseKeepAlive' | 'leaseRevoke'>
  writer: CatalogWriter
  node: string
  address: string
  datacenter: string
  meta: Record<string, string>
  ttlMs?: number
  /** Default ttlMs / 3. */
  keepAliveMs?: number
  rejoinStableMs?: number
  clock?: () => number
  /** The monotonic clock of the fence deadline; default performance.now. */
  monotonic?: () => number
  /** The agent's client URL (`http://127.0.0.1:4001`), written as MachineRecord.Api. */
  api?: string
  /**
   * Whether the catalog still holds this node and its machine key (the agent's catalog copy);
   * when it answers false while the lease is alive, the next keep-alive writes both again.
   */
  registered?: () => boolean
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
}

export type MachineStatus = 'starting' | 'alive' | 'rejoining' | 'lost' | 'stopped'

/** A stable UUID-shaped node id derived from the node name (Consul node ids are UUIDs). */
export function nodeIdOf(node: string): string {
  const hex = createHash('sha256').update(`cairn-node:${node.toLowerCase()}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

export class MachineLease {
  readonly #options: MachineOptions
  readonly #ttlMs: number
  readonly #keepAliveMs: number
  readonly #rejoinStableMs: number
  readonly #clock: () => number
  #status: MachineStatus = 'starting'
  #lease = 0
  #leaseSince = 0
  #timer: NodeJS.Timeout | undefined
  #inFlight: Promise<void> = Promise.resolve()
  #losses = 0
  readonly #monotonic: () => number
  #fenceDeadlineMs: number | undefined
  readonly #listeners = new Set<() => void>()

  constructor(options: MachineOptions) {
    this.#options = options
    this.#ttlMs = options.ttlMs ?? machineTtlMsDefault
    this.#keepAliveMs = options.keepAliveMs ?? Math.max(100, Math.floor(this.#ttlMs / 3))
    this.#rejoinStableMs = options.rejoinStableMs ?? machineRejoinStableMsDefault
    this.#clock = options.clock ?? Date.now
    this.#monotonic = options.monotonic ?? (() => performance.now())
  }

  /**
   * On the monotonic clock: the lease cannot have expired on the servers before this time (see the
   * header); undefined while no lease is held or none was acknowledged.
   */
  get fenceDeadlineMs(): number | undefined {
    return this.#fenceDeadlineMs
  }

  /** Calls `listener` after every acknowledgement, status change and loss; returns the unsubscribe. */
  onLeaseChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener()
      } catch (error) {
        this.#options.log?.warn({ err: String(error) }, 'machine lease: a listener failed')
      }
    }
  }

  /** An acknowledgement of a request for `lease` sent at `sentMs` (monotonic). */
  #acknowledged(lease: number, sentMs: number): void {
    if (lease !== this.#lease || this.#status === 'stopped') return
    const deadline = sentMs + this.#ttlMs
    if (this.#fenceDeadlineMs === undefined || deadline > this.#fenceDeadlineMs)
      this.#fenceDeadlineMs = deadline
    this.#notify()
  }

  #setStatus(status: MachineStatus): void {
    if (this.#status === status) return
    this.#status = status
    this.#notify()
  }

  get status(): MachineStatus {
    return this.#status
  }

  /** The lease the machine key is attached to (0 while none is held). */
  get lease(): number {
    return this.#lease
  }

  /** Times the lease was found expired (for metrics). */
  get losses(): number {
    return this.#losses
  }

  /** Writes the node record, grants the lease and writes the machine key; then keeps it alive. */
  async start(): Promise<void> {
    await this.#writeNode()
    await this.#grant()
    await this.#putMachine()
    if ((this.#status as MachineStatus) === 'stopped') return
    this.#setStatus('alive')
    this.#schedule()
  }

  /**
   * start(), retried every keep-alive interval until it succeeds or stop() is called (a member
   * that has just started may not know a leader yet). Settles once the machine is registered, or
   * when stopped first.
   */
  begin(): Promise<void> {
    return new Promise((resolve) => {
      const attempt = (): void => {
        if (this.#status === 'stopped') {
          resolve()
          return
        }
        this.#inFlight = this.start().then(resolve, () => {
          if (this.#status === 'stopped') {
            resolve()
            return
          }
          const timer = setTimeout(attempt, this.#keepAliveMs)
          timer.unref?.()
        })
      }
      attempt()
    })
  }

  async stop(options: { revoke: boolean } = { revoke: true }): Promise<void> {
    if (this.#status === 'stopped') return
    this.#setStatus('stopped')
    this.#fenceDeadlineMs = undefined
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    await this.#inFlight
    if (options.revoke && this.#lease !== 0) {
      await this.#options.store.leaseRevoke(this.#lease).catch(() => {})
    }
  }

  /** Ticks every keepAliveMs from the start of the previous one (a slow tick is not added on). */
  #schedule(delayMs = this.#keepAliveMs): void {
    if (this.#status === 'stopped') return
    this.#timer = setTimeout(() => {
      const started = this.#clock()
      this.#inFlight = this.#tick().finally(() =>
        this.#schedule(Math.max(0, this.#keepAliveMs - (this.#clock() - started))),
      )
    }, delayMs)
    this.#timer.unref?.()
  }

  async #tick(): Promise<void> {
    try {
      if (this.#lease === 0) {
        await this.#grant()
        return
      }
      const lease = this.#lease
      // A keep-alive stuck on a dead leader must not hold the next ones back: wait at most one
      // interval, then try again on the next tick (a late answer only moves the fence deadline).
      const sentMs = this.#monotonic()
      const outcome = await Promise.race([
        this.#options.store.leaseKeepAlive(lease).then(
          () => {
            this.#acknowledged(lease, sentMs)
            return 'ok' as const
          },
          (error: unknown) => error,
        ),
        new Promise<'slow'>((resolve) => setTimeout(() => resolve('slow'), this.#keepAliveMs).unref()),
      ])
      if (outcome === 'slow' || lease !== this.#lease) return
      if (outcome !== 'ok') throw outcome
      if (this.#status === 'rejoining' && this.#clock() - this.#leaseSince >= this.#rejoinStableMs) {
        await this.#writeNode()
        await this.#putMachine()
        if ((this.#status as MachineStatus) !== 'stopped') this.#setStatus('alive')
        this.#options.log?.info({ lease: this.#lease }, 'machine lease: rejoined, served again')
      } else if (this.#status === 'alive' && this.#options.registered?.() === false) {
        // Deregistered behind the agent's back (PUT /v1/catalog/deregister): the agent owns its
        // node, so it writes it again, as Consul's anti-entropy does.
        await this.#writeNode()
        await this.#putMachine()
        this.#options.log?.info({ node: this.#options.node }, 'machine lease: node registered again')
      }
    } catch (error) {
      if (this.#status === 'stopped') return
      if (isCairnError(error, 'KV_LEASE_NOT_FOUND')) {
        this.#losses++
        this.#lease = 0
        this.#fenceDeadlineMs = undefined
        this.#setStatus('lost')
        this.#options.log?.warn(
          { node: this.#options.node },
          'machine lease expired: the machine was marked failed',
        )
      }
      // Other errors (no leader, timeouts): keep trying; the lease may still be alive.
    }
  }

  async #grant(): Promise<void> {
    const sentMs = this.#monotonic()
    const granted = await this.#options.store.leaseGrant({ ttlMs: this.#ttlMs })
    this.#lease = granted.id
    this.#leaseSince = this.#clock()
    this.#fenceDeadlineMs = undefined
    if (this.#status === 'lost') this.#status = 'rejoining'
    this.#acknowledged(granted.id, sentMs)
  }

  async #writeNode(): Promise<void> {
    const o = this.#options
    await o.writer.register({
      node: nodeRecord({
        ID: nodeIdOf(o.node),
        Node: o.node,
        Address: o.address,
        Datacenter: o.datacenter,
        Meta: o.meta,
        Agent: true,
      }),
    })
  }

  async #putMachine(): Promise<void> {
    await this.#options.writer.putMachine({
      Node: this.#options.node,
      Lease: this.#lease,
      SinceMs: this.#clock(),
      ...(this.#options.api !== undefined ? { Api: this.#options.api } : {}),
    })
  }
}
