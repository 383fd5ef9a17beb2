/**
 * The scheduler engine: on every server agent a candidate (engine-election.ts); the one elected
 * reconciles desired units against live machines and writes placements. It is a client of the
 * store like any other (DESIGN.md): two prefix feeds in (the scheduler records and the catalog's
 * machines), fenced transactions out. No polling loop: it runs when the feeds report a change, or
 * at a rollout's timeout.
 *
 * Loop while elected: take the model's changes → bring the placement index up to date → plan
 * (engine-plan.ts, pure) → write the plan in transactions of at most writeOpsMax ops and
 * writeBytesMax bytes, each comparing the engine key's createRevision with the fence → wait until
 * the feed has applied the last write (so the next plan starts from a model that includes this
 * one's decisions) → again if anything changed meanwhile.
 *
 * Invariants:
 * - Every write is fenced: a deposed engine's transaction fails; the engine then drops its index
 *   and model and resigns (revokes its lease) so that the election starts afresh.
 * - One reconcile at a time; changes that arrive during one mark the model dirty and cause exactly
 *   one more.
 * - A write that fails for another reason (timeout, no leader) drops the index (rebuilt from the
 *   model on the next pass) and retries after a backoff: the index never keeps a decision the
 *   keyspace does not hold.
 * - Failover of a machine: the catalog feed reports its machine key deleted (its lease expired);
 *   the next plan deletes its assignments and places the units elsewhere, in one pass.
 */

import { catalogPrefix } from '../catalog/records.ts'
import type { KvStore } from '../kv/kv-store.ts'
import type { TxnOp } from '../kv/mvcc.ts'
import { type PrefixFeed, startPrefixFeed } from '../kv/prefix-feed.ts'
import { EngineElection, engineLeaseTtlMsDefault } from './engine-election.ts'
import { PlacementIndex } from './engine-index.ts'
import { SchedulerModel } from './engine-model.ts'
import { type Plan, type PlanOp, planReconcile } from './engine-plan.ts'
import { engineKey, schedulerPrefix } from './records.ts'

/** Ops per transaction (below the store's txnOpsMax of 128, leaving room for compares). */
export const writeOpsMax = 100
/** Bytes of keys and values per transaction (below the store's command size limit). */
export const writeBytesMax = 1024 * 1024
/** Backoff after a failed write, doubling up to the max. */
export const retryMsMin = 100
export const retryMsMax = 2_000
/** How long the engine waits for the feed to show its own write before planning again. */
export const echoWaitMs = 10_000

export interface EngineOptions {
  store: KvStore
  /** This agent's node name. */
  id: string
  leaseTtlMs?: number
  clock?: () => number
  log?: {
    info(obj: object, msg: string): void
    warn(obj: object, msg: string): void
    error(obj: object, msg: string): void
  }
}

export interface EngineStatus {
  leading: boolean
  fence: number | undefined
  units: number
  machines: number
  reconciles: number
  lastPlan: { placed: number; removed: number; unplaced: number; ops: number; ms: number } | undefined
}

export class SchedulerEngine {
  readonly #o: EngineOptions
  readonly #clock: () => number
  readonly #election: EngineElection
  #term: Term | undefined
  #reconciles = 0
  #lastPlan: EngineStatus['lastPlan']

  constructor(options: EngineOptions) {
    this.#o = options
    this.#clock = options.clock ?? Date.now
    this.#election = new EngineElection({
      store: options.store,
      id: options.id,
      ttlMs: options.leaseTtlMs ?? engineLeaseTtlMsDefault,
      clock: this.#clock,
      log: options.log,
      onElected: (fence) => this.#lead(fence),
      onDeposed: () => this.#stepDown(),
    })
  }

  start(): void {
    this.#election.start()
  }

  async stop(): Promise<void> {
    const term = this.#term
    this.#term = undefined
    await term?.stop()
    await this.#election.stop()
  }

  status(): EngineStatus {
    const term = this.#term
    return {
      leading: term !== undefined,
      fence: term?.fence,
      units: term?.model.units.size ?? 0,
      machines: term?.model.machines.size ?? 0,
      reconciles: this.#reconciles,
      lastPlan: this.#lastPlan,
    }
  }

  #lead(fence: number): void {
    void this.#term?.stop()
    this.#term = new Term(this.#o, fence, this.#clock, {
      onPlanned: (plan, ms) => {
        this.#reconciles++
        this.#lastPlan = {
          placed: plan.placed,
          removed: plan.removed,
          unplaced: plan.unplaced,
          ops: plan.ops.length + plan.guarded.length,
          ms,
        }
      },
      onFenced: () => {
        this.#stepDown()
        void this.#election.resign()
      },
    })
  }

  #stepDown(): void {
    const term = this.#term
    this.#term = undefined
    void term?.stop()
  }
}

/** One period of leadership: its own model, feeds and index, thrown away when it ends. */
class Term {
  readonly fence: number
  readonly model: SchedulerModel
  readonly #o: EngineOptions
  readonly #clock: () => number
  readonly #hooks: { onPlanned(plan: Plan, ms: number): void; onFenced(): void }
  readonly #feeds: PrefixFeed[]
  readonly #index = new PlacementIndex()
  readonly #updateStarted = new Map<string, number>()
  #stopped = false
  #dirty = true
  #wake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #loop: Promise<void>

