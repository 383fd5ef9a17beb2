/**
 * The scheduler's records in the keyspace: the contract between the fleet API (writes desired
 * units), the engine (writes placements) and the unit runner on every agent (runs its placements,
 * writes unit states). None of the three calls another; they meet only here.
 *
 * Layout (under the hidden prefix, so etcd v2 listings do not show it):
 *
 *   /_cairn/scheduler/units/<unit>               UnitRecord: what the operator asked for
 *   /_cairn/scheduler/assign/<machine>/<unit>    Assignment: the engine's placement, with the text
 *   /_cairn/scheduler/states/<machine>/<unit>    UnitStateRecord: what the runner sees, on the
 *                                                 machine's lease
 *   /_cairn/scheduler/unplaced/<unit>            UnplacedRecord: why the engine cannot place it
 *   /_cairn/scheduler/rollouts/<template>        RolloutRecord: a template's rolling update
 *   /_cairn/scheduler/engine                     EngineRecord, on the active engine's lease
 *
 * `<unit>` is the unit name as given (unit names are `[A-Za-z0-9:_.@-]`, one clean segment);
 * `<machine>` is the machine id: the agent's node name lower-cased and percent-encoded, the same
 * segment as the catalog's machine key (nodeSegment).
 *
 * Invariants:
 * - Writers: units/ only by the API; assign/, unplaced/, rollouts/ and the template rollback (a
 *   units/ write of a template's `previous` text) only by the engine, in transactions that compare
 *   the engine key's createRevision with the one the engine created (fencing: a deposed engine's
 *   writes fail); states/<m>/ only by the runner of machine m, attached to its machine lease, so
 *   the states of a dead machine vanish with it.
 * - A unit is assigned to at most one machine: the engine moves a unit by deleting the old
 *   assignment and writing the new one in one transaction. Global units are the exception, one
 *   assignment per matching machine, each named by the unit.
 * - An assignment carries everything the runner needs (name, text, hash, desired state): the
 *   runner watches only its own assign/<machine>/ prefix, so a placement wakes one agent.
 * - A runner runs a unit only while its assignment exists and its machine lease is surely alive
 *   (self-fencing, see the runner); a returning machine stops what is no longer assigned to it.
 * - decode* never throws: a malformed value (written by hand through the v2 API) yields undefined
 *   and is left out, so one bad key cannot take the scheduler down.
 */
import { createHash } from 'node:crypto'
import { nodeSegment } from '../catalog/records.ts'

export const schedulerPrefix = '/_cairn/scheduler/'
export const unitsPrefix = `${schedulerPrefix}units/`
export const assignPrefix = `${schedulerPrefix}assign/`
export const statesPrefix = `${schedulerPrefix}states/`
export const unplacedPrefix = `${schedulerPrefix}unplaced/`
export const rolloutsPrefix = `${schedulerPrefix}rollouts/`
export const engineKey = `${schedulerPrefix}engine`

/** fleet's desired states (reference B2): submitted, assigned and loaded, started. */
export type DesiredState = 'inactive' | 'loaded' | 'launched'
export const desiredStates: readonly DesiredState[] = ['inactive', 'loaded', 'launched']

export interface UnitVersion {
  text: string
  /** unitHash(text): fleet's SHA1 of the unit file. */
  hash: string
}

export interface UnitRecord {
  name: string
  /** Templates are always 'inactive': a template is not run itself. */
  desiredState: DesiredState
  /** Plain units and templates: the file. Instances have none: they run their template's. */
  version?: UnitVersion
  /** Instances: their template's name (`web@.service`). */
  template?: string
  /** Templates: the version before the last submit, for the engine's rollback. */
  previous?: UnitVersion
  submittedMs: number
}

export interface Assignment {
  unit: string
  /** The machine id (node name, as the agent's --name). */
  machine: string
  desiredState: 'loaded' | 'launched'
  /** The file to run, parsed by the runner with the unit's name (parseUnitFile). */
  text: string
  hash: string
  /** The engine key's createRevision of the engine that wrote it (for logs and status). */
  engine: number
  placedMs: number
}

/** systemd's triple, as fleet passed it through (reference B2). */
export type LoadState = 'loaded' | 'error'
export type ActiveState = 'inactive' | 'activating' | 'active' | 'deactivating' | 'failed'
export type SubState =
  | 'dead'
  | 'start-pre'
  | 'running'
  | 'auto-restart'
  | 'stop'
  | 'stop-sigterm'
  | 'stop-sigkill'
  | 'exited'
  | 'failed'

export interface UnitStateRecord {
  unit: string
  machine: string
  /** The hash of the assignment this state describes. */
  hash: string
  loadState: LoadState
  activeState: ActiveState
  subState: SubState
  /** The main process while one runs. */
  pid?: number
  /** The last exit of the main process. */
  exitCode?: number | null
  exitSignal?: string | null
  /** Restarts by the Restart= policy since the assignment began. */
  restarts: number
  /** The declared service check's status (ServiceName with a check in [X-Cairn]), when any. */
  health?: 'passing' | 'warning' | 'critical'
  /** One line for `cairn unit status` (a parse error, a spawn failure, an exit). */
  message?: string
  sinceMs: number
}

export interface UnplacedRecord {
  unit: string
  /** Why no machine fits, naming the rule (`MaxSkew=zone:1:hard`, `MachineOf=db.service`...). */
  reason: string
  sinceMs: number
}

export interface RolloutRecord {
  template: string
  from: string
  to: string
  state: 'rolling' | 'done' | 'rolled-back'
  /** Instances running `to`, in the order they were updated. */
  updated: string[]
  reason?: string
  sinceMs: number
}

export interface EngineRecord {
  /** The node name of the agent running the engine. */
  id: string
  sinceMs: number
}

