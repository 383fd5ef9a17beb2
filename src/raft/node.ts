/**
 * RaftNode: the driver that turns the pure RaftCore into a running member.
 *
 * It owns the timers, the Ready loop, proposals that resolve when applied, ReadIndex reads, request
 * timeouts and graceful shutdown. Storage, transport and the state machine are handed in.
 *
 * The Ready loop (one at a time, never re-entered):
 *   1. storage.save(snapshot, entries, hardState): one fsync per Ready (group commit: everything
 *      that reached the core while the previous save was syncing rides in this one);
 *      A leader's replication messages leave before the save, in parallel with its fsync
 *      (core/early-send.ts);
 *   2. transport.send(messages) — only after 1, since votes and acknowledgements promise durability;
 *   3. restore the snapshot, apply committed entries, settle the proposals and reads they answer;
 *   4. core.advance(ready); then, when snapshotCount entries were applied since the last snapshot,
 *      capture the state machine (cheap) and stream its encoding to disk off the loop
 *      (storage.stageSnapshot, a piece per event-loop turn, while later entries are applied); the
 *      loop hands the staged snapshot to the core and the disk between two Readies
 *      (core.compactAt, storage.saveCompaction), or discards it if a leader's newer one came first.
 *
 * A loop woken from idle with entries to save takes its Ready only at the end of the event-loop
 * turn (a setImmediate), so every request and message that arrived in the same poll is in it: one
 * save for all of them. A wake with nothing to save (a read round, a tick) is handled at once.
 * Small saves are written on the event loop's own thread (storage/sync-writes.ts) and block it;
 * taken at once, the first request of a poll would be saved alone while the others waited behind
 * its write (at 16 clients that gave 1,515 writes/s against 4,252).
 *
 * A member does not hold its snapshot in memory: once a snapshot (its own or a leader's) is on disk,
 * the core keeps it as StoredSnapshotData, read from the file when a peer needs it.
 *
 * A Ready whose only durable change is the commit index (mustSync false, no entries, no snapshot)
 * is not written by itself: the commit index need not be durable (a restart takes
 * max(commit, log start, snapshot index) and learns the rest from the leader), so that hard state
 * rides with the next save. This takes one disk write off every write's path on every member.
 *
 * Invariants:
 *   - a proposal's promise resolves only after its entry was applied on this member, which implies
 *     it was committed, i.e. fsynced by a quorum (and by this member when it is the only voter);
 *   - a read resolves only after this member applied everything up to the read index confirmed by
 *     the leader for that read;
 *   - every pending proposal and read ends: applied, refused, timed out or stopped; each map of
 *     pending requests is bounded by its ...Max;
 *   - after an await, nothing decided before it is reused without re-reading it (role, term, stop).
 *
 * Reads made in one event-loop turn share one ReadIndex request: the first opens a batch (one ctx,
 * one timer, one entry in the reads map) and a setImmediate hands it to the core at the end of
 * the turn; later reads of that turn join it. A read may only join a batch not yet handed to the
 * core, since the core fixes the read index (its commit index) when it takes the ctx: a read that
 * joined later could miss a write committed in between. Joining earlier only makes the index
 * higher, which is still linearizable. readsPendingMax counts reads, not batches.
 *
 * Proposals carry a 16-byte envelope (proposer id, sequence number) in front of the command so the
 * proposer recognises its own entries when they are applied; the state machine sees only the
 * command. Empty entries are the leaders' no-ops and have no envelope.
 */
import { CairnError, isCairnError } from '../errors.ts'
import { makeRaftConfig, type RaftConfig } from './core/config.ts'
import { isSafeBeforePersist } from './core/early-send.ts'
import { Prng } from './core/prng.ts'
import { RaftCore } from './core/raft.ts'
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  NodeId,
  PersistedState,
  Ready,
  Role,
  SnapshotMeta,
  SoftState,
  Status,
} from './core/types.ts'
import { snapshotBytes } from './core/types.ts'
import { decodeMemberContext, peerAddress } from './member-context.ts'
import type { StateMachine } from './state-machine.ts'
import type { RaftStorage, StagedSnapshot } from './storage/storage.ts'
import type { PeerTransport, PeerTransportEvents } from './transport/transport.ts'

