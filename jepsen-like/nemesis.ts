/**
 * The nemesis: faults on the cluster, drawn and scheduled by the run's seed, each recorded in the
 * history as a `start` before it is applied and a `stop` after it is undone (process
 * nemesisProcess, type info, value: the Fault), so a fault's window covers all of its effect.
 *
 * Cycle: quiet for quietMs, then one or two distinct kinds of fault at once (drawn from the
 * enabled kinds) held for faultMs, then every fault undone, and again until the signal aborts;
 * the faults active then are undone before run() resolves.
 *
 *   partition  a shape from nemesis-partitions.ts, blocked links in the proxies
 *   latency    frames delayed (ms ± jitter) on every link into and out of a random set of members
 *   drop       batch frames dropped with a probability on those links
 *   kill       SIGKILL a random set (up to a majority, or the leader alone), restart on stop
 *   pause      SIGSTOP the same way, SIGCONT on stop
 *   member     remove a member (DELETE /v2/members, then SIGKILL), add it back on stop (same peer
 *              URL, fresh data directory, --initial-cluster-state existing)
 *   transfer   ask the leader to hand leadership to a random other running member
 *              (POST /_cairn/transfer-leader); nothing to undo at the stop, which records the leader
 *
 * Invariants: within one cycle the process faults (kill, pause, member) never pick the same
 * member; at most one member is removed at a time; every start entry is followed by its stop
 * entry by the time run() resolves.
 */
import type { Prng } from '../src/raft/core/prng.ts'
import type { Cluster } from './cluster.ts'
import { httpCall } from './cluster-http.ts'
import { type Fault, type HistoryRecorder, nemesisProcess } from './history.ts'
import { drawPartition, type Link, partitionShapes } from './nemesis-partitions.ts'
import { sleep } from './workloads/workload.ts'

export const nemesisKinds = ['partition', 'latency', 'drop', 'kill', 'pause', 'member', 'transfer'] as const
export type NemesisKind = (typeof nemesisKinds)[number]

/** Faults the issue asks for that this harness cannot inject, and why. */
export const unsupportedNemeses: Record<string, string> = {}

/** `--nemesis` value: comma-separated kinds, `all`, or `none`. Throws on an unknown or unsupported kind. */
export function parseNemeses(text: string): NemesisKind[] {
  const kinds = new Set<NemesisKind>()
  for (const raw of text.split(',')) {
    const item = raw.trim()
    if (item === '' || item === 'none') continue
    if (item === 'all') {
      for (const k of nemesisKinds) kinds.add(k)
      continue
    }
    const unsupported = unsupportedNemeses[item]
    if (unsupported !== undefined) throw new Error(`--nemesis ${item} is not available: ${unsupported}`)
    if (!(nemesisKinds as readonly string[]).includes(item)) {
      throw new Error(`--nemesis: unknown "${item}" (want ${nemesisKinds.join(', ')}, all or none)`)
    }
    kinds.add(item as NemesisKind)
  }
  return [...kinds]
}

export interface NemesisOptions {
  kinds: readonly NemesisKind[]
  cluster: Cluster
  recorder: HistoryRecorder
  prng: Prng
  /** How long faults are held: uniform in [min, max). */
  faultMs: [number, number]
  /** Quiet time between two fault periods: uniform in [min, max). */
  quietMs: [number, number]
  log(line: string): void
}

export const nemesisDefaults = { faultMs: [3_000, 6_000], quietMs: [2_000, 4_000] } as const

/** Latency and drop ranges (a fault, never a permanent outage: below the election timeout). */
const latencyMsRange: [number, number] = [20, 250]
const dropProbabilityRange: [number, number] = [0.05, 0.4]

interface ActiveFault {
  fault: Fault
  /** Undoes the fault; answers what the stop entry adds to the detail. */
  undo(): Promise<Record<string, unknown>>
}

export class Nemesis {
  readonly #o: NemesisOptions
  readonly #active: ActiveFault[] = []
  readonly counts: Record<string, number> = {}
  #nextId = 0

  constructor(options: NemesisOptions) {
    this.#o = options
  }

