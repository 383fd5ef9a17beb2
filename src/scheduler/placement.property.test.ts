/**
 * Proves, on random histories of machine upserts (with metadata changes and missing keys) and
 * removals, place-and-assign, raw assigns that break rules, and unassigns:
 * - the incremental state equals the state recomputed from scratch: loads, units per machine,
 *   machineOf, and every template's count per domain at every level;
 * - place() never returns a machine that breaks a hard rule, and refuses only when no machine
 *   satisfies them all, both judged by a naive checker written here from the rules alone;
 * - the domain-tree descent gives the same answers as the plain scan of every machine.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { metadataMatches } from './metadata-rule.ts'
import { Placement, type PlacementMachine, type PlacementUnit, type PlaceResult } from './placement.ts'
import { testInstances, testUnit } from './placement-test-support.ts'
import { compileGlob, globMatches } from './unit-glob.ts'

const machineIds = ['m0', 'm1', 'M1', 'm2', 'm3', 'm4', 'm5']

const pool: PlacementUnit[] = [
  ...testInstances('web', 6, {
    cairn: 'Topology=region,zone,machine\nMaxSkew=zone:1:hard\nCap=machine:2:soft',
  }),
  ...testInstances('api', 6, {
    fleet: 'MachineMetadata=disk=ssd',
    cairn: 'Topology=zone,machine\nCap=zone:2:hard\nMaxSkew=machine:1:soft',
  }),
  ...testInstances('job', 4, { fleet: 'Conflicts=job@*.service' }),
  ...testInstances('svc', 3, { cairn: 'Topology=region\nMaxSkew=region:1:soft\nCap=region:3:soft' }),
  testUnit('db.service', { fleet: 'Conflicts=web@1*.service' }),
  testUnit('cache.service', { fleet: 'MachineOf=db.service' }),
  testUnit('side.service', { fleet: 'MachineOf=db.service cache.service' }),
  testUnit('pin.service', { fleet: 'MachineID=m1' }),
  testUnit('old.service'),
  testUnit('new.service', { fleet: 'Replaces=old.service' }),
  testUnit('x.service', { fleet: 'MachineMetadata=region=a region=b disk=hdd' }),
  testUnit('g.service', { fleet: 'Global=true\nConflicts=x.service' }),
  testUnit('h.service', { fleet: 'Global=true\nMachineMetadata=disk=ssd\nConflicts=job@[12].service' }),
]
const byName = new Map(pool.map((u) => [u.name, u]))

type Op =
  | { kind: 'upsert'; machine: number; region?: string; zone?: string; disk: string }
  | { kind: 'remove'; machine: number }
  | { kind: 'place'; unit: number }
  | { kind: 'assign'; unit: number; machine: number }
  | { kind: 'unassign'; unit: number; machine: number; all: boolean }

const machineIndex = fc.nat(machineIds.length - 1)
const unitIndex = fc.nat(pool.length - 1)
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record(
      {
        kind: fc.constant('upsert' as const),
        machine: machineIndex,
        region: fc.constantFrom('a', 'b'),
        zone: fc.constantFrom('x', 'y', 'z'),
        disk: fc.constantFrom('ssd', 'hdd'),
      },
      { requiredKeys: ['kind', 'machine', 'disk'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), machine: machineIndex }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('place' as const), unit: unitIndex }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('assign' as const), unit: unitIndex, machine: machineIndex }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('unassign' as const),
      unit: unitIndex,
      machine: machineIndex,
      all: fc.boolean(),
    }),
  },
)

/** The test's own record of the world: machines, and unit name → machines it is on. */
class Model {
  readonly machines = new Map<string, PlacementMachine>()
  readonly on = new Map<string, Set<string>>()

  assign(unit: PlacementUnit, machine: string): void {
    const at = unit.fleet.global ? (this.on.get(unit.name) ?? new Set<string>()) : new Set<string>()
    at.add(machine)
    this.on.set(unit.name, at)
  }

  unassign(name: string, machine: string | undefined): void {
    const at = this.on.get(name)
    if (machine === undefined || !byName.get(name)!.fleet.global) this.on.delete(name)
    else if (at?.delete(machine) && at.size === 0) this.on.delete(name)
  }

  removeMachine(id: string): void {
    this.machines.delete(id)
    for (const [name, at] of this.on) {
      at.delete(id)
      if (at.size === 0) this.on.delete(name)
    }
  }

  unitsOn(id: string): string[] {
    return [...this.on].filter(([, at]) => at.has(id)).map(([name]) => name)
  }
}

function matchesAny(globs: readonly string[], name: string): boolean {
  return globs.some((g) => globMatches(compileGlob(g), name))
}

function path(m: PlacementMachine, levels: readonly string[], upTo: number): string {
  return levels
    .slice(0, upTo + 1)
    .map((level) => (level === 'machine' ? m.id : (m.metadata[level] ?? '')))
    .join('/')
}

function nodeOk(unit: PlacementUnit, m: PlacementMachine): boolean {
  const id = unit.fleet.machineId
  if (id !== undefined && id.toLowerCase() !== m.id.toLowerCase()) return false
  return metadataMatches(unit.fleet.machineMetadata, m.metadata)
}