export const envelopeBytes = 16

export interface RaftNodeLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface RaftNodeOptions {
  id: NodeId
  storage: RaftStorage
  stateMachine: StateMachine
  createTransport(events: PeerTransportEvents): PeerTransport
  /** Founding voters of a new cluster (ignored when the storage already holds state). */
  bootstrap?: { voters: { id: NodeId; peerUrl: string }[]; state: PersistedState }
  /** Known peers at start (for a member joining an existing cluster, or before replay). */
  peers?: { id: NodeId; peerUrl: string }[]
  tickMs?: number
  electionTicks?: number
  heartbeatTicks?: number
  /** Applied entries between two snapshots (etcd's --snapshot-count). */
  snapshotCount?: number
  requestTimeoutMs?: number
  proposalsWaitingMax?: number
  proposalsPendingMax?: number
  readsPendingMax?: number
  raft?: Partial<RaftConfig>
  logger?: RaftNodeLogger
  /** Seed for election jitter; defaults to one derived from the id and the start time. */
  seed?: number
}

export const raftNodeDefaults = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotCount: 10_000,
  requestTimeoutMs: 5_000,
  proposalsWaitingMax: 10_000,
  proposalsPendingMax: 100_000,
  readsPendingMax: 100_000,
} as const

type NodeSettings = Required<Omit<RaftNodeOptions, 'bootstrap' | 'peers' | 'raft' | 'logger' | 'seed'>>

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
  timer: NodeJS.Timeout
}

interface ReadWaiter {
  resolve(): void
  reject(error: Error): void
}

interface PendingRead extends Pending {
  /** Set once the leader confirmed the read: answer when applied reaches it. */
  index: number | undefined
}

interface WaitingProposal {
  data: Uint8Array | undefined
  change: ConfChange | undefined
  seq: number
}

const silentLogger: RaftNodeLogger = { info() {}, warn() {}, error() {} }

export class RaftNode {
  readonly id: NodeId
  readonly #options: NodeSettings
  readonly #logger: RaftNodeLogger
  readonly #core: RaftCore
  readonly #transport: PeerTransport
  readonly #sm: StateMachine
  readonly #storage: RaftStorage

  #seq = 0
  readonly #proposals = new Map<number, Pending>()
  readonly #confChanges = new Map<string, Pending>()
  /** ReadIndex requests by ctx; each settles every read of its batch. */
  readonly #reads = new Map<string, PendingRead>()
  /** The batch reads of this event-loop turn join; undefined once handed to the core. */
  #readBatch: { ctx: string; waiters: ReadWaiter[] } | undefined
  /** Reads waiting for their batch's confirmation, over every batch (bounded by readsPendingMax). */
  #readWaiters = 0
  /** Reads confirmed by the leader, waiting for apply, in index order of arrival. */
  #readsConfirmed: { ctx: string; index: number }[] = []
  /** Proposals made while no leader was known. */
  #waiting: WaitingProposal[] = []
  /** Reads made while no leader was known (bounded by readsPendingMax through #reads). */
  #readsWaiting: string[] = []
  #lastSnapshotIndex: number
  #snapshotsReceived = 0
  #leaderChanges = 0
  /** The snapshot being encoded off the loop (at most one at a time). */
  #snapshotJob: Promise<void> | undefined
  /** A staged snapshot the loop has yet to hand to the core and the disk. */
  #snapshotStaged: { point: SnapshotMeta; staged: StagedSnapshot } | undefined
  #snapshotError: Error | undefined
  #softState: SoftState = { leader: 0, role: 'follower' }

  #ticker: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined
  /** A hard state that changed only in its commit index, not yet written (it rides with the next save). */
  #hardStateUnsaved: HardState | undefined
  #loopDone: Promise<void> | undefined
  #stopping = false
  #loopError: Error | undefined
  #stopped: Promise<void> | undefined
  #markFailed: (error: Error) => void = () => {}
  /** Settles with the error when the Ready loop stops on its own (never on a requested stop). */
  readonly failed: Promise<Error> = new Promise<Error>((resolve) => {
    this.#markFailed = resolve
  })