  constructor(
    options: EngineOptions,
    fence: number,
    clock: () => number,
    hooks: { onPlanned(plan: Plan, ms: number): void; onFenced(): void },
  ) {
    this.#o = options
    this.fence = fence
    this.#clock = clock
    this.#hooks = hooks
    this.model = new SchedulerModel(() => this.#markDirty())
    const onError = (error: unknown): void => this.#o.log?.warn({ err: error }, 'engine feed failed to load')
    this.#feeds = [
      startPrefixFeed(options.store, schedulerPrefix, this.model.schedulerSink, onError),
      startPrefixFeed(options.store, catalogPrefix, this.model.catalogSink, onError),
    ]
    this.#loop = this.#run()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    for (const feed of this.#feeds) feed.stop()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    await this.#loop
  }

  #markDirty(): void {
    this.#dirty = true
    this.#wake?.()
  }

  async #run(): Promise<void> {
    await Promise.all(this.#feeds.map((f) => f.ready))
    let retryMs = retryMsMin
    while (!this.#stopped) {
      if (!this.#dirty) await this.#idle()
      if (this.#stopped) return
      this.#dirty = false
      const started = performance.now()
      let plan: Plan
      try {
        this.#index.sync(this.model, this.model.takeChanges())
        plan = planReconcile({
          model: this.model,
          index: this.#index,
          fence: this.fence,
          nowMs: this.#clock(),
          updateStarted: this.#updateStarted,
        })
      } catch (error) {
        // A bug in planning must not take the server agent down with it: log, rebuild the index
        // from the model, and try again after a pause.
        this.#o.log?.error({ err: error }, 'engine: planning failed; rebuilding the index and trying again')
        this.#reloadIndex()
        await this.#sleep(retryMs)
        retryMs = Math.min(retryMs * 2, retryMsMax)
        this.#dirty = true
        continue
      }
      this.#hooks.onPlanned(plan, performance.now() - started)
      this.#arm(plan.wakeAtMs)
      if (plan.ops.length === 0 && plan.guarded.length === 0) continue
      try {
        const revision = await this.#write(plan)
        if (revision === undefined) {
          this.#o.log?.warn({ fence: this.fence }, 'engine: a write failed its fence; stepping down')
          this.#hooks.onFenced()
          return
        }
        this.#o.log?.info(
          { placed: plan.placed, removed: plan.removed, unplaced: plan.unplaced, revision },
          'engine: placements written',
        )
        await this.#echo(revision)
        retryMs = retryMsMin
      } catch (error) {
        if (this.#stopped) return
        this.#o.log?.warn({ err: error }, 'engine: writing a plan failed; planning again from the keyspace')
        this.#reloadIndex()
        await this.#sleep(retryMs)
        retryMs = Math.min(retryMs * 2, retryMsMax)
        this.#dirty = true
      }
    }
  }

  /** After a failed write or plan: the next pass rebuilds the index from the model. */
  #reloadIndex(): void {
    this.#index.invalidate()
  }

  /** Writes the plan; the last revision, or undefined when the fence failed (deposed). */
  async #write(plan: Plan): Promise<number | undefined> {
    const fence = {
      key: engineKey,
      target: 'createRevision' as const,
      result: 'equal' as const,
      value: this.fence,
    }
    let revision = 0
    for (const batch of batches(plan.ops)) {
      const result = await this.#o.store.txn({ compare: [fence], success: batch, failure: [] })
      if (!result.succeeded) return undefined
      revision = result.revision
    }
    for (const guarded of plan.guarded) {
      const result = await this.#o.store.txn({
        compare: [fence, ...guarded.compare],
        success: guarded.ops.map(toTxnOp),
        failure: [{ type: 'range', key: engineKey }],
      })
      if (!result.succeeded) {
        const holder = result.responses[0]
        const still = holder?.type === 'range' && holder.kvs[0]?.createRevision === this.fence
        if (!still) return undefined
        // The template changed meanwhile (a new submit): nothing to roll back; plan again.
        this.#dirty = true
      }
      revision = Math.max(revision, result.revision)
    }
    return revision
  }

  /** Waits until the scheduler feed has applied `revision` (bounded). */
  async #echo(revision: number): Promise<void> {
    const deadline = performance.now() + echoWaitMs
    while (!this.#stopped && this.model.schedulerRevision < revision && performance.now() < deadline) {
      await this.#idle(Math.max(1, deadline - performance.now()))
    }
  }

  #arm(atMs: number | undefined): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    if (atMs === undefined) return
    this.#timer = setTimeout(() => this.#markDirty(), Math.max(0, atMs - this.#clock()) + 1)
    this.#timer.unref?.()
  }

  #idle(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs)
      const wake = (): void => done()
      this.#wake = wake
      function done(): void {
        if (timer !== undefined) clearTimeout(timer)
        resolve()
      }
    })
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      timer.unref?.()
    })
  }
}

function toTxnOp(op: PlanOp): TxnOp {
  return op.type === 'put' ? { type: 'put', key: op.key, value: op.value } : { type: 'delete', key: op.key }
}

function* batches(ops: PlanOp[]): Generator<TxnOp[]> {
  let batch: TxnOp[] = []
  let bytes = 0
  for (const op of ops) {
    const size = op.key.length + (op.type === 'put' ? op.value.length : 0)
    if (batch.length > 0 && (batch.length >= writeOpsMax || bytes + size > writeBytesMax)) {
      yield batch
      batch = []
      bytes = 0
    }
    batch.push(toTxnOp(op))
    bytes += size
  }
  if (batch.length > 0) yield batch
}
