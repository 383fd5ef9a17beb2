/**
 * The engine election: exactly one active scheduler engine per cluster, chosen with a lease in the
 * keyspace (fleet's `engine-leader` lease, reference B3, with etcd v3's election recipe).
 *
 * A candidate grants a lease of ttlMs and creates `engineKey` attached to it with a transaction
 * that succeeds only if the key does not exist (createRevision == 0). The winner's fence is that
 * transaction's revision: the key's createRevision. Every write the engine makes compares the
 * key's createRevision with its fence, so a deposed engine (its lease expired, the key deleted or
 * created again by another) cannot place anything, whatever it still believes. A loser revokes its
 * lease and waits, with a one-shot watch, for the key to change, then tries again.
 *
 * Invariants:
 * - `fence` is defined only while this candidate's lease is believed alive; onDeposed runs before
 *   a new campaign, and onElected runs at most once per fence.
 * - Self-fencing: the leader counts itself deposed when no keep-alive sent within the last ttlMs
 *   has been acknowledged (the lease may have expired on the servers), even if no error said so.
 *   Its writes would fail anyway; this stops it planning on a dead mandate.
 * - stop() revokes a held lease (bounded), so a clean shutdown hands over at once instead of
 *   after the TTL.
 */
import { isCairnError } from '../errors.ts'
import type { KvStore } from '../kv/kv-store.ts'
import { type EngineRecord, engineKey } from './records.ts'

/** The engine lease's TTL: a dead engine's successor takes over within this (plus the expiry sweep). */
export const engineLeaseTtlMsDefault = 3_000
/** Backoff after a failed campaign step (no leader, timeouts), doubling up to the max. */
export const campaignRetryMsMin = 100
export const campaignRetryMsMax = 2_000
/** How long stop() waits for the lease revoke. */
export const engineRevokeWaitMs = 1_000

export interface ElectionOptions {
  store: Pick<KvStore, 'leaseGrant' | 'leaseKeepAlive' | 'leaseRevoke' | 'txn' | 'watch'>
  /** This agent's node name, written in the engine record. */
  id: string
  ttlMs?: number
  clock?: () => number
  onElected(fence: number): void
  onDeposed(reason: string): void
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
}

export class EngineElection {
  readonly #o: ElectionOptions
  readonly #ttlMs: number
  readonly #clock: () => number
  #stopped = false
  #lease = 0
  #fence: number | undefined
  #wake: (() => void) | undefined
  #loop: Promise<void> = Promise.resolve()

  constructor(options: ElectionOptions) {
    this.#o = options
    this.#ttlMs = options.ttlMs ?? engineLeaseTtlMsDefault
    this.#clock = options.clock ?? Date.now
  }

  /** The createRevision of the engine key this candidate holds; undefined unless leading. */
  get fence(): number | undefined {
    return this.#fence
  }

  start(): void {
    this.#loop = this.#run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    await this.#loop
    if (this.#lease !== 0) {
      const lease = this.#lease
      this.#lease = 0
      await Promise.race([this.#o.store.leaseRevoke(lease).catch(() => {}), sleep(engineRevokeWaitMs)])
    }
  }

  /**
   * Gives up a held mandate (its fence failed: someone changed the engine key by hand): revokes the
   * lease, so the leader loop sees it gone, reports deposed and campaigns again.
   */
  async resign(): Promise<void> {
    if (this.#fence === undefined || this.#lease === 0) return
    await this.#o.store.leaseRevoke(this.#lease).catch(() => {})
    this.#wake?.()
  }

  async #run(): Promise<void> {
    let retryMs = campaignRetryMsMin
    while (!this.#stopped) {
      try {
        await this.#campaign()
        retryMs = campaignRetryMsMin
      } catch (error) {
        if (this.#stopped) return
        this.#o.log?.warn({ err: error }, 'engine election: campaign step failed, trying again')
        await this.#pause(retryMs)
        retryMs = Math.min(retryMs * 2, campaignRetryMsMax)
      }
    }
  }

  async #campaign(): Promise<void> {
    const granted = await this.#o.store.leaseGrant({ ttlMs: this.#ttlMs })
    this.#lease = granted.id
    const sentMs = this.#clock()
    const record: EngineRecord = { id: this.#o.id, sinceMs: sentMs }
    const result = await this.#o.store.txn({
      compare: [{ key: engineKey, target: 'createRevision', result: 'equal', value: 0 }],
      success: [{ type: 'put', key: engineKey, value: JSON.stringify(record), lease: granted.id }],
      failure: [{ type: 'range', key: engineKey }],
    })
    if (result.succeeded) {
      await this.#lead(granted.id, result.revision, sentMs)
      return
    }
    const lease = this.#lease
    this.#lease = 0
    await this.#o.store.leaseRevoke(lease).catch(() => {})
    const holder = result.responses[0]
    const seen = holder?.type === 'range' ? holder.kvs[0] : undefined
    await this.#awaitChange(seen === undefined ? result.revision + 1 : seen.modRevision + 1)
  }

  /** Leads until the lease is lost (or stop): keeps it alive every ttlMs / 3. */
  async #lead(lease: number, fence: number, grantedSentMs: number): Promise<void> {
    this.#fence = fence
    this.#o.log?.info({ fence, lease }, 'engine election: this agent runs the scheduler engine')
    this.#o.onElected(fence)
    const intervalMs = Math.max(50, Math.floor(this.#ttlMs / 3))
    let ackedSentMs = grantedSentMs
    let reason = 'stopped'
    while (!this.#stopped) {
      await this.#pause(intervalMs)
      if (this.#stopped) break
      const sentMs = this.#clock()
      const outcome = await Promise.race([
        this.#o.store.leaseKeepAlive(lease).then(
          () => 'ok' as const,
          (error: unknown) => error,
        ),
        sleep(intervalMs).then(() => 'slow' as const),
      ])
      if (outcome === 'ok') ackedSentMs = sentMs
      else if (isCairnError(outcome, 'KV_LEASE_NOT_FOUND')) {
        reason = 'the engine lease expired'
        break
      }
      if (this.#clock() - ackedSentMs >= this.#ttlMs) {
        reason = `no keep-alive acknowledged for ${this.#ttlMs} ms`
        break
      }
    }
    this.#fence = undefined
    if (this.#stopped) return
    this.#lease = 0
    this.#o.log?.warn({ fence, reason }, 'engine election: deposed')
    this.#o.onDeposed(reason)
  }

  /** Waits for the next change of the engine key from `sinceRevision` on (or stop). */
  async #awaitChange(sinceRevision: number): Promise<void> {
    const watcher = this.#o.store.watch({
      key: engineKey,
      recursive: false,
      stream: false,
      includeHidden: true,
      sinceRevision,
    })
    try {
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        const check = (): void => {
          watcher.take()
          if (watcher.status === 'done' || watcher.status === 'canceled') resolve()
        }
        watcher.setListener(() => queueMicrotask(check))
        check()
      })
    } finally {
      this.#wake = undefined
      watcher.cancel()
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    })
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
