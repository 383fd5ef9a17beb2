/**
 * Catalog writes: nodes, services, checks and machines as records (records.ts), each change one
 * store transaction, so a registration is all-or-nothing and a deregistration never leaves a
 * service without its node half-deleted.
 *
 * The writer does not validate Consul request bodies (the API does, before it builds records); it
 * checks only what the layout needs (names: nameProblem) and throws CATALOG_INVALID for those.
 *
 * Deregistering a service deletes its checks in the same transaction (past txnOpsMax checks, the
 * surplus first, in transactions of their own); the checks are found with a
 * serializable read just before, so a check registered for the service in between can outlive it:
 * the owning agent's anti-entropy removes such orphans on its next sync.
 */
import { CairnError } from '../errors.ts'
import type { KvStore } from '../kv/kv-store.ts'
import { kvLimits } from '../kv/limits.ts'
import type { TxnOp } from '../kv/mvcc.ts'
import {
  type CheckRecord,
  checkKey,
  decodeCheck,
  type MachineRecord,
  machineKey,
  type NodeRecord,
  nameProblem,
  nodeChecksRange,
  nodeKey,
  nodeServicesRange,
  type ServiceRecord,
  serviceKey,
} from './records.ts'

export interface Registration {
  node: NodeRecord
  /** Leave the node record as it is (Consul's SkipNodeUpdate); it must exist then. */
  skipNodeUpdate?: boolean
  services?: readonly ServiceRecord[]
  checks?: readonly CheckRecord[]
}

export class CatalogWriter {
  readonly #store: KvStore

  constructor(store: KvStore) {
    this.#store = store
  }

  /** Writes the node (unless skipped), services and checks in one transaction; returns its revision. */
  async register(registration: Registration): Promise<number> {
    const node = registration.node.Node
    check(nameProblem(node, 'Node'))
    const ops: TxnOp[] = []
    if (registration.skipNodeUpdate !== true) {
      ops.push({ type: 'put', key: nodeKey(node), value: JSON.stringify(registration.node) })
    }
    for (const service of registration.services ?? []) {
      check(nameProblem(service.ID, 'Service.ID'))
      ops.push({ type: 'put', key: serviceKey(node, service.ID), value: JSON.stringify(service) })
    }
    for (const c of registration.checks ?? []) {
      check(nameProblem(c.CheckID, 'CheckID'))
      ops.push({ type: 'put', key: checkKey(node, c.CheckID), value: JSON.stringify(c) })
    }
    if (ops.length === 0)
      return (await this.#store.range({ key: nodeKey(node) }, { serializable: true })).revision
    const compare =
      registration.skipNodeUpdate === true
        ? [{ key: nodeKey(node), target: 'createRevision' as const, result: 'greater' as const, value: 0 }]
        : []
    const result = await this.#store.txn({ compare, success: ops, failure: [] })
    if (!result.succeeded) throw new CairnError('CATALOG_NODE_NOT_FOUND', `node ${node} is not registered`)
    return result.revision
  }

  async putCheck(node: string, record: CheckRecord): Promise<number> {
    check(nameProblem(record.CheckID, 'CheckID'))
    return (await this.#store.put({ key: checkKey(node, record.CheckID), value: JSON.stringify(record) }))
      .revision
  }

  async putService(node: string, record: ServiceRecord): Promise<number> {
    check(nameProblem(record.ID, 'Service.ID'))
    return (await this.#store.put({ key: serviceKey(node, record.ID), value: JSON.stringify(record) }))
      .revision
  }

  /** Removes the node with every service, check and its machine key. Returns whether it existed. */
  async deregisterNode(node: string): Promise<boolean> {
    check(nameProblem(node, 'Node'))
    const result = await this.#store.txn({
      compare: [],
      success: [
        { type: 'delete', key: nodeKey(node) },
        { type: 'delete', key: machineKey(node) },
        { type: 'delete', ...nodeServicesRange(node) },
        { type: 'delete', ...nodeChecksRange(node) },
      ],
      failure: [],
    })
    return result.responses.some((r) => r.type === 'delete' && r.deleted > 0)
  }

  /** Removes the service and its checks. Returns whether the service existed. */
  async deregisterService(node: string, serviceId: string): Promise<boolean> {
    check(nameProblem(node, 'Node'))
    check(nameProblem(serviceId, 'ServiceID'))
    const checks = await this.#store.range(nodeChecksRange(node), { serializable: true })
    const checkOps: TxnOp[] = []
    for (const kv of checks.kvs) {
      if (decodeCheck(kv.value)?.ServiceID === serviceId) checkOps.push({ type: 'delete', key: kv.key })
    }
    // A transaction holds at most txnOpsMax ops: checks past that go first, in transactions of
    // their own (the service and its last checks still go together).
    while (checkOps.length >= kvLimits.txnOpsMax) {
      const chunk = checkOps.splice(0, kvLimits.txnOpsMax)
      await this.#store.txn({ compare: [], success: chunk, failure: [] })
    }
    const ops: TxnOp[] = [{ type: 'delete', key: serviceKey(node, serviceId) }, ...checkOps]
    const result = await this.#store.txn({ compare: [], success: ops, failure: [] })
    const first = result.responses[0]
    return first?.type === 'delete' && first.deleted > 0
  }

  async deregisterCheck(node: string, checkId: string): Promise<boolean> {
    check(nameProblem(node, 'Node'))
    check(nameProblem(checkId, 'CheckID'))
    return (await this.#store.delete({ key: checkKey(node, checkId) })).deleted > 0
  }

  /** Marks the machine alive: its key, attached to the agent's lease. */
  async putMachine(record: MachineRecord): Promise<number> {
    return (
      await this.#store.put({
        key: machineKey(record.Node),
        value: JSON.stringify(record),
        lease: record.Lease,
      })
    ).revision
  }
}

function check(problem: string | undefined): void {
  if (problem !== undefined) throw new CairnError('CATALOG_INVALID', problem)
}
