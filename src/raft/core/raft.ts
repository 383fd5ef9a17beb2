/**
 * RaftCore: one Raft node as a pure, deterministic state machine.
 *
 * Inputs: step(message), tick(), propose(), proposeConfChange(), readIndex(), transferLeadership().
 * Output, pulled by the driver: ready() -> Ready (see the Ready contract in types.ts), then
 * advance(ready). No timers, sockets, files, promises, clocks or Math.random() in here; election
 * jitter comes from the injected Prng.
 *
 * Roles are behaviour swapped on transition: become*() sets #stepRole and #tickRole. Term
 * comparison happens once in step() before delegating.
 *
 * Safety invariants this file maintains (the simulator checks them from outside):
 *   - term never decreases; vote is set at most once per term and reaches the Ready's hardState
 *     before any message that depends on it;
 *   - a leader never truncates its own log; it commits only an entry of its own term, counting
 *     replicas (its own copy counts only once persisted, see advance());
 *   - commit never decreases; applied <= commit;
 *   - a ReadIndex read is released only after a quorum confirmed leadership after it arrived, and
 *     only once the leader has committed an entry of its current term;
 *   - membership changes take effect when applied (in advance()), one at a time: a leader accepts
 *     a new change only after the previous one and its own term's first entry are applied;
 *   - a node does not campaign while committed membership changes are still unapplied.
 *
 * Commit notices: when the commit index moves, the leader tells every follower at once with an
 * append (etcd does the same). To a follower it knows holds every entry up to that append's start
 * (replicating, match === index) the append has no entries and is marked commitOnly, and the
 * follower does not answer it when it accepts it: the answer would only repeat the match index the
 * leader has. Under one client that is the faster follower's notice only: the commit moves on its
 * answer, while the slower one's answer to the entry is still on its way, so that one's notice is
 * unmarked and answered. Telling the slower follower only once its answer arrives would spare that
 * answer too, but its notice could then wait behind the leader's own watch fan-out (reverted,
 * docs/bench.md). The leader still hears from every follower through the heartbeat answers
 * (recentActive, check quorum, read rounds); a rejected notice is answered like any append.
 */
import { CairnError } from '../../errors.ts'
import type { RaftConfig } from './config.ts'
import { entryBytes, RaftLog } from './log.ts'
import { Progress } from './progress.ts'
import { quorumValue, voteResult } from './quorum.ts'
import { ReadRounds } from './read-rounds.ts'
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  Message,
  NodeId,
  PersistedState,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotData,
  SnapshotMessage,
  SnapshotMeta,
  SoftState,
  Status,
  StoredSnapshotData,
  VoteMessage,
} from './types.ts'
import { noNode } from './types.ts'

type CampaignKind = 'preElection' | 'election' | 'transfer'

/** Messages built by the core before from/term are filled in. */
type WithoutSender<M> = M extends Message ? Omit<M, 'from' | 'term'> & { term?: number } : never
type Outgoing = WithoutSender<Message>

export class RaftCore {
  readonly id: NodeId
  readonly #config: RaftConfig
  readonly #log: RaftLog

  #term: number
  #vote: NodeId
  #lead: NodeId = noNode
  #role: Role = 'follower'

  #voters = new Set<NodeId>()
  #learners = new Set<NodeId>()
  /** Leader only: replication state of every member, this node included. */
  #progress = new Map<NodeId, Progress>()
  #votes = new Map<NodeId, boolean>()

  #electionElapsed = 0
  #heartbeatElapsed = 0
  #randomizedElectionTicks = 0

  #leadTransferee: NodeId = noNode
  /** Leader only: index of the newest membership change (or of the term's first entry). */
  #pendingConfIndex = 0
  /** Leader only: bytes of entries it proposed in this term that are not yet committed. */
  #uncommittedBytes = 0
  readonly #reads = new ReadRounds()
  /** Leader only: reads that arrived before the leader committed an entry of its own term. */
  #readsBeforeTermCommit: { ctx: string; from: NodeId }[] = []

  #messages: Message[] = []
  /** Outgoing messages dropped because messagesPendingMax was reached (for metrics and tests). */
  #messagesDropped = 0
  /** Incoming messages refused as impossible from a correct peer (see #refuse). */
  #messagesRefused = 0
  /** Leader only: proposals were appended since the last Ready; one append per follower carries them. */
  #appendsPending = false
  #readStates: ReadState[] = []
  #prevHardState: HardState
  #prevSoftState: SoftState
  #readyOutstanding = false

  #stepRole: (m: Message) => void = (m) => this.#stepFollower(m)
  #tickRole: () => void = () => this.#tickElection()

  constructor(config: RaftConfig, persisted: PersistedState, applied?: number) {
    this.id = config.id
    this.#config = config
    const { hardState, snapshot, logStart, entries } = persisted
    const snapshotIndex = snapshot?.meta.index ?? logStart.index
    const appliedIndex = applied ?? snapshotIndex
    if (appliedIndex < snapshotIndex) throw new Error(`raft: applied ${appliedIndex} is behind the snapshot`)
    // A snapshot is committed by definition: a crash between persisting it and its hard state must
    // not leave a commit behind the compaction point.
    const commit = Math.max(hardState.commit, logStart.index, snapshotIndex)
    this.#log = new RaftLog(logStart, entries, commit, appliedIndex, snapshot)
    this.#term = hardState.term
    this.#vote = hardState.vote
    this.#prevHardState = { ...hardState }
    this.#prevSoftState = { leader: noNode, role: 'follower' }
    this.#setConfState(snapshot?.meta.confState ?? { voters: [], learners: [] })
    for (const entry of this.#log.slice(snapshotIndex + 1, appliedIndex + 1) ?? []) {
      if (entry.change !== undefined) this.#applyConfChange(entry.change)
    }
    this.#becomeFollower(this.#term, noNode)
  }

