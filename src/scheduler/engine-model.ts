/**
 * The engine's in-memory model of the keyspace it reconciles: the scheduler records (units,
 * assignments, unit states, unplaced reasons, rollouts) and the live machines with their metadata
 * (the catalog's machine keys and node records). Two prefix feeds keep it current
 * (kv/prefix-feed.ts); it is plain data plus change marks, with no I/O.
 *
 * Invariants:
 * - Each map holds exactly the decodable records of its prefix as of `schedulerRevision` /
 *   `catalogRevision`; a malformed value is left out (decode* never throws).
 * - Every unit whose assignments changed, and every machine whose liveness or metadata changed,
 *   since the last takeChanges() is in the change sets, so the engine can bring its placement
 *   index up to date without rescanning everything.
 * - onChange runs after each applied batch (or load), never inside one.
 */

import {
  decodeMachine,
  decodeNode,
  type MachineRecord,
  type NodeRecord,
  nodeSegment,
  parseCatalogKey,
} from '../catalog/records.ts'
import type { KvEvent } from '../kv/events.ts'
import type { FeedSink } from '../kv/prefix-feed.ts'
import {
  type Assignment,
  decodeAssignment,
  decodeRollout,
  decodeUnit,
  decodeUnitState,
  decodeUnplaced,
  parseSchedulerKey,
  type RolloutRecord,
  type UnitRecord,
  type UnitStateRecord,
  type UnplacedRecord,
} from './records.ts'

export interface Versioned<R> {
  record: R
  modRevision: number
}

export interface ModelChanges {
  /** Units whose assignments changed. */
  units: Set<string>
  /** Machine segments whose liveness or metadata changed. */
  machines: Set<string>
  /** Whether everything was loaded again (the index must be rebuilt). */
  reloaded: boolean
}

export class SchedulerModel {
  readonly units = new Map<string, Versioned<UnitRecord>>()
  /** unit → machine segment → assignment. */
  readonly assignments = new Map<string, Map<string, Assignment>>()
  /** `${machineSegment}/${unit}` → state. */
  readonly states = new Map<string, UnitStateRecord>()
  readonly unplaced = new Map<string, UnplacedRecord>()
  readonly rollouts = new Map<string, Versioned<RolloutRecord>>()
  /** Machine segment → the live machine key. */
  readonly machines = new Map<string, MachineRecord>()
  /** Machine segment → node record (metadata). */
  readonly nodes = new Map<string, NodeRecord>()
  schedulerRevision = 0
  catalogRevision = 0
  #changes: ModelChanges = { units: new Set(), machines: new Set(), reloaded: true }
  #catalogTouched = false
  readonly #onChange: () => void

  constructor(onChange: () => void = () => {}) {
    this.#onChange = onChange
  }

  /** The feed sink for /_cairn/scheduler/. */
  readonly schedulerSink: FeedSink = {
    load: (revision, kvs) => {
      this.units.clear()
      this.assignments.clear()
      this.states.clear()
      this.unplaced.clear()
      this.rollouts.clear()
      for (const kv of kvs) this.#putScheduler(kv.key, kv.value, kv.modRevision)
      this.schedulerRevision = revision
      this.#changes.reloaded = true
      this.#onChange()
    },
    apply: (event) => {
      this.#applyScheduler(event)
      this.schedulerRevision = Math.max(this.schedulerRevision, event.revision)
    },
    flush: () => this.#onChange(),
  }

  /** The feed sink for /_cairn/catalog/ (only machines and nodes are kept). */
  readonly catalogSink: FeedSink = {
    load: (revision, kvs) => {
      for (const seg of this.machines.keys()) this.#changes.machines.add(seg)
      this.machines.clear()
      this.nodes.clear()
      for (const kv of kvs) this.#putCatalog(kv.key, kv.value)
      this.catalogRevision = revision
      this.#onChange()
    },
    apply: (event) => {
      const before = this.#changes.machines.size
      this.#applyCatalog(event)
      this.catalogRevision = Math.max(this.catalogRevision, event.revision)
      if (this.#changes.machines.size !== before) this.#catalogTouched = true
    },
    // Services and checks change often and mean nothing to placement: only machines wake the engine.
    flush: () => {
      if (!this.#catalogTouched) return
      this.#catalogTouched = false
      this.#onChange()
    },
  }

  takeChanges(): ModelChanges {
    const changes = this.#changes
    this.#changes = { units: new Set(), machines: new Set(), reloaded: false }
    return changes
  }

  /** The live machine of a segment, with its node's metadata; undefined when it is not alive. */
  liveMachine(seg: string): { id: string; metadata: Record<string, string> } | undefined {
    const machine = this.machines.get(seg)
    if (machine === undefined) return undefined
    return { id: machine.Node, metadata: this.nodes.get(seg)?.Meta ?? {} }
  }

  stateOf(machine: string, unit: string): UnitStateRecord | undefined {
    return this.states.get(`${nodeSegment(machine)}/${unit}`)
  }

  #applyScheduler(event: KvEvent): void {
    const removed =
      event.action === 'delete' || event.action === 'expire' || event.action === 'compareAndDelete'
    if (event.removesDir) {
      this.#removeSchedulerDir(event.key)
      return
    }
    if (removed) this.#deleteScheduler(event.key)
    else this.#putScheduler(event.key, event.node.value ?? '', event.revision)
  }

  #putScheduler(key: string, value: string, modRevision: number): void {
    const parsed = parseSchedulerKey(key)
    if (parsed === undefined) return
    switch (parsed.kind) {
      case 'unit': {
        const record = decodeUnit(value)
        if (record === undefined || record.name !== parsed.unit) this.units.delete(parsed.unit)
        else this.units.set(parsed.unit, { record, modRevision })
        return
      }
      case 'assign': {
        const seg = nodeSegment(parsed.machine)
        const record = decodeAssignment(value)
        const byMachine = this.assignments.get(parsed.unit)
        this.#changes.units.add(parsed.unit)
        if (record === undefined || record.unit !== parsed.unit || nodeSegment(record.machine) !== seg) {
          byMachine?.delete(seg)
          if (byMachine?.size === 0) this.assignments.delete(parsed.unit)
          return
        }
        if (byMachine === undefined) this.assignments.set(parsed.unit, new Map([[seg, record]]))
        else byMachine.set(seg, record)
        return
      }
      case 'state': {
        const record = decodeUnitState(value)
        const id = `${nodeSegment(parsed.machine)}/${parsed.unit}`
        if (record === undefined) this.states.delete(id)
        else this.states.set(id, record)
        return
      }
      case 'unplaced': {
        const record = decodeUnplaced(value)
        if (record === undefined) this.unplaced.delete(parsed.unit)
        else this.unplaced.set(parsed.unit, record)
        return
      }
      case 'rollout': {
        const record = decodeRollout(value)
        if (record === undefined) this.rollouts.delete(parsed.template)
        else this.rollouts.set(parsed.template, { record, modRevision })
        return
      }
      case 'engine':
        return
    }
  }