export function unitHash(text: string): string {
  return createHash('sha1').update(text).digest('hex')
}

export function unitVersion(text: string): UnitVersion {
  return { text, hash: unitHash(text) }
}

export function unitKey(unit: string): string {
  return unitsPrefix + unit
}

export function machineAssignPrefix(machine: string): string {
  return `${assignPrefix}${nodeSegment(machine)}/`
}

export function assignKey(machine: string, unit: string): string {
  return machineAssignPrefix(machine) + unit
}

export function machineStatesPrefix(machine: string): string {
  return `${statesPrefix}${nodeSegment(machine)}/`
}

export function stateKey(machine: string, unit: string): string {
  return machineStatesPrefix(machine) + unit
}

export function unplacedKey(unit: string): string {
  return unplacedPrefix + unit
}

export function rolloutKey(template: string): string {
  return rolloutsPrefix + template
}

export type SchedulerKey =
  | { kind: 'unit'; unit: string }
  | { kind: 'assign'; machine: string; unit: string }
  | { kind: 'state'; machine: string; unit: string }
  | { kind: 'unplaced'; unit: string }
  | { kind: 'rollout'; template: string }
  | { kind: 'engine' }

/** What a key under schedulerPrefix is; undefined for anything else. `machine` is decoded. */
export function parseSchedulerKey(key: string): SchedulerKey | undefined {
  if (key === engineKey) return { kind: 'engine' }
  if (!key.startsWith(schedulerPrefix)) return undefined
  const rest = key.slice(schedulerPrefix.length).split('/')
  const [kind, a, b] = rest
  if (a === undefined || a === '') return undefined
  try {
    if (rest.length === 2 && kind === 'units') return { kind: 'unit', unit: a }
    if (rest.length === 2 && kind === 'unplaced') return { kind: 'unplaced', unit: a }
    if (rest.length === 2 && kind === 'rollouts') return { kind: 'rollout', template: a }
    if (rest.length === 3 && b !== undefined && b !== '') {
      if (kind === 'assign') return { kind: 'assign', machine: decodeURIComponent(a), unit: b }
      if (kind === 'states') return { kind: 'state', machine: decodeURIComponent(a), unit: b }
    }
  } catch {
    return undefined
  }
  return undefined
}

function parseObject(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(value)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    return parsed as Record<string, unknown>
  } catch {
    return undefined
  }
}

function str(v: unknown): v is string {
  return typeof v === 'string'
}

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

function decodeVersion(v: unknown): UnitVersion | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const { text, hash } = v as Record<string, unknown>
  return str(text) && str(hash) ? { text, hash } : undefined
}

export function decodeUnit(value: string): UnitRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { name, desiredState, template, submittedMs } = o
  if (!str(name) || !desiredStates.includes(desiredState as DesiredState) || !num(submittedMs))
    return undefined
  const record: UnitRecord = { name, desiredState: desiredState as DesiredState, submittedMs }
  if (o.version !== undefined) {
    const version = decodeVersion(o.version)
    if (version === undefined) return undefined
    record.version = version
  }
  if (o.previous !== undefined) {
    const previous = decodeVersion(o.previous)
    if (previous === undefined) return undefined
    record.previous = previous
  }
  if (template !== undefined) {
    if (!str(template)) return undefined
    record.template = template
  }
  if (record.version === undefined && record.template === undefined) return undefined
  return record
}

export function decodeAssignment(value: string): Assignment | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { unit, machine, desiredState, text, hash, engine, placedMs } = o
  if (!str(unit) || !str(machine) || !str(text) || !str(hash) || !num(engine) || !num(placedMs))
    return undefined
  if (desiredState !== 'loaded' && desiredState !== 'launched') return undefined
  return { unit, machine, desiredState, text, hash, engine, placedMs }
}

export function decodeUnitState(value: string): UnitStateRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { unit, machine, hash, loadState, activeState, subState, restarts, sinceMs } = o
  if (!str(unit) || !str(machine) || !str(hash) || !str(loadState) || !str(activeState) || !str(subState))
    return undefined
  if (!num(restarts) || !num(sinceMs)) return undefined
  const record: UnitStateRecord = {
    unit,
    machine,
    hash,
    loadState: loadState as LoadState,
    activeState: activeState as ActiveState,
    subState: subState as SubState,
    restarts,
    sinceMs,
  }
  if (num(o.pid)) record.pid = o.pid
  if (num(o.exitCode) || o.exitCode === null) record.exitCode = o.exitCode
  if (str(o.exitSignal) || o.exitSignal === null) record.exitSignal = o.exitSignal
  if (o.health === 'passing' || o.health === 'warning' || o.health === 'critical') record.health = o.health
  if (str(o.message)) record.message = o.message
  return record
}

export function decodeUnplaced(value: string): UnplacedRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { unit, reason, sinceMs } = o
  return str(unit) && str(reason) && num(sinceMs) ? { unit, reason, sinceMs } : undefined
}

export function decodeRollout(value: string): RolloutRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { template, from, to, state, updated, reason, sinceMs } = o
  if (!str(template) || !str(from) || !str(to) || !num(sinceMs)) return undefined
  if (state !== 'rolling' && state !== 'done' && state !== 'rolled-back') return undefined
  if (!Array.isArray(updated) || !updated.every(str)) return undefined
  const record: RolloutRecord = { template, from, to, state, updated, sinceMs }
  if (str(reason)) record.reason = reason
  return record
}

export function decodeEngine(value: string): EngineRecord | undefined {
  const o = parseObject(value)
  if (o === undefined) return undefined
  const { id, sinceMs } = o
  return str(id) && num(sinceMs) ? { id, sinceMs } : undefined
}