  async run(signal: AbortSignal): Promise<void> {
    const { kinds, prng } = this.#o
    while (kinds.length > 0 && !signal.aborted) {
      await sleep(uniform(prng, this.#o.quietMs), signal)
      if (signal.aborted) break
      const chosen = prng.shuffled(kinds).slice(0, kinds.length > 1 && prng.chance(0.5) ? 2 : 1)
      const busy = new Set<string>()
      for (const kind of chosen) await this.#start(kind, busy)
      await sleep(uniform(prng, this.#o.faultMs), signal)
      await this.#stopAll()
    }
    await this.#stopAll()
  }

  async #start(kind: NemesisKind, busy: Set<string>): Promise<void> {
    const begin = (detail: Record<string, unknown>): Fault => {
      const fault: Fault = { id: this.#nextId++, kind, detail }
      this.#o.recorder.record({ process: nemesisProcess, type: 'info', f: 'start', value: fault })
      this.counts[kind] = (this.counts[kind] ?? 0) + 1
      this.#o.log(`nemesis: start ${kind} ${JSON.stringify(detail)}`)
      return fault
    }
    let active: ActiveFault | undefined
    switch (kind) {
      case 'partition':
        active = await this.#partition(begin)
        break
      case 'latency':
      case 'drop':
        active = this.#linkFault(kind, begin)
        break
      case 'kill':
      case 'pause':
        active = await this.#processFault(kind, busy, begin)
        break
      case 'member':
        active = await this.#memberFault(busy, begin)
        break
      case 'transfer':
        active = await this.#transfer(begin)
        break
    }
    if (active !== undefined) this.#active.push(active)
  }

  async #stopAll(): Promise<void> {
    while (this.#active.length > 0) {
      const active = this.#active.pop() as ActiveFault
      const outcome = await active.undo()
      const fault: Fault = { ...active.fault, detail: { ...active.fault.detail, ...outcome } }
      this.#o.recorder.record({ process: nemesisProcess, type: 'info', f: 'stop', value: fault })
      this.#o.log(`nemesis: stop ${fault.kind} ${JSON.stringify(outcome)}`)
    }
  }

  async #partition(begin: (detail: Record<string, unknown>) => Fault): Promise<ActiveFault> {
    const { cluster, prng } = this.#o
    const shape = prng.pick(partitionShapes)
    const leader = shape === 'leader' ? await cluster.leader() : undefined
    const partition = drawPartition(shape, cluster.names, leader, prng)
    const fault = begin({ shape, groups: partition.groups, blocked: partition.links.map(linkText) })
    for (const [from, to] of partition.links) cluster.setLink(from, to, { blocked: true })
    return {
      fault,
      undo: async () => {
        for (const [from, to] of partition.links) cluster.setLink(from, to, { blocked: false })
        return {}
      },
    }
  }

  #linkFault(kind: 'latency' | 'drop', begin: (detail: Record<string, unknown>) => Fault): ActiveFault {
    const { cluster, prng } = this.#o
    const nodes = prng.shuffled(cluster.names).slice(0, prng.int(1, cluster.names.length + 1))
    const links = cluster.names.flatMap((a) =>
      cluster.names
        .filter((b) => a !== b && (nodes.includes(a) || nodes.includes(b)))
        .map((b): Link => [a, b]),
    )
    const latencyMs = prng.int(...latencyMsRange)
    const change =
      kind === 'latency'
        ? { latencyMs, jitterMs: Math.floor(latencyMs / 2) }
        : { dropProbability: Math.round(uniform(prng, dropProbabilityRange) * 100) / 100 }
    const fault = begin({ nodes, ...change })
    for (const [from, to] of links) cluster.setLink(from, to, change)
    const reset = kind === 'latency' ? { latencyMs: 0, jitterMs: 0 } : { dropProbability: 0 }
    return {
      fault,
      undo: async () => {
        for (const [from, to] of links) cluster.setLink(from, to, reset)
        return {}
      },
    }
  }

  async #processFault(
    kind: 'kill' | 'pause',
    busy: Set<string>,
    begin: (detail: Record<string, unknown>) => Fault,
  ): Promise<ActiveFault | undefined> {
    const { cluster } = this.#o
    const targets = await this.#targets(busy, Math.floor(cluster.names.length / 2) + 1)
    if (targets.length === 0) return undefined
    const fault = begin({ nodes: targets })
    if (kind === 'kill') await Promise.all(targets.map((n) => cluster.kill(n)))
    else for (const n of targets) cluster.pause(n)
    return {
      fault,
      undo: async () => {
        for (const n of targets) {
          if (kind === 'pause') cluster.resume(n)
          else if (cluster.state(n) === 'killed') cluster.start(n)
        }
        return {}
      },
    }
  }

  async #memberFault(
    busy: Set<string>,
    begin: (detail: Record<string, unknown>) => Fault,
  ): Promise<ActiveFault | undefined> {
    const { cluster } = this.#o
    if (cluster.membersIn('removed').length > 0) return undefined
    const [target] = await this.#targets(busy, 1)
    if (target === undefined) return undefined
    const fault = begin({ node: target, id: cluster.idHex(target) })
    const removed = await cluster.removeMember(target)
    return {
      fault,
      undo: async () => {
        if (removed) return { removed: true, readded: await cluster.addMember(target) }
        // The DELETE may have committed after removeMember gave up: then add it back now.
        const late = await cluster.readdIfUnlisted(target)
        return late === undefined ? { removed: false } : { removed: 'late', readded: late }
      },
    }
  }

  async #transfer(begin: (detail: Record<string, unknown>) => Fault): Promise<ActiveFault | undefined> {
    const { cluster, prng } = this.#o
    const leader = await cluster.leader()
    if (leader === undefined) return undefined
    const candidates = cluster.membersIn('running').filter((n) => n !== leader)
    if (candidates.length === 0) return undefined
    const to = prng.pick(candidates)
    const fault = begin({ from: leader, to })
    const url = `${cluster.clientUrl(leader)}/_cairn/transfer-leader?to=${cluster.idHex(to)}`
    const reply = await httpCall('POST', url)
    return {
      fault,
      undo: async () => ({
        asked: reply?.status ?? 'unreachable',
        leaderAfter: (await cluster.leader()) ?? null,
      }),
    }
  }

  /**
   * Running members not yet hit this cycle: the leader alone with probability 1/3 (when known),
   * else a random set of 1..sizeMax. Marks them busy.
   */
  async #targets(busy: Set<string>, sizeMax: number): Promise<string[]> {
    const { cluster, prng } = this.#o
    const candidates = cluster.membersIn('running').filter((n) => !busy.has(n))
    if (candidates.length === 0) return []
    const leader = prng.chance(1 / 3) ? await cluster.leader() : undefined
    const targets =
      leader !== undefined && candidates.includes(leader)
        ? [leader]
        : prng.shuffled(candidates).slice(0, prng.int(1, Math.min(sizeMax, candidates.length) + 1))
    for (const n of targets) busy.add(n)
    return targets
  }
}

function uniform(prng: Prng, [min, max]: readonly [number, number]): number {
  return min + prng.float() * (max - min)
}

function linkText([from, to]: Link): string {
  return `${from}->${to}`
}