/** Every hard rule, judged from scratch, for `unit` newly placed on `m`. */
function naiveFeasible(model: Model, unit: PlacementUnit, m: PlacementMachine): boolean {
  if (!nodeOk(unit, m)) return false
  const where = (name: string) => [...(model.on.get(name) ?? [])]
  if (unit.fleet.machineOf.some((t) => !where(t).includes(m.id))) return false
  const replacedOn = unit.fleet.replaces.flatMap(where)
  if (replacedOn.length > 0 && !replacedOn.includes(m.id)) return false
  const evicted = new Set(unit.fleet.replaces.filter((r) => where(r).includes(m.id)))
  const gone = (name: string) => name === unit.name || evicted.has(name)
  for (const other of model.unitsOn(m.id).filter((n) => !gone(n))) {
    const spec = byName.get(other)!
    if (matchesAny(unit.fleet.conflicts, other) || matchesAny(spec.fleet.conflicts, unit.name)) return false
    if (spec.fleet.replaces.includes(unit.name)) return false
  }
  const spread = unit.spread
  if (spread === undefined || unit.template === undefined) return true
  const siblings = [...model.on]
    .filter(([name]) => !gone(name) && byName.get(name)!.template === unit.template)
    .map(([, at]) => model.machines.get([...at][0]!)!)
  const eligible = [...model.machines.values()].filter((x) => nodeOk(unit, x))
  for (const [i, level] of spread.topology.entries()) {
    const count = (domain: string) => siblings.filter((s) => path(s, spread.topology, i) === domain).length
    const here = count(path(m, spread.topology, i)) + 1
    const cap = spread.caps.find((r) => r.level === level && r.mode === 'hard')
    if (cap !== undefined && here > cap.count) return false
    const skew = spread.maxSkew.find((r) => r.level === level && r.mode === 'hard')
    const min = Math.min(...eligible.map((x) => count(path(x, spread.topology, i))))
    if (skew !== undefined && here - min > skew.count) return false
  }
  return true
}

function checkPlace(model: Model, unit: PlacementUnit, result: PlaceResult): void {
  const machines = [...model.machines.values()]
  if (result.ok) {
    expect(
      naiveFeasible(model, unit, model.machines.get(result.machine)!),
      `${unit.name} on ${result.machine}`,
    ).toBe(true)
    const expected = unit.fleet.replaces.filter((r) => model.on.get(r)?.has(result.machine)).sort()
    expect(result.evict).toEqual(expected)
  } else {
    const fits = machines.filter((m) => naiveFeasible(model, unit, m)).map((m) => m.id)
    expect(fits, `${unit.name} refused: ${result.reason}`).toEqual([])
  }
}

/** Loads, units per machine, machineOf and spread counts equal the model recomputed from scratch. */
function checkCounts(model: Model, placement: Placement): void {
  for (const m of model.machines.values()) {
    expect([...placement.unitsOn(m.id)]).toEqual(model.unitsOn(m.id).sort())
    expect(placement.load(m.id)).toBe(model.unitsOn(m.id).length)
  }
  for (const unit of pool) {
    if (unit.fleet.global) continue
    const at = [...(model.on.get(unit.name) ?? [])]
    expect(placement.machineOf(unit.name)).toBe(at[0])
  }
  for (const template of new Set(pool.map((u) => u.template))) {
    if (template === undefined) continue
    const topology = pool.find((u) => u.template === template)!.spread!.topology
    const counts = placement.spreadCounts(template, topology)
    for (const [i, actual] of counts.entries()) {
      const expected = new Map<string, number>()
      for (const m of model.machines.values()) expected.set(path(m, topology, i), 0)
      for (const [name, at] of model.on) {
        if (byName.get(name)!.template !== template) continue
        const domain = path(model.machines.get([...at][0]!)!, topology, i)
        expected.set(domain, expected.get(domain)! + 1)
      }
      expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected))
    }
  }
}

function apply(op: Op, model: Model, placements: readonly Placement[]): void {
  const unit = pool[op.kind === 'upsert' || op.kind === 'remove' ? 0 : op.unit]!
  const id = machineIds[op.kind === 'place' ? 0 : op.machine]!
  switch (op.kind) {
    case 'upsert': {
      const metadata: Record<string, string> = { disk: op.disk }
      if (op.region !== undefined) metadata.region = op.region
      if (op.zone !== undefined) metadata.zone = op.zone
      model.machines.set(id, { id, metadata })
      for (const p of placements) p.upsertMachine({ id, metadata })
      return
    }
    case 'remove': {
      const gone = model.unitsOn(id).sort()
      model.removeMachine(id)
      for (const p of placements) expect(p.removeMachine(id)).toEqual(gone)
      return
    }
    case 'place': {
      if (unit.fleet.global) return
      const results = placements.map((p) => p.place(unit))
      expect(results[1]).toEqual(results[0])
      const result = results[0]!
      checkPlace(model, unit, result)
      if (!result.ok) return
      for (const evicted of result.evict) {
        model.unassign(evicted, undefined)
        for (const p of placements) p.unassign(evicted)
      }
      model.assign(unit, result.machine)
      for (const p of placements) p.assign(unit, result.machine)
      return
    }
    case 'assign': {
      if (!model.machines.has(id)) return
      model.assign(unit, id)
      for (const p of placements) p.assign(unit, id)
      return
    }
    case 'unassign': {
      const machine = op.all ? undefined : id
      model.unassign(unit.name, machine)
      for (const p of placements) p.unassign(unit.name, machine)
    }
  }
}

describe('placement on random histories', () => {
  it('keeps incremental counts equal to a recount, and never breaks a hard rule', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const model = new Model()
        const placements = [new Placement(), new Placement({ search: 'scan' })]
        for (const step of ops) {
          apply(step, model, placements)
          checkCounts(model, placements[0]!)
        }
        // Every unit of the pool, placed now, by both searches.
        for (const unit of pool) {
          if (unit.fleet.global) continue
          const [descent, scan] = placements.map((p) => p.place(unit))
          expect(descent).toEqual(scan)
          checkPlace(model, unit, descent!)
        }
        checkCounts(model, placements[1]!)
      }),
      { numRuns: 300 },
    )
  })
})
