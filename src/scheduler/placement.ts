/**
 * The scheduler's placement: which machine a unit should run on, under fleet's rules (MachineID,
 * MachineMetadata, MachineOf, Conflicts, Replaces, Global) and Cairn's spread (MaxSkew and Cap per
 * topology level). A pure, in-memory index the engine feeds with machines and assignments; no
 * I/O, no clock, no randomness. docs/placement.md is its page.
 *
 * place() answers without recording; assign() records. Everything place() needs is kept
 * incrementally by assign, unassign and the machine calls: per-template per-level per-domain
 * instance counts with each level's minimum (placement-topology.ts), per-machine loads, and the
 * Conflicts/Replaces indexes (placement-conflicts.ts). The search is placement-search.ts.
 *
 * Invariants:
 * - A non-Global unit is assigned to at most one machine; a Global unit to any number, once each.
 * - load[slot] === on[slot].size === the assignments on that machine (Global ones included).
 * - Every assignment is counted in the conflict index, and every non-Global instance of a
 *   template in each of its template's views, exactly once; unassign undoes exactly what assign
 *   did, using the unit as it was assigned (not as it is now).
 * - Machine ids are unique as given; MachineID= compares them case-insensitively.
 * - Deterministic: the same calls in the same order give the same answers (no Set or Map order
 *   leaks into a result: ties end at the machine id).
 */
import { type MetadataRule, metadataMatches } from './metadata-rule.ts'
import { ConflictIndex } from './placement-conflicts.ts'
import { assertPlacement, PlacementLimitError, placementLimits } from './placement-limits.ts'
import {
  descend,
  failure,
  type LevelRule,
  type MachineTable,
  type NodeFilter,
  type PlaceContext,
  rankKey,
  scanBest,
  tally,
} from './placement-search.ts'
import { TemplateView, TopologyIndex, topologyKey } from './placement-topology.ts'
import type { FleetSection, Spread } from './unit-file.ts'
import { globMatches } from './unit-glob.ts'

export interface PlacementMachine {
  id: string
  metadata: Readonly<Record<string, string>>
}

export interface PlacementUnit {
  /** 'web@3.service', 'db.service' */
  name: string
  /** The spread group: 'web@.service' for instances, undefined otherwise. */
  template: string | undefined
  /** From parseUnitFile(...).fleet. */
  fleet: FleetSection
  /** From parseUnitFile(...).spread (instances of templates only). */
  spread: Spread | undefined
}

export type PlaceResult = { ok: true; machine: string; evict: string[] } | { ok: false; reason: string }

export interface PlacementOptions {
  /**
   * 'descent' (default): template instances search the domain tree. 'scan': every machine is
   * ranked for every unit. Same answers (a property test checks it); 'scan' is the reference.
   */
  search?: 'descent' | 'scan'
}

interface UnitRecord {
  readonly global: boolean
  /** Machine slot → the unit as it was assigned there. */
  readonly at: Map<number, PlacementUnit>
}

interface TemplateState {
  /** Non-Global instances assigned: name → slot. */
  readonly instances: Map<string, number>
  /** Counts per topology key, oldest first. */
  readonly views: Map<string, TemplateView>
}

type Restriction = { slots: number[]; label: string } | { reason: string } | undefined

const noSelf: ReadonlyMap<number, readonly string[]> = new Map()

export class Placement {
  readonly #search: 'descent' | 'scan'
  readonly #ids: string[] = []
  readonly #metadata: Array<Readonly<Record<string, string>>> = []
  readonly #load: number[] = []
  readonly #on: Array<Set<string>> = []
  readonly #slotOf = new Map<string, number>()
  readonly #byLower = new Map<string, number[]>()
  readonly #freeSlots: number[] = []
  #sorted: number[] | undefined
  readonly #table: MachineTable
  readonly #records = new Map<string, UnitRecord>()
  #assignments = 0
  readonly #topologies = new Map<string, TopologyIndex>()
  readonly #templates = new Map<string, TemplateState>()
  /** Templates with no assigned instance, oldest first (their state is kept for a while). */
  readonly #idleTemplates = new Set<string>()
  readonly #conflicts = new ConflictIndex((name) => this.#records.get(name)?.at.keys() ?? [])
  /** Node filters by key; cleared whenever the machines change. */
  readonly #filters = new Map<string, NodeFilter>()
  readonly #everyMachine: NodeFilter = { flags: undefined, slots: undefined, why: () => 'no machine' }

