/**
 * Simulated clients. Each has at most one operation in flight:
 *
 * - a write is proposed on a random live node and acknowledged when that same node (same
 *   incarnation) applies it: the rule the real driver uses, a proposal resolves when applied on the
 *   node that took it;
 * - a read asks a random live node for a ReadIndex and is answered when that node's applied index
 *   reaches the ReadState's index.
 *
 * Refused operations (a CairnError from the core) end at once; unanswered ones time out after
 * opTimeoutTicks. Either way the client later tries again with a fresh operation id. In the final
 * phase every client writes until one write is acknowledged (the liveness probe).
 *
 * Invariants: operation ids are unique and increasing; a client's operation is in #inFlight exactly
 * while it is the client's current operation.
 */
import { isCairnError } from '../../errors.ts'
import type { Prng } from '../core/prng.ts'
import type { NodeId, ReadState } from '../core/types.ts'
import { type ClientWrite, encodeWrite } from './app.ts'
import type { CheckSuite } from './checkers/suite.ts'
import type { Scenario } from './scenario.ts'
import type { SimNode } from './sim-node.ts'
import type { Trace } from './trace.ts'

export interface WorkloadHost {
  readonly now: number
  readonly checks: CheckSuite
  readonly trace: Trace
  /** Nodes a client may talk to: up and not decommissioned. */
  clientTargets(): SimNode[]
  /** A client called into the node's core (the node's Ready is handled as after any event). */
  clientCalled(node: SimNode): void
}

type WorkloadScenario = Pick<
  Scenario,
  'clientCount' | 'requestProbability' | 'readFraction' | 'keyCount' | 'opTimeoutTicks'
>

interface Op {
  id: number
  client: number
  kind: 'write' | 'read'
  node: NodeId
  incarnation: number
  key: string
  deadline: number
}

interface Client {
  id: number
  op: Op | undefined
  finalAcked: boolean
}

export interface WorkloadStats {
  writesAcked: number
  readsAnswered: number
  timeouts: number
  refused: number
}

export class Workload {
  readonly #scenario: WorkloadScenario
  readonly #prng: Prng
  readonly #clients: Client[] = []
  readonly #inFlight = new Map<number, Op>()
  #nextOp = 1
  #final = false
  readonly stats: WorkloadStats = { writesAcked: 0, readsAnswered: 0, timeouts: 0, refused: 0 }

  constructor(scenario: WorkloadScenario, prng: Prng) {
    this.#scenario = scenario
    this.#prng = prng
    for (let id = 1; id <= scenario.clientCount; id++)
      this.#clients.push({ id, op: undefined, finalAcked: false })
  }

  /** From now on every client writes until one write is acknowledged. */
  startFinalPhase(): void {
    this.#final = true
  }

  /** Final phase: every client had a write acknowledged and nothing is in flight. */
  get done(): boolean {
    return this.#inFlight.size === 0 && this.#clients.every((c) => c.finalAcked)
  }

  describe(): string {
    const waiting = this.#clients.filter((c) => !c.finalAcked).map((c) => c.id)
    return `${this.#inFlight.size} operations in flight, clients without an acknowledged final write: [${waiting.join(', ')}]`
  }

  tick(host: WorkloadHost): void {
    for (const client of this.#clients) {
      const op = client.op
      if (op !== undefined && host.now >= op.deadline) {
        this.#end(client, op)
        this.stats.timeouts++
      }
      if (client.op !== undefined) continue
      if (this.#final ? !client.finalAcked : this.#prng.chance(this.#scenario.requestProbability)) {
        this.#start(client, host)
      }
    }
  }

  writeApplied(node: SimNode, write: ClientWrite, index: number, chain: number, host: WorkloadHost): void {
    const op = this.#inFlight.get(write.op)
    if (op === undefined || op.node !== node.id || op.incarnation !== node.incarnation) return
    const client = this.#clients[op.client - 1] as Client
    host.checks.apply.acked(index, chain)
    this.#end(client, op)
    this.stats.writesAcked++
    if (this.#final) client.finalAcked = true
    host.trace.note(host.now, node.id, `ack write ${op.id} (${write.key}=${write.value}) at ${index}`)
  }

  readAnswered(node: SimNode, rs: ReadState, appliedIndex: number, host: WorkloadHost): void {
    const id = Number(rs.ctx.slice(1))
    host.checks.reads.answered(id, node.id, appliedIndex)
    const op = this.#inFlight.get(id)
    if (op === undefined || op.node !== node.id || op.incarnation !== node.incarnation) return
    this.#end(this.#clients[op.client - 1] as Client, op)
    this.stats.readsAnswered++
    const value = node.app.get(op.key)
    host.trace.note(
      host.now,
      node.id,
      `answer read ${id} (${op.key}=${value}) at ${appliedIndex}, index ${rs.index}`,
    )
  }

  #start(client: Client, host: WorkloadHost): void {
    const targets = host.clientTargets()
    if (targets.length === 0) return
    const node = this.#prng.pick(targets)
    const kind = !this.#final && this.#prng.chance(this.#scenario.readFraction) ? 'read' : 'write'
    const op: Op = {
      id: this.#nextOp++,
      client: client.id,
      kind,
      node: node.id,
      incarnation: node.incarnation,
      key: `k${this.#prng.int(0, this.#scenario.keyCount)}`,
      deadline: host.now + this.#scenario.opTimeoutTicks,
    }
    client.op = op
    this.#inFlight.set(op.id, op)
    try {
      if (kind === 'write') {
        node.core.propose(encodeWrite({ op: op.id, client: client.id, key: op.key, value: `v${op.id}` }))
      } else {
        host.checks.reads.invoked(op.id, host.checks.apply.ackedIndexMax)
        node.core.readIndex(`r${op.id}`)
      }
    } catch (error) {
      if (!isCairnError(error)) throw error
      this.#end(client, op)
      this.stats.refused++
    }
    host.clientCalled(node)
  }

  #end(client: Client, op: Op): void {
    this.#inFlight.delete(op.id)
    if (client.op === op) client.op = undefined
  }
}
