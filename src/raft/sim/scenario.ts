/**
 * The knobs of one simulated run, drawn from its seed ("swarm testing"): cluster size, core
 * configuration, network faults, partitions, crashes, workload and membership churn.
 *
 * Each fault class is switched on or off per run and then drawn within its range, so runs explore
 * mixes (a quiet network with many crashes, a lossy network with none) instead of the same uniform
 * chaos every time. Overrides are applied after drawing, so a seed draws the same base scenario
 * whatever the overrides are.
 *
 * Invariants: probabilities are in [0, 1]; 1 <= heartbeatTicks < electionTicks;
 * opTimeoutTicks < livenessTicksMax (a client can time out and retry inside the liveness window).
 */
import type { Prng } from '../core/prng.ts'
import type { PartitionShape } from './partition.ts'

export interface Scenario {
  /** Founding voters: 3, 5 or 7. */
  nodeCount: number
  /** Nodes ever started in the run, founders and learners added later together. */
  nodesMax: number

  electionTicks: number
  heartbeatTicks: number
  preVote: boolean
  checkQuorum: boolean
  appendBytesMax: number
  inflightMsgsMax: number
  uncommittedBytesMax: number
  readsPendingMax: number
  /** Per tick: freeze one node (no ticks, no Readies, messages held) for up to 4 election timeouts. */
  pauseProbability: number
  snapshotRetainedEntries: number
  learnerLagEntriesMax: number

  /** Ticks of the fault phase; then everything heals and the liveness phase begins. */
  faultTicks: number
  /**
   * Ticks the healed cluster may go without progress (a live member applying more) before it is
   * declared stalled; it must also converge within livenessCapFactor (run.ts) times this.
   */
  livenessTicksMax: number

  dropProbability: number
  duplicateProbability: number
  delayTicksMin: number
  /** Mean of the exponential part of a message's delay (0: fixed delay). */
  delayTicksMean: number
  /** Messages queued on one directed link; past it, new messages are dropped. */
  linkMessagesMax: number

  /** Per tick, while healed and stable: chance that a partition starts. */
  partitionProbability: number
  partitionTicksMin: number
  partitionTicksMax: number
  /** Ticks the network stays healed after a partition before another may start. */
  partitionStableTicks: number
  partitionShapes: PartitionShape[]

  /** Per tick: chance that one node crashes (within the crash budget). */
  crashProbability: number
  /** Of crashes: the share that tears the node's next Ready (a prefix persisted, nothing sent). */
  tornWriteProbability: number
  /** Of crashes: the share that first defers the node's Readies so unpersisted work is lost. */
  lossyCrashProbability: number
  restartTicksMin: number
  restartTicksMax: number
  /** Per event: chance that a node's Ready waits for the end of the tick (batched work). */
  readyDeferProbability: number
  /**
   * Clock skew: each node's clock runs at a rate drawn from [1 - skew, 1 + skew] ticks per
   * simulated tick, for the whole run (clocks do not heal). 0: all clocks agree.
   */
  clockSkew: number
  /** Test-only storage bug: on restart the disk drops its last persisted entry. */
  storageLosesLastEntry: boolean

  /** The application snapshots (and the core compacts) every this many applied entries. */
  snapshotEveryEntries: number

  clientCount: number
  /** Per tick, per idle client: chance of starting an operation. */
  requestProbability: number
  readFraction: number
  keyCount: number
  opTimeoutTicks: number

  /** Per tick: chance of one membership step (add a learner, promote it, remove a voter). */
  membershipProbability: number
  /** Per tick: chance of asking the leader to transfer leadership to a random voter. */
  transferProbability: number
  /**
   * Every tick, each live member is told of every member whose process is down and that its
   * links let it dial (reportPeerDown), as a real transport's refused redials tell it.
   */
  peerDownReports: boolean
}

export const allPartitionShapes: PartitionShape[] = [
  'majorityMinority',
  'isolateLeader',
  'isolateNode',
  'bridge',
  'asymmetricPair',
  'deafNode',
  'muteNode',
]