  constructor(options: PlacementOptions = {}) {
    this.#search = options.search ?? 'descent'
    this.#table = { ids: this.#ids, load: this.#load, sorted: () => this.#sortedSlots() }
  }

  // ---- machines

  /** Adds a machine, or takes its new metadata (its units stay; check() says if they may). */
  upsertMachine(m: PlacementMachine): void {
    const metadata = Object.freeze({ ...m.metadata })
    const known = this.#slotOf.get(m.id)
    if (known !== undefined) {
      if (!sameMetadata(this.#metadata[known]!, metadata)) this.#retag(known, metadata)
      return
    }
    assertPlacement(m.id !== '', 'a machine id is not empty')
    if (this.#slotOf.size >= placementLimits.machinesMax) throw new PlacementLimitError('machinesMax')
    const slot = this.#freeSlots.pop() ?? this.#ids.length
    this.#ids[slot] = m.id
    this.#metadata[slot] = metadata
    this.#load[slot] = 0
    this.#on[slot] = new Set()
    this.#slotOf.set(m.id, slot)
    const lower = m.id.toLowerCase()
    this.#byLower.set(lower, [...(this.#byLower.get(lower) ?? []), slot])
    for (const topology of this.#topologies.values()) topology.add(slot, m.id, metadata)
    this.#machinesChanged()
  }

  /** Removes a machine; returns the units that were on it (Global ones included), sorted. */
  removeMachine(id: string): string[] {
    const slot = this.#slotOf.get(id)
    if (slot === undefined) return []
    const names = [...this.#on[slot]!].sort()
    for (const name of names) this.#erase(name, slot)
    for (const topology of this.#topologies.values()) topology.remove(slot)
    this.#ids[slot] = ''
    this.#metadata[slot] = {}
    this.#slotOf.delete(id)
    const lower = id.toLowerCase()
    const same = this.#byLower.get(lower)!.filter((s) => s !== slot)
    if (same.length === 0) this.#byLower.delete(lower)
    else this.#byLower.set(lower, same)
    this.#freeSlots.push(slot)
    this.#machinesChanged()
    return names
  }

  hasMachine(id: string): boolean {
    return this.#slotOf.has(id)
  }

  /** Every machine, by id. */
  *machines(): Iterable<PlacementMachine> {
    for (const slot of this.#sortedSlots()) yield { id: this.#ids[slot]!, metadata: this.#metadata[slot]! }
  }

  // ---- assignments

  /** Records `unit` on `machine` (moving a non-Global unit from where it was). No rule is checked. */
  assign(unit: PlacementUnit, machine: string): void {
    const slot = this.#slotOf.get(machine)
    assertPlacement(slot !== undefined, `assign to an unknown machine ${machine}`)
    const record = this.#records.get(unit.name)
    if (record !== undefined && (record.global !== unit.fleet.global || !record.global)) {
      this.unassign(unit.name)
    } else if (record?.at.has(slot)) {
      this.#erase(unit.name, slot)
    }
    if (this.#assignments >= placementLimits.assignmentsMax) throw new PlacementLimitError('assignmentsMax')
    this.#record(unit, slot)
  }

  /** Forgets an assignment. `machine` only matters for Global units (undefined: every machine). */
  unassign(name: string, machine?: string): void {
    const record = this.#records.get(name)
    if (record === undefined) return
    if (record.global && machine !== undefined) {
      const slot = this.#slotOf.get(machine)
      if (slot !== undefined && record.at.has(slot)) this.#erase(name, slot)
      return
    }
    for (const slot of [...record.at.keys()]) this.#erase(name, slot)
  }

  /** The machine of a non-Global unit; undefined when unassigned or Global. */
  machineOf(name: string): string | undefined {
    const record = this.#records.get(name)
    if (record === undefined || record.global) return undefined
    const [slot] = record.at.keys()
    return slot === undefined ? undefined : this.#ids[slot]
  }

  /** Units assigned to the machine (Global ones included), sorted. */
  unitsOn(machine: string): Iterable<string> {
    const slot = this.#slotOf.get(machine)
    return slot === undefined ? [] : [...this.#on[slot]!].sort()
  }

  /** Units assigned to the machine, Global ones included. */
  load(machine: string): number {
    const slot = this.#slotOf.get(machine)
    return slot === undefined ? 0 : this.#load[slot]!
  }

  /** Assignments held (a Global unit counts once per machine). */
  get assignments(): number {
    return this.#assignments
  }

  // ---- placement

  /** The best machine for `unit` and the units it evicts (Replaces=); nothing is recorded. */
  place(unit: PlacementUnit): PlaceResult {
    if (unit.fleet.global) {
      return { ok: false, reason: 'Global=true: a Global unit runs on every machine globalMachines() lists' }
    }
    if (this.#assignments >= placementLimits.assignmentsMax) {
      return { ok: false, reason: `assignmentsMax (${placementLimits.assignmentsMax}) reached` }
    }
    if (this.#slotOf.size === 0) return { ok: false, reason: 'no machines' }
    const held = this.#records.get(unit.name)
    if (held === undefined) return this.#placeFree(unit)
    // Placed as if it were not assigned: take it out for the time of the call.
    const [slot, as] = held.at.entries().next().value as [number, PlacementUnit]
    this.#erase(unit.name, slot)
    try {
      return this.#placeFree(unit)
    } finally {
      this.#record(as, slot)
    }
  }

  /** Whether `unit` may stay on `machine` under the hard rules, ignoring itself; a reason if not. */
  check(unit: PlacementUnit, machine: string): string | undefined {
    const slot = this.#slotOf.get(machine)
    if (slot === undefined) return `no machine ${machine}`
    for (const target of unit.fleet.machineOf) {
      const slots = this.#slotsOf(target)
      if (slots.length === 0) return `MachineOf=${target}: ${target} is not placed`
      if (!slots.includes(slot)) return `MachineOf=${target}: ${target} is on ${this.#ids[slots[0]!]}`
    }
    return failure(this.#context(unit, this.#selfOf(unit, slot), false), slot)
  }

  /** Machines a Global unit must run on: metadata matches, no Conflicts either way. Sorted. */
  globalMachines(unit: PlacementUnit): string[] {
    const record = this.#records.get(unit.name)
    const self = new Map<number, readonly string[]>()
    if (record?.global) for (const [slot, as] of record.at) self.set(slot, as.fleet.conflicts)
    const ctx = this.#context(unit, self, false)
    const found: string[] = []
    for (const slot of this.#sortedSlots()) if (failure(ctx, slot) === undefined) found.push(this.#ids[slot]!)
    return found
  }

  /**
   * The template's instance count per existing domain at each level of `topology` (label: the
   * domain's path, `eu/eu-1`), for status and the bench. Counts the instances assigned now.
   */
  spreadCounts(template: string, topology: readonly string[]): Array<Map<string, number>> {
    const view = this.#view(template, topology)
    return topology.map((_, i) => {
      const counts = new Map<string, number>()
      const size = view.topology.size[i]!
      for (let d = 0; d < size.length; d++) {
        if (size[d]! > 0) counts.set(view.topology.label[i]![d]!, view.counts[i]![d]!)
      }
      return counts
    })
  }

  #placeFree(unit: PlacementUnit): PlaceResult {
    const restriction = this.#restriction(unit)
    if (restriction !== undefined && 'reason' in restriction) return { ok: false, reason: restriction.reason }
    if (restriction !== undefined && unit.fleet.replaces.some((r) => this.#slotsOf(r).length > 0)) {
      return this.#placeReplacing(unit, restriction)
    }
    const ctx = this.#context(unit, noSelf, true)
    const all = this.#sortedSlots()
    const slots = restriction?.slots ?? all
    const best = restriction === undefined && this.#search === 'descent' ? descend(ctx) : scanBest(ctx, slots)
    if (best >= 0) return { ok: true, machine: this.#ids[best]!, evict: [] }
    const restricted =
      restriction === undefined ? '' : `${restriction.label} excludes ${all.length - slots.length}; `
    return { ok: false, reason: `no machine fits ${unit.name}: ${restricted}${tally(ctx, slots)}` }
  }

  /** Replaces=: only the machines of the replaced units, each judged with them gone. */
  #placeReplacing(unit: PlacementUnit, restriction: { slots: number[]; label: string }): PlaceResult {
    let best: { slot: number; key: number[]; evict: string[] } | undefined
    const reasons: string[] = []
    for (const slot of restriction.slots) {
      const evict = unit.fleet.replaces.filter((r) => this.#records.get(r)?.at.has(slot)).sort()
      const saved = evict.map((name) => this.#records.get(name)!.at.get(slot)!)
      for (const name of evict) this.#erase(name, slot)
      try {
        const ctx = this.#context(unit, noSelf, true)
        const why = failure(ctx, slot)
        if (why !== undefined) {
          reasons.push(`${why} on ${this.#ids[slot]}`)
          continue
        }
        const key = rankKey(ctx, slot)
        if (best === undefined || compareKeys(key, best.key, this.#ids[slot]!, this.#ids[best.slot]!) < 0) {
          best = { slot, key, evict }
        }
      } finally {
        for (const as of saved) this.#record(as, slot)
      }
    }
    if (best !== undefined) return { ok: true, machine: this.#ids[best.slot]!, evict: best.evict }
    return { ok: false, reason: `no machine fits ${unit.name}: ${restriction.label}: ${reasons.join('; ')}` }
  }

  /** The candidate machines MachineID, MachineOf and Replaces leave; undefined: all of them. */
  #restriction(unit: PlacementUnit): Restriction {
    const { machineId, machineOf, replaces } = unit.fleet
    let slots: number[] | undefined
    const labels: string[] = []
    if (machineId !== undefined) {
      slots = [...(this.#byLower.get(machineId.toLowerCase()) ?? [])]
      if (slots.length === 0) return { reason: `MachineID=${machineId}: no such machine` }
      labels.push(`MachineID=${machineId}`)
    }
    for (const target of machineOf) {
      const at = this.#slotsOf(target)
      if (at.length === 0) return { reason: `MachineOf=${target}: ${target} is not placed` }
      slots = slots === undefined ? at : slots.filter((s) => at.includes(s))
      labels.push(`MachineOf=${target}`)
      if (slots.length === 0) return { reason: `${labels.join(' ')}: no machine satisfies them all` }
    }
    const replaced = [...new Set(replaces.flatMap((r) => this.#slotsOf(r)))]
    if (replaced.length > 0) {
      slots = slots === undefined ? replaced : slots.filter((s) => replaced.includes(s))
      labels.push(`Replaces=${replaces.join(' ')}`)
      if (slots.length === 0) return { reason: `${labels.join(' ')}: no machine satisfies them all` }
    }
    if (slots === undefined) return undefined
    slots.sort((a, b) => compareIds(this.#ids[a]!, this.#ids[b]!))
    return { slots, label: labels.join(' ') }
  }

  /** The unit's own assignments check() should ignore on `slot`. */
  #selfOf(unit: PlacementUnit, slot: number): ReadonlyMap<number, readonly string[]> {
    const record = this.#records.get(unit.name)
    if (record === undefined) return noSelf
    const self = new Map<number, readonly string[]>()
    for (const [at, as] of record.at) if (!record.global || at === slot) self.set(at, as.fleet.conflicts)
    return self
  }

  #context(unit: PlacementUnit, self: ReadonlyMap<number, readonly string[]>, skew: boolean): PlaceContext {
    const forward = [...new Set(unit.fleet.conflicts)].map((p) => this.#conflicts.entry(p))
    let topology: TopologyIndex | undefined
    let levels: LevelRule[] = []
    if (unit.spread !== undefined && unit.template !== undefined && !unit.fleet.global) {
      const view = this.#view(unit.template, unit.spread.topology)
      topology = view.topology
      const [selfSlot] = this.#records.get(unit.name)?.global === false ? self.keys() : []
      levels = levelRules(unit.spread, view, selfSlot, skew)
    }
    return {
      machines: this.#table,
      filter: this.#filter(unit.fleet.machineId, unit.fleet.machineMetadata),
      topology,
      levels,
      forward,
      forwardSelf: forward.map((e) => globMatches(e.glob, unit.name)),
      reverse: this.#conflicts.matching(unit.name),
      replacedBy: this.#conflicts.replacedBy(unit.name),
      unitName: unit.name,
      self,
    }
  }

  // ---- node filters

  #filter(machineId: string | undefined, rule: MetadataRule): NodeFilter {
    if (machineId === undefined && rule.length === 0) return this.#everyMachine
    const lower = machineId?.toLowerCase()
    const key = `${lower ?? ''}\u0001${JSON.stringify(rule)}`
    const cached = this.#filters.get(key)
    if (cached !== undefined) return cached
    const flags = new Uint8Array(this.#ids.length)
    const slots: number[] = []
    const from = lower === undefined ? this.#sortedSlots() : (this.#byLower.get(lower) ?? [])
    for (const slot of from) {
      if (!metadataMatches(rule, this.#metadata[slot]!)) continue
      flags[slot] = 1
      slots.push(slot)
    }
    const idLabel = `MachineID=${machineId}`
    const metadataLabel = `MachineMetadata=${renderRule(rule)}`
    const filter: NodeFilter = {
      flags,
      slots,
      why: (slot) =>
        lower !== undefined && this.#ids[slot]!.toLowerCase() !== lower ? idLabel : metadataLabel,
    }
    if (this.#filters.size >= placementLimits.filtersCachedMax) {
      this.#filters.delete(this.#filters.keys().next().value as string)
    }
    this.#filters.set(key, filter)
    return filter
  }

  // ---- recording

  #record(unit: PlacementUnit, slot: number): void {
    // The conflict index reads a name's slots when it indexes a new glob: count before recording.
    this.#conflicts.count(unit.name, unit.fleet.conflicts, unit.fleet.replaces, slot, 1)
    let record = this.#records.get(unit.name)
    if (record === undefined)
      this.#records.set(unit.name, (record = { global: unit.fleet.global, at: new Map() }))
    assertPlacement(record.global || record.at.size === 0, `${unit.name} is assigned twice`)
    record.at.set(slot, unit)
    this.#on[slot]!.add(unit.name)
    this.#load[slot]!++
    this.#assignments++
    if (unit.template === undefined || unit.fleet.global) return
    const state = this.#templateState(unit.template)
    state.instances.set(unit.name, slot)
    this.#idleTemplates.delete(unit.template)
    for (const view of state.views.values()) view.move(slot, 1)
  }

  #erase(name: string, slot: number): void {
    const record = this.#records.get(name)
    const unit = record?.at.get(slot)
    assertPlacement(record !== undefined && unit !== undefined, `${name} is not assigned there`)
    record.at.delete(slot)
    if (record.at.size === 0) this.#records.delete(name)
    this.#on[slot]!.delete(name)
    this.#load[slot]!--
    this.#assignments--
    this.#conflicts.count(name, unit.fleet.conflicts, unit.fleet.replaces, slot, -1)
    if (unit.template === undefined || unit.fleet.global) return
    const state = this.#templates.get(unit.template)!
    state.instances.delete(name)
    for (const view of state.views.values()) view.move(slot, -1)
    if (state.instances.size === 0) this.#idle(unit.template)
  }

  #slotsOf(name: string): number[] {
    const record = this.#records.get(name)
    return record === undefined ? [] : [...record.at.keys()]
  }

  /** New metadata: the machine's units are counted again in its new domains. */
  #retag(slot: number, metadata: Readonly<Record<string, string>>): void {
    const units = [...this.#on[slot]!].sort().map((name) => this.#records.get(name)!.at.get(slot)!)
    for (const unit of units) this.#erase(unit.name, slot)
    for (const topology of this.#topologies.values()) topology.remove(slot)
    this.#metadata[slot] = metadata
    for (const topology of this.#topologies.values()) topology.add(slot, this.#ids[slot]!, metadata)
    for (const unit of units) this.#record(unit, slot)
    this.#machinesChanged()
  }

  #machinesChanged(): void {
    this.#sorted = undefined
    this.#filters.clear()
  }

  #sortedSlots(): readonly number[] {
    if (this.#sorted === undefined) {
      this.#sorted = [...this.#slotOf.values()].sort((a, b) => compareIds(this.#ids[a]!, this.#ids[b]!))
    }
    return this.#sorted
  }

  // ---- templates and topologies

  #templateState(template: string): TemplateState {
    let state = this.#templates.get(template)
    if (state === undefined) {
      this.#templates.set(template, (state = { instances: new Map(), views: new Map() }))
      this.#idle(template)
    }
    return state
  }

  /** Marks a template idle (no instance), dropping the oldest idle ones past idleTemplatesMax. */
  #idle(template: string): void {
    this.#idleTemplates.delete(template)
    this.#idleTemplates.add(template)
    while (this.#idleTemplates.size > placementLimits.idleTemplatesMax) {
      const oldest = this.#idleTemplates.values().next().value as string
      this.#idleTemplates.delete(oldest)
      for (const view of this.#templates.get(oldest)!.views.values()) this.#dropView(view)
      this.#templates.delete(oldest)
    }
  }

  /** The template's counts over `levels`, built from its instances the first time. */
  #view(template: string, levels: readonly string[]): TemplateView {
    const state = this.#templateState(template)
    const key = topologyKey(levels)
    const known = state.views.get(key)
    if (known !== undefined) return known
    if (state.views.size >= placementLimits.templateTopologiesMax) {
      const [oldestKey, oldest] = state.views.entries().next().value as [string, TemplateView]
      state.views.delete(oldestKey)
      this.#dropView(oldest)
    }
    let topology = this.#topologies.get(key)
    if (topology === undefined) {
      topology = new TopologyIndex(levels)
      for (const slot of this.#sortedSlots()) topology.add(slot, this.#ids[slot]!, this.#metadata[slot]!)
      this.#topologies.set(key, topology)
    }
    const view = new TemplateView(topology)
    topology.views.add(view)
    for (const slot of state.instances.values()) view.move(slot, 1)
    state.views.set(key, view)
    return view
  }

  #dropView(view: TemplateView): void {
    view.topology.views.delete(view)
    if (view.topology.views.size === 0) this.#topologies.delete(view.topology.key)
  }
}

function levelRules(
  spread: Spread,
  view: TemplateView,
  selfSlot: number | undefined,
  skew: boolean,
): LevelRule[] {
  return spread.topology.map((level, i) => {
    const cap = spread.caps.find((r) => r.level === level)
    const max = spread.maxSkew.find((r) => r.level === level)
    const domainOf = view.topology.domainOf[i]!
    return {
      level: i,
      view,
      counts: view.counts[i]!,
      domainOf,
      hardCap: cap?.mode === 'hard' ? cap.count : Number.POSITIVE_INFINITY,
      softCap: cap?.mode === 'soft' ? cap.count : Number.POSITIVE_INFINITY,
      hardSkew: max?.mode === 'hard' ? max.count : Number.POSITIVE_INFINITY,
      softSkew: max?.mode === 'soft' ? max.count : Number.POSITIVE_INFINITY,
      capLabel: cap === undefined ? '' : `Cap=${level}:${cap.count}:${cap.mode}`,
      skewLabel: max === undefined ? '' : `MaxSkew=${level}:${max.count}:${max.mode}`,
      selfDomain: selfSlot === undefined ? -1 : domainOf[selfSlot]!,
      skew,
      min: -1,
    }
  })
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function compareKeys(a: readonly number[], b: readonly number[], idA: string, idB: string): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return compareIds(idA, idB)
}

function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k])
}

function renderRule(rule: MetadataRule): string {
  return rule.flatMap((c) => c.values.map((v) => `"${c.key}=${v}"`)).join(' ')
}
