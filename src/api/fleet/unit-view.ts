/**
 * The fleet v1 shapes, rendered from the scheduler's records (src/scheduler/records.ts):
 *
 *   Unit      {name, options, desiredState, currentState, machineID?}
 *   UnitState {name, hash, machineID, systemdLoadState, systemdActiveState, systemdSubState}
 *   Machine   {id, primaryIP, metadata}
 *
 * currentState is what the runner last reported for the unit's assignment (fleet: "what fleet
 * last knew"), never the request: `inactive` while the unit is not assigned, or its runner has not
 * reported on the assigned version yet; `launched` while the runner shows the process starting,
 * running, stopping or restarting, or has reported since the assignment said launched (it ran and
 * exited); `loaded` otherwise. A global unit (several assignments) shows the least advanced of its
 * machines and no machineID.
 *
 * Invariants: pure functions of records already decoded; never throw; the read helpers take one
 * range per prefix and leave out keys that do not decode (records.ts: decode* never throws).
 */

import { prefixRange } from '../../catalog/records.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { KeyValue } from '../../kv/mvcc.ts'
import {
  type Assignment,
  assignPrefix,
  type DesiredState,
  decodeAssignment,
  decodeUnitState,
  parseSchedulerKey,
  statesPrefix,
  type UnitRecord,
  type UnitStateRecord,
} from '../../scheduler/records.ts'
import { type FleetUnitOption, optionsOf } from './unit-body.ts'

export interface FleetUnit {
  name: string
  options: FleetUnitOption[]
  desiredState: DesiredState
  currentState: DesiredState
  machineID?: string
}

export interface FleetUnitState {
  name: string
  hash: string
  machineID: string
  systemdLoadState: string
  systemdActiveState: string
  systemdSubState: string
}

export interface FleetMachine {
  id: string
  primaryIP: string
  metadata: Record<string, string>
}

export interface Revisioned<R> {
  record: R
  modRevision: number
}

/** The assignments and states of every unit, by unit name (one read of each prefix). */
export interface Placements {
  assignments: Map<string, Revisioned<Assignment>[]>
  states: Map<string, Revisioned<UnitStateRecord>[]>
}

function group<R extends { unit: string }>(
  kvs: readonly KeyValue[],
  kind: 'assign' | 'state',
  decode: (value: string) => R | undefined,
): Map<string, Revisioned<R>[]> {
  const out = new Map<string, Revisioned<R>[]>()
  for (const kv of kvs) {
    const key = parseSchedulerKey(kv.key)
    if (key?.kind !== kind) continue
    const record = decode(kv.value)
    // The key names the unit and machine; a record that disagrees with its key is left out.
    if (record === undefined || record.unit !== key.unit) continue
    let list = out.get(record.unit)
    if (list === undefined) out.set(record.unit, (list = []))
    list.push({ record, modRevision: kv.modRevision })
  }
  return out
}

export async function readPlacements(store: Pick<KvStore, 'range'>): Promise<Placements> {
  const [assigned, stated] = await Promise.all([
    store.range(prefixRange(assignPrefix)),
    store.range(prefixRange(statesPrefix)),
  ])
  return {
    assignments: group(assigned.kvs, 'assign', decodeAssignment),
    states: group(stated.kvs, 'state', decodeUnitState),
  }
}

const stateRank: Record<DesiredState, number> = { inactive: 0, loaded: 1, launched: 2 }
const runningActive = new Set(['active', 'activating', 'deactivating'])

function sameMachine(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase()
}

/** The current state of one assignment, from the state its machine's runner reported. */
export function assignmentState(
  assignment: Revisioned<Assignment>,
  states: readonly Revisioned<UnitStateRecord>[],
): DesiredState {
  const state = states.find((s) => sameMachine(s.record.machine, assignment.record.machine))
  if (state === undefined || state.record.hash !== assignment.record.hash) return 'inactive'
  if (runningActive.has(state.record.activeState) || state.record.subState === 'auto-restart')
    return 'launched'
  if (assignment.record.desiredState === 'launched' && state.modRevision > assignment.modRevision)
    return 'launched'
  return 'loaded'
}

export function currentOf(
  unit: string,
  placements: Placements,
): { currentState: DesiredState; machineID: string | undefined } {
  const assignments = placements.assignments.get(unit) ?? []
  if (assignments.length === 0) return { currentState: 'inactive', machineID: undefined }
  const states = placements.states.get(unit) ?? []
  let current: DesiredState = 'launched'
  for (const assignment of assignments) {
    const state = assignmentState(assignment, states)
    if (stateRank[state] < stateRank[current]) current = state
  }
  const machineID = assignments.length === 1 ? assignments[0]?.record.machine : undefined
  return { currentState: current, machineID }
}

/** The unit file a record runs: its own, or (an instance) its template's. */
export function textOf(record: UnitRecord, template: UnitRecord | undefined): string | undefined {
  return record.version?.text ?? template?.version?.text
}

export function renderUnit(record: UnitRecord, text: string | undefined, placements: Placements): FleetUnit {
  const { currentState, machineID } = currentOf(record.name, placements)
  const unit: FleetUnit = {
    name: record.name,
    options: text === undefined ? [] : optionsOf(text, record.name),
    desiredState: record.desiredState,
    currentState,
  }
  if (machineID !== undefined) unit.machineID = machineID
  return unit
}

export function renderUnitState(state: UnitStateRecord): FleetUnitState {
  return {
    name: state.unit,
    hash: state.hash,
    machineID: state.machine,
    systemdLoadState: state.loadState,
    systemdActiveState: state.activeState,
    systemdSubState: state.subState,
  }
}