  // ---------------------------------------------------------------------------------------------
  // Public API
  // ---------------------------------------------------------------------------------------------

  tick(): void {
    this.#tickRole()
  }

  /** Feeds one message received from the network. Messages not addressed to this node are ignored. */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) return
    if (m.term === 0) {
      this.#stepRole(m)
      return
    }
    if (m.term > this.#term && !this.#acceptHigherTerm(m)) return
    if (m.term < this.#term) {
      this.#handleStaleTerm(m)
      return
    }
    if (m.type === 'vote' || m.type === 'preVote') {
      this.#handleVoteRequest(m)
      return
    }
    this.#stepRole(m)
  }

  /** Proposes application data. On a follower it is forwarded to the leader (and may still be lost). */
  propose(data: Uint8Array): void {
    this.#propose({ index: 0, term: 0, type: 'normal', data })
  }

  proposeConfChange(change: ConfChange): void {
    this.#propose({ index: 0, term: 0, type: 'conf', data: new Uint8Array(0), change: { ...change } })
  }

  /** Asks for a linearizable read; a ReadState with this ctx appears in a later Ready. */
  readIndex(ctx: string): void {
    if (this.#role === 'leader') {
      this.#handleReadRequest(ctx, this.id, true)
    } else if (this.#lead !== noNode && this.#role === 'follower') {
      this.#send({ type: 'readIndex', to: this.#lead, term: 0, ctx })
    } else {
      throw new CairnError('RAFT_NO_LEADER')
    }
  }

  transferLeadership(transferee: NodeId): void {
    if (this.#role === 'leader') {
      this.#handleTransferLeader(transferee)
    } else if (this.#lead !== noNode && this.#role === 'follower') {
      this.#send({ type: 'transferLeader', to: this.#lead, term: 0, transferee })
    } else {
      throw new CairnError('RAFT_NO_LEADER')
    }
  }

  /** Starts an election now, as if the election timeout had elapsed (tests and tools). */
  campaign(): void {
    this.#hup(this.#config.preVote ? 'preElection' : 'election')
  }

  hasReady(): boolean {
    if (this.#readyOutstanding) return false
    return (
      this.#messages.length > 0 ||
      this.#readStates.length > 0 ||
      this.#log.pendingSnapshot !== undefined ||
      this.#log.persistedIndex < this.#log.lastIndex() ||
      this.#log.applied < this.#log.committed ||
      (this.#role === 'leader' && this.#reads.canStartRound()) ||
      this.#hardStateChanged() ||
      this.#softStateChanged()
    )
  }

  /** Whether the next Ready would carry entries or a snapshot to save (the driver's disk write). */
  hasUnsaved(): boolean {
    return this.#log.pendingSnapshot !== undefined || this.#log.persistedIndex < this.#log.lastIndex()
  }

  ready(): Ready {
    if (this.#readyOutstanding) throw new Error('raft: ready() called again before advance()')
    this.#readyOutstanding = true
    if (this.#role === 'leader') {
      if (this.#appendsPending) this.#bcastPendingAppends()
      this.#startReadRound()
    }
    this.#appendsPending = false
    const hardState = this.#hardState()
    const softState = this.#softState()
    const snapshot = this.#log.pendingSnapshot
    const entries = this.#log.unstableEntries()
    const rd: Ready = {
      softState: sameSoftState(softState, this.#prevSoftState) ? undefined : softState,
      hardState: sameHardState(hardState, this.#prevHardState) ? undefined : hardState,
      snapshot,
      entries,
      committedEntries: snapshot
        ? []
        : this.#log.nextCommittedEntries(this.#config.committedBytesPerReadyMax),
      messages: this.#messages,
      readStates: this.#readStates,
      mustSync:
        snapshot !== undefined ||
        entries.length > 0 ||
        hardState.term !== this.#prevHardState.term ||
        hardState.vote !== this.#prevHardState.vote,
    }
    this.#messages = []
    this.#readStates = []
    this.#prevHardState = hardState
    this.#prevSoftState = softState
    return rd
  }

  /** The driver has persisted, sent and applied everything in rd. */
  advance(rd: Ready): void {
    if (!this.#readyOutstanding) throw new Error('raft: advance() without an outstanding ready()')
    this.#readyOutstanding = false
    if (rd.snapshot !== undefined) {
      if (this.#log.pendingSnapshot === rd.snapshot) this.#log.pendingSnapshot = undefined
      if (rd.snapshot.meta.index > this.#log.applied && rd.snapshot.meta.index <= this.#log.committed) {
        this.#log.applied = rd.snapshot.meta.index
      }
    }
    const lastEntry = rd.entries[rd.entries.length - 1]
    if (lastEntry !== undefined) this.#log.stableTo(lastEntry.index, lastEntry.term)
    // A snapshot restored since this Ready was taken already holds the membership of these entries.
    const coveredBySnapshot = this.#log.pendingSnapshot?.meta.index ?? 0
    for (const entry of rd.committedEntries) {
      if (entry.index <= this.#log.applied) continue
      this.#log.appliedTo(entry.index)
      if (entry.change !== undefined && entry.index > coveredBySnapshot)
        this.#applyConfChangeAndReact(entry.change)
    }
    if (this.#role === 'leader') this.#selfAck()
  }

  /**
   * The application took a snapshot of its state at its applied index. The log is compacted behind
   * it (keeping snapshotRetainedEntries). Returns the snapshot and the new compaction point, which
   * the driver must persist (snapshot first, then drop entries up to logStart).
   */
  compact(
    index: number,
    data: SnapshotData,
  ): { snapshot: Snapshot; logStart: { index: number; term: number } } {
    if (index !== this.#log.applied)
      throw new Error(`raft: compact(${index}) must be at applied ${this.#log.applied}`)
    const result = this.compactAt(this.snapshotPoint(), data)
    if (result === undefined) throw new Error(`raft: compact(${index}) is behind the newest snapshot`)
    return result
  }

  /**
   * Where a snapshot of the application's state taken now stands: the applied index, its term and
   * the membership in force there. The driver captures its state with this point and may encode it
   * later, while more entries are applied, then hands both to compactAt().
   */
  snapshotPoint(): SnapshotMeta {
    const index = this.#log.applied
    const term = this.#log.term(index)
    if (term === undefined) throw new Error(`raft: applied ${index} is behind the log start`)
    return { index, term, confState: this.#confState() }
  }

  /**
   * compact() for a snapshot taken at an earlier point (snapshotPoint()). Returns undefined, and
   * changes nothing, when the point is stale: at or behind the newest snapshot the log already has
   * (a leader's snapshot restored since), or no longer in the log with its term.
   */
  compactAt(
    point: SnapshotMeta,
    data: SnapshotData,
  ): { snapshot: Snapshot; logStart: { index: number; term: number } } | undefined {
    if (point.index > this.#log.applied) throw new Error(`raft: snapshot at ${point.index} beyond applied`)
    if (point.index <= (this.#log.snapshot?.meta.index ?? 0)) return undefined
    if (this.#log.term(point.index) !== point.term) return undefined
    const snapshot: Snapshot = { meta: point, data }
    this.#log.compact(snapshot, this.#config.snapshotRetainedEntries)
    const start = this.#log.startIndex
    return { snapshot, logStart: { index: start, term: this.#log.term(start) as number } }
  }

  /**
   * The snapshot at `index` is now on disk: keep `data` (read from the file when a peer needs it)
   * instead of the bytes, so the member does not hold its snapshot in memory. Ignored if the log's
   * newest snapshot is another one by now.
   */
  snapshotStored(index: number, data: StoredSnapshotData): void {
    const snapshot = this.#log.snapshot
    if (snapshot === undefined || snapshot.meta.index !== index) return
    if (data.byteLength !== snapshot.data.byteLength) throw new Error('raft: stored snapshot size differs')
    this.#log.snapshot = { meta: snapshot.meta, data }
  }

  /** The transport reports whether a snapshot it sent to `to` arrived. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.#role === 'leader' ? this.#progress.get(to) : undefined
    if (pr === undefined || pr.state !== 'snapshot') return
    // On success the follower's append response moves it on; either way probe again from here.
    if (!ok) pr.pendingSnapshot = 0
    pr.becomeProbe()
    pr.probeSent = ok
  }

  /** The transport could not reach `to`: stop optimistic pipelining to it. */
  reportUnreachable(to: NodeId): void {
    const pr = this.#role === 'leader' ? this.#progress.get(to) : undefined
    if (pr !== undefined && pr.state === 'replicate') pr.becomeProbe()
  }

  /**
   * The driver learned that `peer`'s process is down: a connection to its peer address was refused
   * (nothing listens there), which a partition or a slow or paused peer never causes. If `peer` is
   * this follower's leader, the follower forgets it at once, so it no longer holds the leader lease
   * and grants pre-votes, and it campaigns after 1 + rank ticks instead of a whole election
   * timeout, rank being its place by id among the other voters: survivors that all learn of the
   * death campaign a tick apart, lowest id first, instead of splitting the vote. Ignored on any
   * other role, about any other peer, and with campaignWhenLeaderDown off.
   *
   * Safety never rests on this report. A wrong one (the leader is alive) costs a pre-vote the other
   * followers ignore, since they still hear from the leader, and the leader's next heartbeat makes
   * this node its follower again; without PreVote it can cost one term.
   */
  reportPeerDown(peer: NodeId): void {
    if (!this.#config.campaignWhenLeaderDown || this.#role !== 'follower') return
    if (peer === noNode || peer !== this.#lead || !this.#promotable()) return
    let rank = 0
    for (const id of this.#voters) if (id !== peer && id < this.id) rank++
    this.#lead = noNode
    this.#electionElapsed = Math.max(this.#electionElapsed, this.#randomizedElectionTicks - (1 + rank))
  }

  get term(): number {
    return this.#term
  }

  get role(): Role {
    return this.#role
  }

  get leader(): NodeId {
    return this.#lead
  }

  get commitIndex(): number {
    return this.#log.committed
  }

  get appliedIndex(): number {
    return this.#log.applied
  }

  /** Incoming messages refused so far as impossible from a correct peer in this state. */
  get messagesRefused(): number {
    return this.#messagesRefused
  }

  /** Outgoing messages dropped so far because messagesPendingMax was reached. */
  get messagesDropped(): number {
    return this.#messagesDropped
  }

  /** A full copy of the node's state; allocates, so hot paths use the getters above. */
  status(): Status {
    let progress: Status['progress']
    if (this.#role === 'leader') {
      progress = new Map()
      for (const [id, pr] of this.#progress) progress.set(id, pr.status())
    }
    return {
      id: this.id,
      term: this.#term,
      vote: this.#vote,
      role: this.#role,
      leader: this.#lead,
      commit: this.#log.committed,
      applied: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      confState: this.#confState(),
      progress,
      leadTransferee: this.#leadTransferee,
    }
  }

  /** Entries with index in [lo, hi) that are still in memory (not compacted). */
  logEntries(lo: number, hi: number): Entry[] {
    const from = Math.max(lo, this.#log.firstIndex())
    const to = Math.min(hi, this.#log.lastIndex() + 1)
    if (from >= to) return []
    return this.#log.slice(from, to) ?? []
  }

  logTerm(index: number): number | undefined {
    return this.#log.term(index)
  }

  // ---------------------------------------------------------------------------------------------
  // Role transitions
  // ---------------------------------------------------------------------------------------------

  #becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term)
    this.#lead = lead
    this.#role = 'follower'
    this.#stepRole = (m) => this.#stepFollower(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomePreCandidate(): void {
    if (this.#role === 'leader') throw new Error('raft: leader cannot become pre-candidate')
    // Term and vote stay: a pre-election changes nothing durable.
    this.#votes.clear()
    this.#lead = noNode
    this.#role = 'preCandidate'
    this.#stepRole = (m) => this.#stepCandidate(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomeCandidate(): void {
    if (this.#role === 'leader') throw new Error('raft: leader cannot become candidate')
    this.#reset(this.#term + 1)
    this.#vote = this.id
    this.#role = 'candidate'
    this.#stepRole = (m) => this.#stepCandidate(m)
    this.#tickRole = () => this.#tickElection()
  }

  #becomeLeader(): void {
    if (this.#role === 'follower') throw new Error('raft: follower cannot become leader directly')
    this.#reset(this.#term)
    this.#lead = this.id
    this.#role = 'leader'
    this.#stepRole = (m) => this.#stepLeader(m)
    this.#tickRole = () => this.#tickHeartbeat()
    const next = this.#log.lastIndex() + 1
    for (const id of [...this.#voters, ...this.#learners]) {
      this.#progress.set(id, new Progress(next, this.#learners.has(id), this.#config.inflightMsgsMax))
    }
    const self = this.#progress.get(this.id)
    if (self !== undefined) {
      self.match = this.#log.persistedIndex
      self.becomeReplicate()
      self.next = next
      self.recentActive = true
    }
    // The term's first entry: committing it commits everything before it (paper §5.4.2, §8).
    const noop: Entry = { index: next, term: this.#term, type: 'normal', data: new Uint8Array(0) }
    this.#log.append([noop])
    this.#uncommittedBytes = entryBytes(noop) // released like any entry of this term when committed
    this.#pendingConfIndex = next
  }

  #reset(term: number): void {
    if (term !== this.#term) {
      this.#term = term
      this.#vote = noNode
    }
    this.#lead = noNode
    this.#electionElapsed = 0
    this.#heartbeatElapsed = 0
    this.#randomizedElectionTicks =
      this.#config.electionTicks + this.#config.prng.int(0, this.#config.electionTicks)
    this.#leadTransferee = noNode
    this.#votes.clear()
    this.#progress.clear()
    this.#pendingConfIndex = 0
    this.#uncommittedBytes = 0
    this.#reads.reset()
    this.#readsBeforeTermCommit = []
  }

  // ---------------------------------------------------------------------------------------------
  // Ticks and elections
  // ---------------------------------------------------------------------------------------------

  #tickElection(): void {
    this.#electionElapsed++
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTicks) {
      this.#electionElapsed = 0
      this.#hup(this.#config.preVote ? 'preElection' : 'election')
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++
    this.#electionElapsed++
    if (this.#electionElapsed >= this.#config.electionTicks) {
      this.#electionElapsed = 0
      if (this.#config.checkQuorum && !this.#quorumActive()) {
        this.#becomeFollower(this.#term, noNode)
        return
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.#leadTransferee = noNode
    }
    if (this.#heartbeatElapsed >= this.#config.heartbeatTicks) {
      this.#heartbeatElapsed = 0
      this.#bcastHeartbeat()
    }
  }

  /** CheckQuorum: were a quorum of voters heard from since the last check? Resets the marks. */
  #quorumActive(): boolean {
    const active = quorumValue(this.#voters, (id) =>
      id === this.id || this.#progress.get(id)?.recentActive ? 1 : 0,
    )
    for (const [id, pr] of this.#progress) pr.recentActive = id === this.id
    return active === 1
  }

  #promotable(): boolean {
    return this.#voters.has(this.id)
  }

  #hup(kind: CampaignKind): void {
    if (this.#role === 'leader' || !this.#promotable()) return
    if (this.#hasUnappliedConfChange()) return
    this.#campaign(kind)
  }

  #hasUnappliedConfChange(): boolean {
    const from = Math.max(this.#log.applied, this.#log.startIndex) + 1
    const unapplied = this.#log.slice(from, this.#log.committed + 1) ?? []
    return unapplied.some((e) => e.type === 'conf')
  }

  #campaign(kind: CampaignKind): void {
    const pre = kind === 'preElection'
    if (pre) this.#becomePreCandidate()
    else this.#becomeCandidate()
    const type = pre ? 'preVote' : 'vote'
    const term = pre ? this.#term + 1 : this.#term
    this.#votes.set(this.id, true)
    if (this.#pollResult() === 'won') {
      if (pre) this.#campaign('election')
      else this.#becomeLeader()
      return
    }
    for (const id of this.#voters) {
      if (id === this.id) continue
      this.#send({
        type,
        to: id,
        term,
        lastLogIndex: this.#log.lastIndex(),
        lastLogTerm: this.#log.lastTerm(),
        force: kind === 'transfer',
      })
    }
  }

  #pollResult(): ReturnType<typeof voteResult> {
    return voteResult(this.#voters, this.#votes)
  }

  /** A message from a higher term arrived. Returns whether to go on processing it. */
  #acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      // Leader lease: while we hear from a leader, ignore candidates (keeps removed or partitioned
      // nodes from disrupting a healthy cluster). A leadership transfer overrides it.
      const inLease =
        this.#config.checkQuorum &&
        this.#lead !== noNode &&
        this.#electionElapsed < this.#config.electionTicks
      if (inLease && !m.force) return false
    }
    if (m.type === 'preVote') return true // never changes our term
    if (m.type === 'preVoteResp' && !m.reject) return true // the term is our own future term
    const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap'
    const elapsed = this.#electionElapsed
    this.#becomeFollower(m.term, fromLeader ? m.from : noNode)
    // Raft figure 2: only a granted vote restarts the election timer. A stale candidate that cannot
    // win must not keep up-to-date nodes from timing out (they adopt its term but keep counting).
    if (m.type === 'vote') this.#electionElapsed = elapsed
    return true
  }

  #handleStaleTerm(m: Message): void {
    if ((this.#config.checkQuorum || this.#config.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
      // A leader cut off from the cluster learns the newer term and steps down.
      this.#send({ type: 'appResp', to: m.from, index: 0, reject: false, rejectHint: 0, logTerm: 0 })
    } else if (m.type === 'preVote') {
      this.#send({ type: 'preVoteResp', to: m.from, reject: true })
    }
  }

  #handleVoteRequest(m: VoteMessage): void {
    const pre = m.type === 'preVote'
    const voteTwice = this.#config.plantedBugs.has('voteTwiceInTerm')
    const canVote =
      this.#vote === m.from ||
      (this.#vote === noNode && this.#lead === noNode) ||
      (pre && m.term > this.#term) ||
      (voteTwice && !pre)
    const grant = canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)
    const respType = pre ? 'preVoteResp' : 'voteResp'
    if (grant) {
      // A granted pre-vote answers in the candidate's future term so it passes the term check.
      this.#send({ type: respType, to: m.from, term: m.term, reject: false })
      if (!pre) {
        this.#electionElapsed = 0
        this.#vote = m.from
      }
    } else {
      this.#send({ type: respType, to: m.from, reject: true })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Role step functions
  // ---------------------------------------------------------------------------------------------

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.#lead !== noNode) this.#send({ type: 'prop', to: this.#lead, term: 0, entries: m.entries })
        return
      case 'app':
        this.#heardFromLeader(m.from)
        this.#handleAppend(m)
        return
      case 'heartbeat':
        this.#heardFromLeader(m.from)
        this.#handleHeartbeat(m)
        return
      case 'snap':
        this.#heardFromLeader(m.from)
        this.#handleSnapshot(m)
        return
      case 'transferLeader':
        if (this.#lead !== noNode) this.#send({ ...m, to: this.#lead, term: 0 })
        return
      case 'timeoutNow':
        this.#hup('transfer')
        return
      case 'readIndex':
        if (this.#lead !== noNode) this.#send({ type: 'readIndex', to: this.#lead, term: 0, ctx: m.ctx })
        return
      case 'readIndexResp':
        this.#readStates.push({ index: m.index, ctx: m.ctx })
        return
      default:
        return
    }
  }

  #heardFromLeader(leader: NodeId): void {
    this.#electionElapsed = 0
    this.#lead = leader
  }

  #stepCandidate(m: Message): void {
    const expected = this.#role === 'preCandidate' ? 'preVoteResp' : 'voteResp'
    switch (m.type) {
      case 'app':
        this.#becomeFollower(m.term, m.from)
        this.#handleAppend(m)
        return
      case 'heartbeat':
        this.#becomeFollower(m.term, m.from)
        this.#handleHeartbeat(m)
        return
      case 'snap':
        this.#becomeFollower(m.term, m.from)
        this.#handleSnapshot(m)
        return
      case 'voteResp':
      case 'preVoteResp':
        if (m.type === expected) this.#handleVoteResponse(m.from, !m.reject)
        return
      default:
        return // proposals, reads and transfers are dropped: no leader is known
    }
  }

  #handleVoteResponse(from: NodeId, granted: boolean): void {
    if (!this.#votes.has(from)) this.#votes.set(from, granted)
    const result = this.#pollResult()
    if (result === 'won') {
      if (this.#role === 'preCandidate') {
        this.#campaign('election')
      } else {
        this.#becomeLeader()
        this.#bcastAppend()
      }
    } else if (result === 'lost') {
      this.#becomeFollower(this.#term, noNode)
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case 'prop':
        this.#stepLeaderProposal(m.entries)
        return
      case 'readIndex':
        this.#handleReadRequest(m.ctx, m.from, false)
        return
      case 'transferLeader':
        this.#handleTransferLeader(m.transferee)
        return
      case 'appResp':
        this.#handleAppendResponse(m)
        return
      case 'heartbeatResp':
        this.#handleHeartbeatResponse(m.from, m.readRound)
        return
      default:
        return
    }
  }

  /** Forwarded proposals: refused ones are dropped (the proposer times out and retries). */
  #stepLeaderProposal(entries: Entry[]): void {
    for (const entry of entries) {
      try {
        this.#appendProposal(entry)
      } catch (error) {
        if (!(error instanceof CairnError)) throw error
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals and membership
  // ---------------------------------------------------------------------------------------------

  #propose(entry: Entry): void {
    if (this.#role === 'leader') {
      this.#appendProposal(entry)
    } else if (this.#role === 'follower' && this.#lead !== noNode) {
      this.#send({ type: 'prop', to: this.#lead, term: 0, entries: [entry] })
    } else {
      throw new CairnError('RAFT_NO_LEADER')
    }
  }

  #appendProposal(proposal: Entry): void {
    if (!this.#progress.has(this.id)) throw new CairnError('RAFT_NOT_MEMBER')
    if (this.#leadTransferee !== noNode) throw new CairnError('RAFT_LEADER_TRANSFER_IN_PROGRESS')
    const bytes = entryBytes(proposal)
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#config.uncommittedBytesMax) {
      throw new CairnError('RAFT_UNCOMMITTED_BYTES_MAX', `${this.#uncommittedBytes} bytes pending`)
    }
    if (proposal.change !== undefined) this.#checkConfChange(proposal.change)
    const index = this.#log.lastIndex() + 1
    const entry: Entry = { ...proposal, index, term: this.#term }
    this.#log.append([entry])
    this.#uncommittedBytes += bytes
    if (entry.change !== undefined) this.#pendingConfIndex = index
    this.#appendsPending = true
  }

  #checkConfChange(change: ConfChange): void {
    if (this.#pendingConfIndex > this.#log.applied) {
      throw new CairnError('RAFT_CONF_CHANGE_PENDING', `change at ${this.#pendingConfIndex} not yet applied`)
    }
    const { nodeId } = change
    const isVoter = this.#voters.has(nodeId)
    const isLearner = this.#learners.has(nodeId)
    if (!Number.isSafeInteger(nodeId) || nodeId <= 0)
      throw new CairnError('RAFT_CONF_CHANGE_INVALID', 'bad node id')
    switch (change.type) {
      case 'addVoter': {
        if (isVoter) throw new CairnError('RAFT_CONF_CHANGE_INVALID', `${nodeId} is already a voter`)
        const match = this.#progress.get(nodeId)?.match ?? 0
        // A learner that never acknowledged anything (match 0) holds nothing, however short the log.
        if (isLearner && (match === 0 || match + this.#config.learnerLagEntriesMax < this.#log.committed)) {
          throw new CairnError('RAFT_LEARNER_NOT_CAUGHT_UP', `match ${match}, commit ${this.#log.committed}`)
        }
        return
      }
      case 'addLearner':
        if (isVoter || isLearner)
          throw new CairnError('RAFT_CONF_CHANGE_INVALID', `${nodeId} is already a member`)
        return
      case 'removeNode':
        if (!isVoter && !isLearner)
          throw new CairnError('RAFT_CONF_CHANGE_INVALID', `${nodeId} is not a member`)
        if (isVoter && this.#voters.size === 1) {
          throw new CairnError('RAFT_CONF_CHANGE_INVALID', 'cannot remove the last voter')
        }
        return
    }
  }

  #applyConfChange(change: ConfChange): void {
    const { nodeId } = change
    switch (change.type) {
      case 'addVoter':
        this.#learners.delete(nodeId)
        this.#voters.add(nodeId)
        break
      case 'addLearner':
        if (!this.#voters.has(nodeId)) this.#learners.add(nodeId)
        break
      case 'removeNode':
        this.#voters.delete(nodeId)
        this.#learners.delete(nodeId)
        break
    }
  }

  /** Applies a committed membership change and adjusts leader state to the new configuration. */
  #applyConfChangeAndReact(change: ConfChange): void {
    this.#applyConfChange(change)
    if (this.#role !== 'leader') return
    const { nodeId } = change
    if (change.type === 'removeNode') {
      this.#progress.delete(nodeId)
      if (nodeId === this.id) {
        this.#becomeFollower(this.#term, noNode) // a removed leader steps down
        return
      }
      if (this.#leadTransferee === nodeId) this.#leadTransferee = noNode
    } else {
      let pr = this.#progress.get(nodeId)
      if (pr === undefined) {
        pr = new Progress(this.#log.lastIndex() + 1, false, this.#config.inflightMsgsMax)
        pr.recentActive = true
        this.#progress.set(nodeId, pr)
      }
      pr.isLearner = change.type === 'addLearner' && !this.#voters.has(nodeId)
    }
    // The quorum changed: commit may move, and reads may now be confirmed.
    if (this.#maybeCommit()) this.#bcastAppend()
    else this.#sendAppendToMember(nodeId)
    this.#releaseReads()
  }

  #setConfState(cs: ConfState): void {
    this.#voters = new Set(cs.voters)
    this.#learners = new Set(cs.learners)
  }

  #confState(): ConfState {
    return {
      voters: [...this.#voters].sort((a, b) => a - b),
      learners: [...this.#learners].sort((a, b) => a - b),
    }
  }

  #handleTransferLeader(transferee: NodeId): void {
    const pr = this.#progress.get(transferee)
    if (pr === undefined || pr.isLearner || transferee === this.id) return
    if (this.#leadTransferee === transferee) return
    this.#leadTransferee = transferee
    this.#electionElapsed = 0 // the transfer must finish within one election timeout
    if (pr.match === this.#log.lastIndex()) this.#send({ type: 'timeoutNow', to: transferee })
    else this.#maybeSendAppend(transferee, true)
  }

  // ---------------------------------------------------------------------------------------------
  // Replication: leader side
  // ---------------------------------------------------------------------------------------------

  #bcastAppend(): void {
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#maybeSendAppend(id, true)
    }
  }

  /** Sends new entries to every follower that does not have them in flight yet (no empty appends). */
  #bcastPendingAppends(): void {
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#maybeSendAppend(id, false)
    }
  }

  /** Contacts a member just added to the configuration (an empty append is its first probe). */
  #sendAppendToMember(id: NodeId): void {
    if (id !== this.id && this.#progress.has(id)) this.#maybeSendAppend(id, true)
  }

  /** Sends entries (or a snapshot) to `to` if its progress allows. Returns whether it sent. */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.#log.term(prevIndex)
    const entries =
      prevTerm === undefined
        ? undefined
        : this.#log.slice(pr.next, this.#log.lastIndex() + 1, this.#config.appendBytesMax)
    if (prevTerm === undefined || entries === undefined) return this.#maybeSendSnapshot(to, pr)
    if (entries.length === 0 && !sendIfEmpty) return false
    const message: Omit<AppendMessage, 'from' | 'term'> = {
      type: 'app',
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.#log.committed,
    }
    // A commit notice (see the header): nothing to learn from its answer.
    if (entries.length === 0 && pr.state === 'replicate' && pr.match === prevIndex) message.commitOnly = true
    this.#send(message)
    let bytes = 0
    for (const entry of entries) bytes += entryBytes(entry)
    pr.sentEntries(entries.length, bytes, prevIndex + entries.length)
    return true
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false
    const snapshot = this.#log.snapshot
    if (snapshot === undefined) throw new Error(`raft: ${to} needs a snapshot but none exists`)
    const message: Omit<SnapshotMessage, 'from' | 'term'> = { type: 'snap', to, snapshot }
    this.#send(message)
    pr.becomeSnapshot(snapshot.meta.index)
    return true
  }

  #bcastHeartbeat(): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue
      // Never claim a commit beyond what the follower is known to hold.
      const commit = Math.min(pr.match, this.#log.committed)
      const message: Omit<HeartbeatMessage, 'from' | 'term'> = {
        type: 'heartbeat',
        to: id,
        commit,
        readRound: this.#reads.lastRound,
      }
      this.#send(message)
    }
  }

  #handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return
    if (!m.reject && m.index > this.#log.lastIndex()) {
      this.#refuse(m, 'acknowledges beyond our log')
      return
    }
    pr.recentActive = true
    if (m.reject) {
      const hint = m.logTerm > 0 ? this.#log.findConflictByTerm(m.rejectHint, m.logTerm) : m.rejectHint
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        this.#maybeSendAppend(m.from, true)
      }
      return
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return
    if (pr.state === 'probe') {
      pr.becomeReplicate()
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.#log.firstIndex()) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index)
    }
    if (this.#maybeCommit()) this.#bcastAppend()
    else if (wasPaused) this.#maybeSendAppend(m.from, true)
    while (this.#maybeSendAppend(m.from, false)) {}
    if (m.from === this.#leadTransferee && pr.match === this.#log.lastIndex()) {
      this.#send({ type: 'timeoutNow', to: m.from })
    }
  }

  #handleHeartbeatResponse(from: NodeId, readRound: number): void {
    const pr = this.#progress.get(from)
    if (pr === undefined) return
    if (readRound > this.#reads.lastRound) {
      this.#messagesRefused++
      return
    }
    pr.recentActive = true
    pr.probeSent = false
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne()
    if (pr.match < this.#log.lastIndex()) this.#maybeSendAppend(from, true)
    if (readRound > 0 && !pr.isLearner) {
      this.#reads.ack(from, readRound)
      this.#releaseReads()
    }
  }

  /** The leader's own entries became durable: count its copy and try to commit. */
  #selfAck(): void {
    const self = this.#progress.get(this.id)
    if (self === undefined) return
    if (self.maybeUpdate(this.#log.persistedIndex) && this.#maybeCommit()) this.#bcastAppend()
  }

  /** Commits the highest index a quorum holds, if it belongs to this term. Returns whether it moved. */
  #maybeCommit(): boolean {
    const index = quorumValue(this.#voters, (id) => this.#progress.get(id)?.match ?? 0)
    if (index <= this.#log.committed) return false
    const countOldTerms = this.#config.plantedBugs.has('commitOldTermByCount')
    if (this.#log.term(index) !== this.#term && !countOldTerms) return false
    const before = this.#log.committed
    const committedThisTermBefore = this.#log.term(before) === this.#term
    this.#log.commitTo(index)
    this.#releaseUncommittedBytes(before, index)
    if (!committedThisTermBefore && this.#log.term(index) === this.#term) this.#onFirstCommitInTerm()
    return true
  }

  #releaseUncommittedBytes(from: number, to: number): void {
    for (const entry of this.#log.slice(from + 1, to + 1) ?? []) {
      if (entry.term === this.#term) this.#uncommittedBytes -= entryBytes(entry)
    }
    if (this.#uncommittedBytes < 0) this.#uncommittedBytes = 0
  }

  // ---------------------------------------------------------------------------------------------
  // Replication: follower side
  // ---------------------------------------------------------------------------------------------

  #handleAppend(m: AppendMessage): void {
    if (m.index < this.#log.committed) {
      this.#sendAppendResponse(m.from, this.#log.committed)
      return
    }
    const lastNewIndex = this.#log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNewIndex !== undefined) {
      // An accepted commit notice is not answered (see the header, "Commit notices").
      if (m.commitOnly !== true || m.entries.length > 0) this.#sendAppendResponse(m.from, lastNewIndex)
      return
    }
    const hintIndex = this.#log.findConflictByTerm(Math.min(m.index, this.#log.lastIndex()), m.logTerm)
    this.#send({
      type: 'appResp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.#log.term(hintIndex) ?? 0,
    })
  }

  #sendAppendResponse(to: NodeId, index: number): void {
    this.#send({ type: 'appResp', to, index, reject: false, rejectHint: 0, logTerm: 0 })
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    if (m.commit > this.#log.lastIndex()) {
      this.#refuse(m, 'commits beyond our log')
      return
    }
    this.#log.commitTo(m.commit)
    this.#send({ type: 'heartbeatResp', to: m.from, readRound: m.readRound })
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const { meta } = m.snapshot
    if (meta.index <= this.#log.committed) {
      this.#sendAppendResponse(m.from, this.#log.committed)
      return
    }
    if (this.#log.matchTerm(meta.index, meta.term)) {
      // We already have the entries: just fast-forward commit.
      this.#log.commitTo(meta.index)
      this.#sendAppendResponse(m.from, this.#log.committed)
      return
    }
    this.#log.restore(m.snapshot)
    this.#setConfState(meta.confState)
    this.#sendAppendResponse(m.from, this.#log.lastIndex())
  }

  // ---------------------------------------------------------------------------------------------
  // Linearizable reads
  // ---------------------------------------------------------------------------------------------

  #handleReadRequest(ctx: string, from: NodeId, local: boolean): void {
    const full = this.#reads.size + this.#readsBeforeTermCommit.length >= this.#config.readsPendingMax
    if (full) {
      if (local) throw new CairnError('RAFT_READS_PENDING_MAX')
      return
    }
    if (this.#log.term(this.#log.committed) !== this.#term) {
      // Our commit index may lag the cluster's until our own first entry commits.
      this.#readsBeforeTermCommit.push({ ctx, from })
      return
    }
    const skipRound = this.#config.plantedBugs.has('readWithoutQuorum')
    if (skipRound || (this.#voters.size === 1 && this.#voters.has(this.id))) {
      this.#answerRead(ctx, from, this.#log.committed)
      return
    }
    this.#reads.add(ctx, this.#log.committed, from)
  }

  #onFirstCommitInTerm(): void {
    const waiting = this.#readsBeforeTermCommit
    this.#readsBeforeTermCommit = []
    for (const read of waiting) this.#handleReadRequest(read.ctx, read.from, false)
  }

  #startReadRound(): void {
    const round = this.#reads.startRound()
    if (round === 0) return
    this.#reads.ack(this.id, round)
    this.#bcastHeartbeat()
    this.#releaseReads()
  }

  #releaseReads(): void {
    for (const read of this.#reads.release(this.#voters)) this.#answerRead(read.ctx, read.from, read.index)
  }

  #answerRead(ctx: string, from: NodeId, index: number): void {
    if (from === this.id) this.#readStates.push({ index, ctx })
    else this.#send({ type: 'readIndexResp', to: from, term: this.#term, ctx, index })
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------

  /**
   * Drops a well-formed message that no correct peer can send in our state (a hostile or broken
   * peer, or lost data on one side). Nothing was changed; the count is exposed so that operators
   * and the simulator see it (the simulator treats any refusal as a violation).
   */
  #refuse(_m: Message, _why: string): void {
    this.#messagesRefused++
  }

  /** Queues a message for the next Ready; fills in the sender and (unless given) the current term. */
  #send(m: Outgoing): void {
    // Every call site builds a fresh literal, so filling it in place is safe (and spares a copy).
    const message = m as Message
    message.from = this.id
    if (m.term === undefined) message.term = this.#term
    if (this.#messages.length >= this.#config.messagesPendingMax && message.type !== 'snap') {
      this.#messagesDropped++
      return
    }
    this.#messages.push(message)
  }

  /** Allocation-free comparisons for hasReady(), which the driver calls on every wake. */
  #hardStateChanged(): boolean {
    const prev = this.#prevHardState
    return prev.term !== this.#term || prev.vote !== this.#vote || prev.commit !== this.#log.committed
  }

  #softStateChanged(): boolean {
    return this.#prevSoftState.leader !== this.#lead || this.#prevSoftState.role !== this.#role
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed }
  }

  #softState(): SoftState {
    return { leader: this.#lead, role: this.#role }
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role
}