  #deleteScheduler(key: string): void {
    const parsed = parseSchedulerKey(key)
    if (parsed === undefined) return
    switch (parsed.kind) {
      case 'unit':
        this.units.delete(parsed.unit)
        return
      case 'assign': {
        const byMachine = this.assignments.get(parsed.unit)
        this.#changes.units.add(parsed.unit)
        byMachine?.delete(nodeSegment(parsed.machine))
        if (byMachine?.size === 0) this.assignments.delete(parsed.unit)
        return
      }
      case 'state':
        this.states.delete(`${nodeSegment(parsed.machine)}/${parsed.unit}`)
        return
      case 'unplaced':
        this.unplaced.delete(parsed.unit)
        return
      case 'rollout':
        this.rollouts.delete(parsed.template)
        return
      case 'engine':
        return
    }
  }

  /** A directory removed by hand through the v2 API: forget every record below it. */
  #removeSchedulerDir(dir: string): void {
    const prefix = `${dir}/`
    const keys: string[] = []
    for (const [name] of this.units) keys.push(`/_cairn/scheduler/units/${name}`)
    for (const [unit, byMachine] of this.assignments)
      for (const seg of byMachine.keys()) keys.push(`/_cairn/scheduler/assign/${seg}/${unit}`)
    for (const id of this.states.keys()) keys.push(`/_cairn/scheduler/states/${id}`)
    for (const unit of this.unplaced.keys()) keys.push(`/_cairn/scheduler/unplaced/${unit}`)
    for (const template of this.rollouts.keys()) keys.push(`/_cairn/scheduler/rollouts/${template}`)
    for (const key of keys) if (key.startsWith(prefix)) this.#deleteScheduler(key)
  }

  #applyCatalog(event: KvEvent): void {
    const removed =
      event.action === 'delete' || event.action === 'expire' || event.action === 'compareAndDelete'
    if (event.removesDir) {
      const prefix = `${event.key}/`
      for (const seg of [...this.machines.keys()])
        if (`/_cairn/catalog/machines/${seg}`.startsWith(prefix)) this.#dropMachine(seg)
      for (const seg of [...this.nodes.keys()])
        if (`/_cairn/catalog/nodes/${seg}`.startsWith(prefix)) {
          this.nodes.delete(seg)
          this.#changes.machines.add(seg)
        }
      return
    }
    if (removed) {
      const parsed = parseCatalogKey(event.key)
      if (parsed?.kind === 'machine') this.#dropMachine(nodeSegment(parsed.node))
      else if (parsed?.kind === 'node') {
        this.nodes.delete(nodeSegment(parsed.node))
        this.#changes.machines.add(nodeSegment(parsed.node))
      }
      return
    }
    this.#putCatalog(event.key, event.node.value ?? '')
  }

  #dropMachine(seg: string): void {
    if (this.machines.delete(seg)) this.#changes.machines.add(seg)
  }

  #putCatalog(key: string, value: string): void {
    const parsed = parseCatalogKey(key)
    if (parsed === undefined) return
    const seg = nodeSegment(parsed.kind === 'machine' || parsed.kind === 'node' ? parsed.node : '')
    if (parsed.kind === 'machine') {
      const record = decodeMachine(value)
      if (record === undefined || nodeSegment(record.Node) !== seg) this.#dropMachine(seg)
      else {
        this.machines.set(seg, record)
        this.#changes.machines.add(seg)
      }
    } else if (parsed.kind === 'node') {
      const record = decodeNode(value)
      const before = this.nodes.get(seg)
      if (record === undefined) this.nodes.delete(seg)
      else this.nodes.set(seg, record)
      if (JSON.stringify(before?.Meta) !== JSON.stringify(record?.Meta)) this.#changes.machines.add(seg)
    }
  }
}
