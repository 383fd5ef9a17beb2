/**
 * Test support for the fleet API: a real fastify app listening on a random loopback port over a
 * real LocalKvStore, with a catalog copy fed by a watch, and writers for the records the engine
 * and the runners own (assign/, states/, unplaced/, rollouts/, machine keys). Those records are the
 * contract between them and the API (scheduler/records.ts), so writing them stands in for the
 * engine and the runner without mocking the API. MemoryJournals is a small UnitJournals.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { machineKey, nodeKey, nodeRecord } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import type { JournalLine, UnitJournals } from '../../scheduler/journal.ts'
import {
  type Assignment,
  assignKey,
  type RolloutRecord,
  rolloutKey,
  stateKey,
  type UnitStateRecord,
  unitHash,
  unplacedKey,
} from '../../scheduler/records.ts'
import { buildFleetApi } from './index.ts'

/** A UnitJournals in memory: append() writes a line and wakes the followers of its unit. */
export class MemoryJournals implements UnitJournals {
  readonly #lines = new Map<string, JournalLine[]>()
  readonly #followers = new Map<string, Set<(line: JournalLine) => void>>()

  append(unit: string, text: string, stream: JournalLine['stream'] = 'stdout', ts = Date.now()): void {
    const line: JournalLine = { ts, stream, text }
    let lines = this.#lines.get(unit)
    if (lines === undefined) this.#lines.set(unit, (lines = []))
    lines.push(line)
    for (const follower of this.#followers.get(unit) ?? []) follower(line)
  }

  async tail(unit: string, lines: number): Promise<JournalLine[] | undefined> {
    const all = this.#lines.get(unit)
    return all === undefined ? undefined : lines === 0 ? [] : all.slice(-lines)
  }

  follow(unit: string, onLine: (line: JournalLine) => void, signal: AbortSignal): boolean {
    if (!this.#lines.has(unit)) return false
    let set = this.#followers.get(unit)
    if (set === undefined) this.#followers.set(unit, (set = new Set()))
    set.add(onLine)
    signal.addEventListener('abort', () => set.delete(onLine), { once: true })
    return true
  }

  followers(unit: string): number {
    return this.#followers.get(unit)?.size ?? 0
  }
}

export interface FleetTestApi {
  app: FastifyInstance
  store: LocalKvStore
  catalog: CatalogState
  journals: MemoryJournals
  nodeName: string
  url: string
  close(): Promise<void>
}

/** A fleet API for `nodeName` (default n1) on `store` (default a new LocalKvStore). */
export async function startFleetApi(
  options: { nodeName?: string; store?: LocalKvStore } = {},
): Promise<FleetTestApi> {
  const store = options.store ?? new LocalKvStore()
  const catalog = new CatalogState()
  const feed = startCatalogFeed(store, catalog)
  await feed.ready
  const journals = new MemoryJournals()
  const nodeName = options.nodeName ?? 'n1'
  const app = Fastify({ forceCloseConnections: true })
  await app.register(buildFleetApi({ store, catalog, journals, nodeName, clock: () => 1_700_000_000_000 }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    app,
    store,
    catalog,
    journals,
    nodeName,
    url,
    close: async () => {
      await app.close()
      feed.stop()
    },
  }
}

/** Registers an alive machine: its node record (address, metadata) and machine key (with Api). */
export async function addMachine(
  store: LocalKvStore,
  name: string,
  fields: { address?: string; meta?: Record<string, string>; api?: string } = {},
): Promise<void> {
  const node = nodeRecord({
    Node: name,
    Address: fields.address ?? '10.0.0.1',
    Meta: fields.meta ?? {},
    Agent: true,
  })
  await store.put({ key: nodeKey(name), value: JSON.stringify(node) })
  const machine: Record<string, unknown> = { Node: name, Lease: 0, SinceMs: 1 }
  if (fields.api !== undefined) machine['Api'] = fields.api
  await store.put({ key: machineKey(name), value: JSON.stringify(machine) })
}

/** What the engine writes when it places `unit` on `machine`. */
export async function assign(
  store: LocalKvStore,
  machine: string,
  unit: string,
  text: string,
  desiredState: Assignment['desiredState'] = 'launched',
): Promise<Assignment> {
  const record: Assignment = {
    unit,
    machine,
    desiredState,
    text,
    hash: unitHash(text),
    engine: 1,
    placedMs: 1_700_000_000_000,
  }
  await store.put({ key: assignKey(machine, unit), value: JSON.stringify(record) })
  return record
}

/** What a runner writes for a unit it runs. */
export async function reportState(
  store: LocalKvStore,
  machine: string,
  unit: string,
  text: string,
  fields: Partial<UnitStateRecord> = {},
): Promise<UnitStateRecord> {
  const record: UnitStateRecord = {
    unit,
    machine,
    hash: unitHash(text),
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    pid: 4242,
    restarts: 0,
    sinceMs: 1_700_000_000_000,
    ...fields,
  }
  await store.put({ key: stateKey(machine, unit), value: JSON.stringify(record) })
  return record
}

export async function markUnplaced(store: LocalKvStore, unit: string, reason: string): Promise<void> {
  await store.put({ key: unplacedKey(unit), value: JSON.stringify({ unit, reason, sinceMs: 1 }) })
}

export async function writeRollout(store: LocalKvStore, rollout: RolloutRecord): Promise<void> {
  await store.put({ key: rolloutKey(rollout.template), value: JSON.stringify(rollout) })
}

/** Every key under the scheduler's units/ prefix with its value: "nothing changed" checks compare these. */
export async function unitsSnapshot(store: LocalKvStore): Promise<Array<[string, string, number]>> {
  const result = await store.range({ key: '/_cairn/scheduler/units/', rangeEnd: '/_cairn/scheduler/units0' })
  return result.kvs.map((kv) => [kv.key, kv.value, kv.modRevision])
}
