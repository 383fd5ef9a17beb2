/**
 * The engine's placement index: a Placement (placement.ts, with its per-domain counts) kept equal
 * to the model's assignments on live machines, updated incrementally from the model's change sets,
 * plus a cache of parsed units (by name and hash) so a unit file is parsed once per version.
 *
 * Invariants:
 * - After sync(), the placement holds exactly the model's assignments on live machines (for a
 *   non-Global unit, one machine: the first by machine id if the keyspace somehow holds more) and
 *   exactly the live machines with their metadata.
 * - Between syncs, assign()/unassign() record the plan's own decisions ahead of their echo; the
 *   echo then changes nothing. After a plan whose writes failed, or a sync or plan that threw, the
 *   index is invalidated and the next sync() rebuilds it whole from the model; it is never patched.
 */
import { nodeSegment } from '../catalog/records.ts'
import type { ModelChanges, SchedulerModel } from './engine-model.ts'
import { Placement, type PlacementUnit } from './placement.ts'
import { parseUnitFile, type UnitFile } from './unit-file.ts'
import { parseUnitName, templateOf } from './unit-name.ts'

/** Parsed unit versions kept; past it the cache is emptied (a re-parse is cheap, a leak is not). */
export const parsedUnitsMax = 200_000

export interface ParsedUnit {
  file: UnitFile
  placement: PlacementUnit
}

export class PlacementIndex {
  placement = new Placement()
  /** unit → machine ids the placement was told. */
  #told = new Map<string, Set<string>>()
  #parsed = new Map<string, ParsedUnit | string>()
  /** Set until a full rebuild succeeds: the placement may not match the model. */
  #invalid = false

  /** The parsed unit, or the parse error's message. */
  parse(name: string, text: string, hash: string): ParsedUnit | string {
    const key = `${name}\0${hash}`
    const cached = this.#parsed.get(key)
    if (cached !== undefined) return cached
    let parsed: ParsedUnit | string
    try {
      const file = parseUnitFile(text, { name })
      const template = templateOf(parseUnitName(name))
      parsed = {
        file,
        placement: { name, template, fleet: file.fleet, spread: file.spread },
      }
    } catch (error) {
      parsed = error instanceof Error ? error.message : String(error)
    }
    if (this.#parsed.size >= parsedUnitsMax) this.#parsed.clear()
    this.#parsed.set(key, parsed)
    return parsed
  }

  reset(): void {
    this.placement = new Placement()
    this.#told.clear()
  }

  /** The next sync() rebuilds everything from the model (after a failed write or plan). */
  invalidate(): void {
    this.#invalid = true
  }

  /** Brings the placement up to date with the model's changes since the last sync. */
  sync(model: SchedulerModel, changes: ModelChanges): void {
    if (changes.reloaded || this.#invalid) {
      this.reset()
      this.#invalid = true
      for (const seg of model.machines.keys()) this.#syncMachine(model, seg)
      for (const unit of model.assignments.keys()) this.#syncUnit(model, unit)
      this.#invalid = false
      return
    }
    for (const seg of changes.machines) this.#syncMachine(model, seg)
    for (const unit of changes.units) this.#syncUnit(model, unit)
  }

  assign(unit: PlacementUnit, machine: string): void {
    let told = this.#told.get(unit.name)
    if (told === undefined) {
      told = new Set()
      this.#told.set(unit.name, told)
    }
    if (told.has(machine)) return
    this.placement.assign(unit, machine)
    told.add(machine)
  }

  unassign(unit: string, machine: string): void {
    const told = this.#told.get(unit)
    if (told === undefined || !told.has(machine)) return
    this.placement.unassign(unit, machine)
    told.delete(machine)
    if (told.size === 0) this.#told.delete(unit)
  }

  #syncMachine(model: SchedulerModel, seg: string): void {
    const live = model.liveMachine(seg)
    if (live === undefined) {
      const gone = this.#machineIdOf(seg)
      if (gone === undefined) return
      this.placement.removeMachine(gone)
      for (const [unit, told] of this.#told) {
        told.delete(gone)
        if (told.size === 0) this.#told.delete(unit)
      }
      return
    }
    const known = this.placement.hasMachine(live.id)
    this.placement.upsertMachine({ id: live.id, metadata: live.metadata })
    if (!known) {
      // A machine (re)appeared: what the model assigns to it counts again.
      for (const [unit, byMachine] of model.assignments) if (byMachine.has(seg)) this.#syncUnit(model, unit)
    }
  }

  #machineIdOf(seg: string): string | undefined {
    for (const m of this.placement.machines()) if (nodeSegment(m.id) === seg) return m.id
    return undefined
  }

  #syncUnit(model: SchedulerModel, unit: string): void {
    const want = new Map<string, { text: string; hash: string }>()
    const byMachine = model.assignments.get(unit)
    for (const [seg, a] of byMachine ?? []) {
      // A machine not in the placement yet (a sync adds machines one by one) is synced with its
      // own units when it is added.
      const live = model.liveMachine(seg)
      if (live !== undefined && this.placement.hasMachine(live.id)) want.set(live.id, a)
    }
    const told = this.#told.get(unit)
    for (const machine of [...(told ?? [])]) if (!want.has(machine)) this.unassign(unit, machine)
    const machines = [...want.keys()].sort()
    for (const machine of machines) {
      const a = want.get(machine) as { text: string; hash: string }
      const parsed = this.parse(unit, a.text, a.hash)
      if (typeof parsed === 'string') continue
      if (!parsed.placement.fleet.global) {
        const current = this.#told.get(unit)
        if (current !== undefined && current.size > 0) break
      }
      this.assign(parsed.placement, machine)
    }
  }
}