/** Fault-phase length of a default run; sized so 500 seeds stay well under a minute on 2 cores. */
export const faultTicksDefault = 1500

/**
 * Mean one-way delay of the healed network, as a share of electionTicks: timeouts must stay well
 * above a round trip, or no leader can hold on (that would be a timing fault, not a liveness bug).
 */
export const healedDelayShareOfElection = 1 / 8

export function drawScenario(prng: Prng, overrides: Partial<Scenario> = {}): Scenario {
  const electionTicks = prng.int(8, 20)
  const on = (p: number): boolean => prng.chance(p)
  const preVote = on(0.8)
  const nodeCount = prng.pick([3, 3, 5, 5, 7])
  /** Sometimes the fault phase has delays near the election timeout: elections churn, safety must hold. */
  const slowNetwork = on(0.1)
  const drawn: Scenario = {
    nodeCount,
    nodesMax: nodeCount + prng.int(0, 4),
    electionTicks,
    heartbeatTicks: prng.int(1, Math.max(2, Math.floor(electionTicks / 3))),
    preVote,
    checkQuorum: on(0.8),
    appendBytesMax: on(0.3) ? 1 : prng.pick([256, 4096, 1024 * 1024]),
    inflightMsgsMax: prng.pick([1, 2, 4, 16, 256]),
    uncommittedBytesMax: on(0.2) ? prng.int(200, 2000) : 64 * 1024 * 1024,
    readsPendingMax: on(0.2) ? prng.int(1, 4) : 10_000,
    snapshotRetainedEntries: prng.pick([0, 0, 2, 10, 50]),
    learnerLagEntriesMax: prng.pick([0, 2, 10]),
    faultTicks: faultTicksDefault,
    livenessTicksMax: 20 * electionTicks,
    dropProbability: on(0.6) ? prng.float() * 0.15 : 0,
    duplicateProbability: on(0.4) ? prng.float() * 0.08 : 0,
    delayTicksMin: slowNetwork ? prng.int(0, electionTicks / 2) : prng.int(0, 2),
    delayTicksMean: slowNetwork
      ? prng.float() * electionTicks
      : on(0.7)
        ? prng.float() * electionTicks * healedDelayShareOfElection
        : 0,
    linkMessagesMax: prng.pick([16, 64, 1024]),
    partitionProbability: on(0.7) ? prng.float() * 0.03 : 0,
    partitionTicksMin: electionTicks,
    partitionTicksMax: electionTicks * prng.int(2, 8),
    partitionStableTicks: electionTicks * prng.int(1, 5),
    partitionShapes: on(0.7) ? allPartitionShapes : [prng.pick(allPartitionShapes)],
    crashProbability: on(0.6) ? prng.float() * 0.02 : 0,
    tornWriteProbability: prng.float() * 0.6,
    lossyCrashProbability: prng.float() * 0.4,
    restartTicksMin: 1,
    restartTicksMax: electionTicks * prng.int(1, 6),
    readyDeferProbability: on(0.5) ? prng.float() * 0.5 : 0,
    clockSkew: on(0.3) ? prng.float() * 0.5 : 0,
    storageLosesLastEntry: false,
    snapshotEveryEntries: prng.pick([5, 20, 100, 1000]),
    clientCount: prng.int(1, 6),
    requestProbability: 0.05 + prng.float() * 0.5,
    readFraction: prng.float() * 0.6,
    keyCount: prng.int(1, 6),
    opTimeoutTicks: electionTicks * 4,
    membershipProbability: on(0.5) ? prng.float() * 0.02 : 0,
    transferProbability: on(0.4) ? prng.float() * 0.01 : 0,
    // Drawn last, so adding it left every earlier knob of every seed as it was.
    pauseProbability: on(0.4) ? prng.float() * 0.01 : 0,
    peerDownReports: on(0.7),
  }
  return { ...drawn, ...overrides }
}