  private constructor(options: RaftNodeOptions, persisted: PersistedState, stateMachine: StateMachine) {
    this.id = options.id
    this.#options = { ...raftNodeDefaults, ...stripUndefined(options) } as NodeSettings
    this.#logger = options.logger ?? silentLogger
    this.#sm = stateMachine
    this.#storage = options.storage
    const config = makeRaftConfig({
      id: options.id,
      prng: new Prng(options.seed ?? (options.id ^ Date.now()) >>> 0),
      electionTicks: this.#options.electionTicks,
      heartbeatTicks: this.#options.heartbeatTicks,
      ...options.raft,
    })
    this.#core = new RaftCore(config, persisted, stateMachine.appliedIndex)
    this.#lastSnapshotIndex = persisted.snapshot?.meta.index ?? 0
    this.#transport = options.createTransport({
      onMessage: (m) => {
        if (this.#stopping) return
        this.#core.step(m)
        this.#kick()
      },
      onUnreachable: (peer) => this.#core.reportUnreachable(peer),
      onPeerDown: (peer) => {
        if (this.#stopping) return
        const leader = this.#core.leader
        this.#core.reportPeerDown(peer)
        if (leader === peer && this.#core.leader !== leader) {
          this.#logger.info(
            { leader: peer },
            "raft: the leader's process is down (its peer address refused a connection); campaigning early",
          )
        }
        this.#kick()
      },
      onSnapshotStatus: (peer, ok) => {
        this.#core.reportSnapshot(peer, ok)
        this.#kick()
      },
    })
  }

  /**
   * Loads the member's state from storage (bootstrapping a new cluster when the storage is empty
   * and `bootstrap` is given), restores the state machine from the newest snapshot, starts the
   * transport, the ticker and the Ready loop.
   */
  static async start(options: RaftNodeOptions): Promise<RaftNode> {
    let persisted = await options.storage.load()
    const empty = persisted.hardState.term === 0 && persisted.entries.length === 0 && !persisted.snapshot
    if (empty && options.bootstrap !== undefined) {
      // The core takes what it is given as persisted: the founding state must be on disk first.
      persisted = options.bootstrap.state
      await options.storage.save({
        snapshot: persisted.snapshot,
        entries: persisted.entries,
        hardState: persisted.hardState,
        sync: true,
      })
    }
    if (persisted.snapshot !== undefined) options.stateMachine.restore(snapshotBytes(persisted.snapshot.data))
    const node = new RaftNode(options, persisted, options.stateMachine)
    if (persisted.snapshot !== undefined) await node.#keepSnapshotOnDisk(persisted.snapshot.meta)
    await node.#transport.start()
    for (const peer of [...(options.bootstrap?.voters ?? []), ...(options.peers ?? [])])
      node.#setPeer(peer.id, peer.peerUrl)
    for (const [id, urls] of options.stateMachine.memberPeerUrls()) {
      const url = urls[0]
      if (url !== undefined) node.#setPeer(id, url)
    }
    node.#learnPeersFrom(persisted.entries)
    node.#ticker = setInterval(() => node.#tick(), node.#options.tickMs)
    node.#ticker.unref?.()
    node.#loopDone = node.#runLoop()
    return node
  }

  // ---------------------------------------------------------------------------------------------
  // Requests
  // ---------------------------------------------------------------------------------------------

  /** Proposes a command; resolves with the state machine's result once applied on this member. */
  propose(command: Uint8Array): Promise<unknown> {
    if (this.#stopping) return Promise.reject(new CairnError('RAFT_STOPPED'))
    if (this.#proposals.size >= this.#options.proposalsPendingMax) {
      return Promise.reject(new CairnError('RAFT_PROPOSALS_PENDING_MAX'))
    }
    const seq = ++this.#seq
    const data = new Uint8Array(envelopeBytes + command.byteLength)
    const view = new DataView(data.buffer)
    view.setFloat64(0, this.id)
    view.setFloat64(8, seq)
    data.set(command, envelopeBytes)
    return new Promise((resolve, reject) => {
      this.#proposals.set(
        seq,
        this.#pending(resolve, reject, () => this.#proposals.delete(seq)),
      )
      this.#submit({ data, change: undefined, seq })
    })
  }

  /** Proposes a membership change; resolves once applied on this member. */
  proposeConfChange(change: ConfChange): Promise<unknown> {
    if (this.#stopping) return Promise.reject(new CairnError('RAFT_STOPPED'))
    const key = confChangeKey(change)
    if (this.#confChanges.has(key)) return Promise.reject(new CairnError('RAFT_CONF_CHANGE_PENDING'))
    return new Promise((resolve, reject) => {
      this.#confChanges.set(
        key,
        this.#pending(resolve, reject, () => this.#confChanges.delete(key)),
      )
      this.#submit({ data: undefined, change, seq: 0 })
    })
  }

  /**
   * A linearizable read barrier: resolves once this member has applied everything the cluster had
   * committed when the read was made. Read the state machine right after it resolves.
   */
  readIndex(): Promise<void> {
    if (this.#stopping) return Promise.reject(new CairnError('RAFT_STOPPED'))
    if (this.#readWaiters >= this.#options.readsPendingMax)
      return Promise.reject(new CairnError('RAFT_READS_PENDING_MAX'))
    return new Promise<void>((resolve, reject) => {
      const batch = this.#readBatch ?? this.#openReadBatch()
      batch.waiters.push({ resolve, reject })
      this.#readWaiters++
    })
  }

  /** Opens this turn's read batch; it goes to the core at the end of the turn (see the header). */
  #openReadBatch(): { ctx: string; waiters: ReadWaiter[] } {
    const ctx = `${this.id}:${++this.#seq}`
    const waiters: ReadWaiter[] = []
    const batch = { ctx, waiters }
    const settle = (error: Error | undefined) => {
      if (this.#readBatch === batch) this.#readBatch = undefined // settled early (stop): closed
      this.#readWaiters -= waiters.length
      for (const waiter of waiters) {
        if (error === undefined) waiter.resolve()
        else waiter.reject(error)
      }
    }
    const pending = this.#pending(
      () => settle(undefined),
      (error) => settle(error),
      () => this.#reads.delete(ctx),
    )
    this.#reads.set(ctx, { ...pending, index: undefined })
    this.#readBatch = batch
    setImmediate(() => {
      if (this.#readBatch === batch) this.#readBatch = undefined
      this.#submitRead(ctx)
    })
    return batch
  }

  /** Asks the core to confirm a read, or parks it until a leader is known (within its timeout). */
  #submitRead(ctx: string): void {
    if (!this.#reads.has(ctx)) return // timed out while waiting
    try {
      this.#core.readIndex(ctx)
      this.#kick()
    } catch (error) {
      if (isCairnError(error, 'RAFT_NO_LEADER')) this.#readsWaiting.push(ctx)
      else this.#settle(this.#reads, ctx, error as Error)
    }
  }

  transferLeadership(to: NodeId): void {
    this.#core.transferLeadership(to)
    this.#kick()
  }

  status(): Status {
    return this.#core.status()
  }

  get leader(): NodeId {
    return this.#core.leader
  }

  get isLeader(): boolean {
    return this.#core.role === 'leader'
  }

  get term(): number {
    return this.#core.term
  }

  get role(): Role {
    return this.#core.role
  }

  /**
   * Times this member saw a new leader (not counting "no leader") since it started: etcd's
   * leader_changes_seen_total.
   */
  get leaderChanges(): number {
    return this.#leaderChanges
  }

  /** Snapshots received from a leader and restored since this member started. */
  get snapshotsReceived(): number {
    return this.#snapshotsReceived
  }

  /**
   * Stops the member. A leader first hands leadership to the most caught-up voter (waiting up to
   * one election timeout), so the cluster does not wait out an election.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop(): Promise<void> {
    // After a loop failure (#stopping already set) there is no hand-off, but every pending request
    // is still answered and the transport and storage are still closed.
    if (!this.#stopping && this.#core.role === 'leader') await this.#handOffLeadership()
    this.#stopping = true
    if (this.#ticker !== undefined) clearInterval(this.#ticker)
    this.#kick()
    await this.#loopDone
    await this.#snapshotJob
    const stopped = new CairnError('RAFT_STOPPED')
    for (const map of [this.#proposals, this.#confChanges, this.#reads] as Map<unknown, Pending>[]) {
      for (const key of [...map.keys()]) this.#settle(map, key, stopped)
    }
    await this.#transport.stop()
    await this.#storage.close()
    if (this.#loopError !== undefined) throw this.#loopError
  }

  // ---------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------

  #pending(resolve: (v: unknown) => void, reject: (e: Error) => void, forget: () => void): Pending {
    const timer = setTimeout(() => {
      forget()
      reject(new CairnError('RAFT_REQUEST_TIMEOUT', `after ${this.#options.requestTimeoutMs} ms`))
    }, this.#options.requestTimeoutMs)
    timer.unref?.()
    return { resolve, reject, timer }
  }

  #settle<K>(map: Map<K, Pending>, key: K, error: Error | undefined, value?: unknown): void {
    const pending = map.get(key)
    if (pending === undefined) return
    map.delete(key)
    clearTimeout(pending.timer)
    if (error === undefined) pending.resolve(value)
    else pending.reject(error)
  }

  /** Hands a proposal to the core, or parks it until a leader is known. */
  #submit(proposal: WaitingProposal): void {
    if (this.#core.leader === 0) {
      if (this.#waiting.length >= this.#options.proposalsWaitingMax) {
        this.#fail(proposal, new CairnError('RAFT_PROPOSALS_WAITING_MAX'))
        return
      }
      this.#waiting.push(proposal)
      return
    }
    try {
      if (proposal.change !== undefined) this.#core.proposeConfChange(proposal.change)
      else this.#core.propose(proposal.data as Uint8Array)
      this.#kick()
    } catch (error) {
      if (isCairnError(error, 'RAFT_NO_LEADER')) this.#waiting.push(proposal)
      else this.#fail(proposal, error as Error)
    }
  }

  #fail(proposal: WaitingProposal, error: Error): void {
    if (proposal.change !== undefined) this.#settle(this.#confChanges, confChangeKey(proposal.change), error)
    else this.#settle(this.#proposals, proposal.seq, error)
  }

  #tick(): void {
    this.#core.tick()
    this.#kick()
  }

  #kick(): void {
    const wake = this.#wake
    if (wake !== undefined) {
      this.#wake = undefined
      wake()
    }
  }

  async #runLoop(): Promise<void> {
    try {
      while (!this.#stopping) {
        if (this.#snapshotError !== undefined) throw this.#snapshotError
        if (this.#snapshotStaged !== undefined) {
          await this.#installSnapshot()
          continue
        }
        if (!this.#core.hasReady()) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve
          })
          // With something to save, let the rest of this event-loop turn run first (see the header).
          if (this.#core.hasUnsaved()) await new Promise<void>((resolve) => setImmediate(resolve))
          continue
        }
        const leader = this.#core.role === 'leader' ? { id: this.id, term: this.#core.term } : undefined
        await this.#handleReady(this.#core.ready(), leader)
      }
    } catch (error) {
      // Storage failures and broken invariants stop the member rather than risk acknowledging
      // something that is not durable.
      this.#loopError = error as Error
      this.#stopping = true
      this.#logger.error({ err: error }, 'raft: ready loop stopped')
      this.#markFailed(error as Error)
    }
  }

  async #handleReady(rd: Ready, leader: { id: NodeId; term: number } | undefined): Promise<void> {
    let late = rd.messages
    if (leader !== undefined && late.length > 0) {
      // A leader replicates while its own disk write runs (thesis §10.2.1, see early-send.ts).
      late = []
      const early: Message[] = []
      for (const m of rd.messages) (isSafeBeforePersist(m, leader) ? early : late).push(m)
      if (early.length > 0) this.#transport.send(early)
    }
    if (rd.snapshot === undefined && rd.entries.length === 0 && !rd.mustSync) {
      // Only the commit index moved: not worth a disk write of its own (see the header).
      if (rd.hardState !== undefined) this.#hardStateUnsaved = rd.hardState
    } else {
      await this.#storage.save({
        snapshot: rd.snapshot,
        entries: rd.entries,
        hardState: rd.hardState ?? this.#hardStateUnsaved,
        sync: rd.mustSync,
      })
      this.#hardStateUnsaved = undefined
    }
    if (late.length > 0) this.#transport.send(late)
    if (rd.snapshot !== undefined) {
      this.#sm.restore(snapshotBytes(rd.snapshot.data))
      this.#snapshotsReceived++
      this.#lastSnapshotIndex = rd.snapshot.meta.index
    }
    this.#learnPeersFrom(rd.committedEntries)
    for (const entry of rd.committedEntries) this.#apply(entry)
    for (const rs of rd.readStates) this.#confirmRead(rs.ctx, rs.index)
    this.#core.advance(rd)
    if (rd.softState !== undefined) this.#onSoftState(rd.softState)
    this.#answerReads()
    if (rd.snapshot !== undefined) await this.#keepSnapshotOnDisk(rd.snapshot.meta)
    this.#maybeSnapshot()
  }

  #apply(entry: Entry): void {
    if (entry.index <= this.#sm.appliedIndex) return // already in the restored snapshot
    if (entry.type === 'conf') {
      const result = this.#sm.apply(entry)
      if (entry.change !== undefined)
        this.#settle(this.#confChanges, confChangeKey(entry.change), undefined, result)
      return
    }
    if (entry.data.byteLength === 0) {
      this.#sm.apply(entry)
      return
    }
    const view = new DataView(entry.data.buffer, entry.data.byteOffset, envelopeBytes)
    const proposer = view.getFloat64(0)
    const seq = view.getFloat64(8)
    const command: Entry = { ...entry, data: entry.data.subarray(envelopeBytes) }
    let result: unknown
    let failure: Error | undefined
    try {
      result = this.#sm.apply(command)
    } catch (error) {
      // A command the state machine refuses deterministically (on every member) is an answer, not
      // a fault: the proposer gets the typed error.
      if (!isCairnError(error)) throw error
      failure = error
    }
    if (proposer === this.id) this.#settle(this.#proposals, seq, failure, result)
  }

  #confirmRead(ctx: string, index: number): void {
    const read = this.#reads.get(ctx)
    // Unknown (settled or timed out), or confirmed already: a read re-asked after a leader change
    // may be confirmed by both leaders; the first confirmation stands.
    if (read === undefined || read.index !== undefined) return
    read.index = index
    this.#readsConfirmed.push({ ctx, index })
  }

  #answerReads(): void {
    if (this.#readsConfirmed.length === 0) return
    const applied = this.#sm.appliedIndex
    const still: { ctx: string; index: number }[] = []
    for (const read of this.#readsConfirmed) {
      if (read.index <= applied) this.#settle(this.#reads, read.ctx, undefined)
      else still.push(read)
    }
    this.#readsConfirmed = still
  }

  /**
   * A new leader: reads asked of an earlier one and not yet confirmed may be lost with it (a
   * follower forwards ReadIndex to the leader, which does not answer once it is gone). Ask again,
   * rather than let them run into the request timeout. Safe: a confirmation obtained later than
   * the read was made still covers everything committed before it.
   */
  #reaskReads(): void {
    const waiting = new Set(this.#readsWaiting)
    if (this.#readBatch !== undefined) waiting.add(this.#readBatch.ctx) // still open: goes at the turn's end
    for (const [ctx, read] of this.#reads) {
      if (read.index === undefined && !waiting.has(ctx)) this.#submitRead(ctx)
    }
  }

  #onSoftState(soft: SoftState): void {
    const before = this.#softState
    this.#softState = soft
    if (soft.leader !== before.leader) {
      if (soft.leader !== 0) this.#leaderChanges++
      this.#logger.info(
        { leader: soft.leader, role: soft.role, term: this.#core.term },
        'raft: leader changed',
      )
    }
    if (soft.leader === 0) return
    if (soft.leader !== before.leader) this.#reaskReads()
    if (this.#waiting.length > 0) {
      const waiting = this.#waiting
      this.#waiting = []
      for (const proposal of waiting) this.#submit(proposal)
    }
    if (this.#readsWaiting.length > 0) {
      const waiting = this.#readsWaiting
      this.#readsWaiting = []
      for (const ctx of waiting) this.#submitRead(ctx)
    }
  }

  /** Starts a snapshot when snapshotCount entries were applied since the last (see the header). */
  #maybeSnapshot(): void {
    if (this.#snapshotJob !== undefined || this.#snapshotStaged !== undefined) return
    const applied = this.#core.appliedIndex
    if (applied - this.#lastSnapshotIndex < this.#options.snapshotCount) return
    if (this.#sm.appliedIndex !== applied) return
    const point = this.#core.snapshotPoint()
    const capture = this.#sm.captureSnapshot()
    this.#lastSnapshotIndex = applied
    this.#snapshotJob = this.#storage
      .stageSnapshot(point, capture.pieces())
      .then(
        (staged) => {
          this.#snapshotStaged = { point, staged }
        },
        (error: unknown) => {
          this.#snapshotError = error instanceof Error ? error : new Error(String(error))
        },
      )
      .finally(() => {
        this.#snapshotJob = undefined
        this.#kick()
      })
  }

  /** Compacts the log behind the staged snapshot and makes it the newest (unless it went stale). */
  async #installSnapshot(): Promise<void> {
    const pending = this.#snapshotStaged
    this.#snapshotStaged = undefined
    if (pending === undefined) return
    const result = this.#core.compactAt(pending.point, pending.staged.data)
    if (result !== undefined) {
      await this.#storage.saveCompaction(result.snapshot, result.logStart)
      await this.#keepSnapshotOnDisk(pending.point)
    } else await pending.staged.discard() // a leader's newer snapshot was restored meanwhile
    // Entries applied while this one was encoded may already call for the next.
    this.#maybeSnapshot()
  }

  /** The snapshot at `meta` is persisted: let the core read it from disk rather than hold it. */
  async #keepSnapshotOnDisk(meta: SnapshotMeta): Promise<void> {
    const stored = await this.#storage.storedSnapshot(meta.index, meta.term)
    if (stored !== undefined) this.#core.snapshotStored(meta.index, stored)
  }

  /** Peer addresses arrive in membership changes; the transport needs them before Raft does. */
  #learnPeersFrom(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const change = entry.change
      if (change === undefined || change.nodeId === this.id) continue
      if (change.type === 'removeNode') {
        this.#transport.removePeer(change.nodeId)
        continue
      }
      if (change.context === undefined || change.context.byteLength === 0) continue
      try {
        const member = decodeMemberContext(change.context)
        const url = member.peerUrls[0]
        if (url !== undefined) this.#setPeer(change.nodeId, url)
      } catch (error) {
        this.#logger.warn(
          { err: error, nodeId: change.nodeId },
          'raft: membership change without a usable address',
        )
      }
    }
  }

  #setPeer(id: NodeId, peerUrl: string): void {
    if (id === this.id) return
    const address = peerAddress(peerUrl)
    if (address === undefined) {
      this.#logger.warn({ id, peerUrl }, 'raft: unusable peer URL')
      return
    }
    this.#transport.setPeer(id, address)
  }

  async #handOffLeadership(): Promise<void> {
    const progress = this.#core.status().progress
    if (progress === undefined) return
    let best: NodeId = 0
    let bestMatch = -1
    for (const [id, pr] of progress) {
      if (id !== this.id && !pr.isLearner && pr.match > bestMatch) {
        best = id
        bestMatch = pr.match
      }
    }
    if (best === 0) return
    try {
      this.#core.transferLeadership(best)
    } catch {
      return
    }
    this.#kick()
    const deadline = Date.now() + this.#options.tickMs * this.#options.electionTicks
    while (this.#core.role === 'leader' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, this.#options.tickMs / 2))
    }
  }
}

function confChangeKey(change: ConfChange): string {
  return `${change.type}:${change.nodeId}`
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
