/**
 * Proves the placement rules one by one, on units parsed from real unit files: the spread of a
 * template's instances (even split per level, hard and soft MaxSkew and Cap, machines missing a
 * topology key), fleet's filters (MachineID, MachineMetadata AND/OR, MachineOf, Conflicts in both
 * directions and with globs, Replaces with its eviction, Global units), the reasons a refusal
 * gives, and that the incremental counts follow assign, unassign, metadata changes and machine
 * removal. placement.property.test.ts checks the same rules on random histories.
 */
import { describe, expect, it } from 'vitest'
import { Placement, type PlacementMachine, type PlacementUnit } from './placement.ts'
import { PlacementLimitError, placementLimits } from './placement-limits.ts'
import { testGrid, testInstances, testUnit } from './placement-test-support.ts'

function placementWith(machines: readonly PlacementMachine[]): Placement {
  const placement = new Placement()
  for (const m of machines) placement.upsertMachine(m)
  return placement
}

/** place() then assign() each unit; returns the machine of each (or the refusal). */
function placeAll(placement: Placement, units: readonly PlacementUnit[]): string[] {
  return units.map((unit) => {
    const result = placement.place(unit)
    if (!result.ok) return `refused: ${result.reason}`
    placement.assign(unit, result.machine)
    return result.machine
  })
}

function machine(id: string, metadata: Record<string, string> = {}): PlacementMachine {
  return { id, metadata }
}

function zoneCounts(placement: Placement, template: string, topology: string[], level: number) {
  return Object.fromEntries(placement.spreadCounts(template, topology)[level]!)
}

describe('spread of a template instances', () => {
  it('9 instances over 3 zones x 3 machines land 3/3/3, one per machine (default soft spread)', () => {
    const placement = placementWith(testGrid(1, 3, 3))
    const placed = placeAll(placement, testInstances('web', 9))
    expect(new Set(placed).size).toBe(9)
    expect(zoneCounts(placement, 'web@.service', ['region', 'zone', 'machine'], 1)).toEqual({
      'r0/r0-z0': 3,
      'r0/r0-z1': 3,
      'r0/r0-z2': 3,
    })
  })

  it('10 instances over 3 zones with MaxSkew=zone:1:hard land 4/3/3', () => {
    const placement = placementWith(testGrid(1, 3, 3))
    placeAll(placement, testInstances('web', 10, { cairn: 'Topology=zone,machine\nMaxSkew=zone:1:hard' }))
    const counts = Object.values(zoneCounts(placement, 'web@.service', ['zone', 'machine'], 0))
    expect(counts.sort()).toEqual([3, 3, 4])
  })

  it('spreads widest level first: regions even, then zones inside them', () => {
    const placement = placementWith(testGrid(2, 2, 2))
    placeAll(placement, testInstances('web', 6))
    const topology = ['region', 'zone', 'machine']
    expect(zoneCounts(placement, 'web@.service', topology, 0)).toEqual({ r0: 3, r1: 3 })
    expect(Object.values(zoneCounts(placement, 'web@.service', topology, 1)).sort()).toEqual([1, 1, 2, 2])
  })

  it.each([
    ['Cap=machine:1:hard', 'refused: no machine fits web@4.service: Cap=machine:1:hard excludes 3'],
    ['Cap=machine:1:soft', 'r0-z0-m0'],
    ['Cap=zone:3:hard', 'refused: no machine fits web@4.service: Cap=zone:3:hard excludes 3'],
  ])('%s: the fourth instance on three machines of one zone', (cap, fourth) => {
    const placement = placementWith(testGrid(1, 1, 3))
    const placed = placeAll(placement, testInstances('web', 4, { cairn: cap }))
    expect(placed.slice(0, 3)).toEqual(['r0-z0-m0', 'r0-z0-m1', 'r0-z0-m2'])
    expect(placed[3]).toBe(fourth)
  })

  it('a soft Cap is kept when another machine fits, even against the zone ranking', () => {
    // Zone x has one machine, zone y three. The 4th instance would go to zone x by zone count
    // (1 vs 2), but a1 already holds one: b3 keeps Cap=machine:1 and every skew.
    const placement = placementWith([
      machine('a1', { zone: 'x' }),
      machine('b1', { zone: 'y' }),
      machine('b2', { zone: 'y' }),
      machine('b3', { zone: 'y' }),
    ])
    const cairn = 'Topology=zone,machine\nCap=machine:1:soft\nMaxSkew=zone:100:soft'
    expect(placeAll(placement, testInstances('web', 4, { cairn }))).toEqual(['a1', 'b1', 'b2', 'b3'])
  })

  it.each([
    [
      'hard',
      'refused: no machine fits web@2.service: MaxSkew=zone:1:hard excludes 1; ' +
        'Conflicts=web@*.service of a unit there excludes 1',
    ],
    ['soft', 'a1'],
  ])('MaxSkew=zone:1:%s when the other zone is closed by a conflict', (mode, second) => {
    const placement = placementWith([machine('a1', { zone: 'x' }), machine('b1', { zone: 'y' })])
    placement.assign(testUnit('blocker.service', { fleet: 'Conflicts=web@*.service' }), 'b1')
    const placed = placeAll(
      placement,
      testInstances('web', 2, { cairn: `Topology=zone,machine\nMaxSkew=zone:1:${mode}` }),
    )
    expect(placed).toEqual(['a1', second])
  })

  it('skew counts only domains with a machine the unit may use (MachineMetadata)', () => {
    // Zone z2 has no ssd machine: it is not eligible, so its 0 does not hold the others back.
    const machines = testGrid(1, 3, 2, (i) => ({ disk: i >= 4 ? 'hdd' : 'ssd' }))
    const placement = placementWith(machines)
    const units = testInstances('web', 4, {
      fleet: 'MachineMetadata=disk=ssd',
      cairn: 'Topology=zone,machine\nMaxSkew=zone:1:hard',
    })
    expect(placeAll(placement, units)).toEqual(['r0-z0-m0', 'r0-z1-m0', 'r0-z0-m1', 'r0-z1-m1'])
  })

  it('machines without a topology key form one domain with the empty value', () => {
    const placement = placementWith([
      machine('a1', { zone: 'a' }),
      machine('a2', { zone: 'a' }),
      machine('n1'),
      machine('n2', { rack: '7' }),
    ])
    placeAll(placement, testInstances('web', 4, { cairn: 'Topology=zone,machine' }))
    expect(zoneCounts(placement, 'web@.service', ['zone', 'machine'], 0)).toEqual({ a: 2, '': 2 })
    expect(Object.keys(zoneCounts(placement, 'web@.service', ['zone', 'machine'], 1)).sort()).toEqual([
      '/n1',
      '/n2',
      'a/a1',
      'a/a2',
    ])
  })

  it('instances of other templates do not count; plain units count only as load', () => {
    const placement = placementWith(testGrid(1, 2, 1))
    placeAll(placement, testInstances('api', 3))
    placement.assign(testUnit('db.service'), 'r0-z1-m0')
    // web: zones tie at 0, machines tie at 0; loads 2 vs 2 → id.
    expect(placeAll(placement, testInstances('web', 1))).toEqual(['r0-z0-m0'])
  })
})

describe('fleet rules', () => {
  const three = [machine('m1'), machine('m2'), machine('m3')]

  it('MachineID: case-insensitive, an unknown id refuses, metadata still applies', () => {
    const placement = placementWith([machine('Alpha'), machine('beta', { disk: 'hdd' })])
    const placed = placeAll(placement, [
      testUnit('a.service', { fleet: 'MachineID=alpha' }),
      testUnit('b.service', { fleet: 'MachineID=gamma' }),
      testUnit('c.service', { fleet: 'MachineID=BETA\nMachineMetadata=disk=ssd' }),
    ])
    expect(placed).toEqual([
      'Alpha',
      'refused: MachineID=gamma: no such machine',
      'refused: no machine fits c.service: MachineID=BETA excludes 1; MachineMetadata="disk=ssd" excludes 1',
    ])
  })

  it.each([
    ['MachineMetadata=region=eu', ['m1', 'm3']],
    ['MachineMetadata="region=eu" "disk=ssd"', ['m1']],
    ['MachineMetadata="region=eu" "disk=ssd"\nMachineMetadata=region=us', ['m1', 'm2']],
    ['MachineMetadata=region=eu region=ap', ['m1', 'm3', 'm4']],
    ['MachineMetadata=rack=1', []],
  ])('%s admits %j (AND across keys, OR within one)', (fleet, admitted) => {
    const placement = placementWith([
      machine('m1', { region: 'eu', disk: 'ssd' }),
      machine('m2', { region: 'us', disk: 'ssd' }),
      machine('m3', { region: 'eu', disk: 'hdd' }),
      machine('m4', { region: 'ap', disk: 'ssd' }),
    ])
    expect(placement.globalMachines(testUnit('g.service', { fleet: `Global=true\n${fleet}` }))).toEqual(
      admitted,
    )
    const result = placement.place(testUnit('p.service', { fleet }))
    expect(result.ok ? result.machine : undefined).toBe(admitted[0])
  })

  it('MachineOf: goes to the target, refuses while it is unplaced, and check() follows it', () => {
    const placement = placementWith(three)
    const app = testUnit('app.service', { fleet: 'MachineOf=db.service' })
    expect(placement.place(app)).toEqual({
      ok: false,
      reason: 'MachineOf=db.service: db.service is not placed',
    })
    placement.assign(testUnit('db.service'), 'm2')
    expect(placement.place(app)).toEqual({ ok: true, machine: 'm2', evict: [] })
    placement.assign(app, 'm2')
    expect(placement.check(app, 'm2')).toBeUndefined()
    placement.assign(testUnit('db.service'), 'm3')
    expect(placement.check(app, 'm2')).toBe('MachineOf=db.service: db.service is on m3')
  })

  it('MachineOf two units on different machines refuses', () => {
    const placement = placementWith(three)
    placement.assign(testUnit('a.service'), 'm1')
    placement.assign(testUnit('b.service'), 'm2')
    const unit = testUnit('c.service', { fleet: 'MachineOf=a.service b.service' })
    expect(placement.place(unit)).toEqual({
      ok: false,
      reason: 'MachineOf=a.service MachineOf=b.service: no machine satisfies them all',
    })
  })

  it.each([
    ['forward: the unit names a unit there', 'a.service', {}, 'b.service', { fleet: 'Conflicts=a.service' }],
    [
      'reverse: a unit there names the unit',
      'a.service',
      { fleet: 'Conflicts=b*.service' },
      'b1.service',
      {},
    ],
    ['glob class', 'db-3.service', {}, 'x.service', { fleet: 'Conflicts=db-[0-9].service' }],
    ['negated class', 'db-x.service', {}, 'y.service', { fleet: 'Conflicts=db-[^0-9].service' }],
  ])('Conflicts %s', (_, holderName, holderLines, unitName, unitLines) => {
    const placement = placementWith(three)
    placement.assign(testUnit(holderName, holderLines), 'm1')
    expect(placeAll(placement, [testUnit(unitName, unitLines)])).toEqual(['m2'])
  })

  it('Conflicts=web@*.service keeps instances apart and names the rule when full', () => {
    const placement = placementWith(three)
    const placed = placeAll(placement, testInstances('web', 4, { fleet: 'Conflicts=web@*.service' }))
    expect(placed).toEqual([
      'm1',
      'm2',
      'm3',
      'refused: no machine fits web@4.service: Conflicts=web@*.service excludes 3',
    ])
  })

  it('a Global unit conflicts on every machine it runs on', () => {
    const placement = placementWith(three)
    const global = testUnit('g.service', { fleet: 'Global=true\nConflicts=x*.service' })
    placement.assign(global, 'm1')
    placement.assign(global, 'm2')
    expect(placeAll(placement, [testUnit('x1.service'), testUnit('x2.service')])).toEqual(['m3', 'm3'])
    placement.unassign('g.service', 'm1')
    expect(placeAll(placement, [testUnit('x3.service')])).toEqual(['m1'])
  })

  it('Replaces: takes the machine of the replaced unit and evicts it; the replaced unit stays off it', () => {
    const placement = placementWith([machine('m1'), machine('m2')])
    const old = testUnit('old.service')
    placement.assign(old, 'm2')
    const next = testUnit('new.service', { fleet: 'Replaces=old.service' })
    expect(placement.place(next)).toEqual({ ok: true, machine: 'm2', evict: ['old.service'] })
    placement.assign(next, 'm2')
    placement.unassign('old.service')
    expect(placement.place(old)).toEqual({ ok: true, machine: 'm1', evict: [] })
    expect(placement.check(old, 'm2')).toBe('Replaces=old.service of a unit there')
    placement.removeMachine('m1')
    expect(placement.place(old)).toEqual({
      ok: false,
      reason: 'no machine fits old.service: Replaces=old.service of a unit there excludes 1',
    })
  })

  it('Replaces of an unplaced unit places by the usual ranking, evicting nothing', () => {
    const placement = placementWith([machine('m1'), machine('m2')])
    placement.assign(testUnit('busy.service'), 'm1')
    const next = testUnit('new.service', { fleet: 'Replaces=old.service' })
    expect(placement.place(next)).toEqual({ ok: true, machine: 'm2', evict: [] })
  })

  it('Global units: listed by globalMachines, never placed, counted per machine', () => {
    const placement = placementWith([
      machine('m1', { role: 'edge' }),
      machine('m2', { role: 'edge' }),
      machine('m3', { role: 'core' }),
    ])
    placement.assign(testUnit('x.service'), 'm2')
    const global = testUnit('g.service', {
      fleet: 'Global=true\nMachineMetadata=role=edge\nConflicts=x.service',
    })
    expect(placement.globalMachines(global)).toEqual(['m1'])
    expect(placement.place(global).ok).toBe(false)
    placement.assign(global, 'm1')
    expect(placement.globalMachines(global)).toEqual(['m1'])
    expect(placement.load('m1')).toBe(1)
    expect([...placement.unitsOn('m1')]).toEqual(['g.service'])
    expect(placement.machineOf('g.service')).toBeUndefined()
    // The reverse direction: a Global unit stays off machines whose units conflict with it.
    placement.assign(testUnit('y.service', { fleet: 'Conflicts=g.service' }), 'm1')
    expect(placement.globalMachines(global)).toEqual([])
  })
})

describe('incremental counts', () => {
  const topology = ['region', 'zone', 'machine']

  it('removeMachine returns its units (Global included), and the counts fall', () => {
    const placement = placementWith(testGrid(1, 3, 1))
    placeAll(placement, testInstances('web', 6))
    placement.assign(testUnit('g.service', { fleet: 'Global=true' }), 'r0-z0-m0')
    expect(placement.removeMachine('r0-z0-m0')).toEqual(['g.service', 'web@1.service', 'web@4.service'])
    expect(zoneCounts(placement, 'web@.service', topology, 1)).toEqual({ 'r0/r0-z1': 2, 'r0/r0-z2': 2 })
    expect(placement.machineOf('web@1.service')).toBeUndefined()
    expect(placement.load('r0-z0-m0')).toBe(0)
    expect(placement.hasMachine('r0-z0-m0')).toBe(false)
    expect(placeAll(placement, [testInstances('web', 1)[0]!])).toEqual(['r0-z1-m0'])
  })

  it('assign moves an instance and unassign forgets it; counts follow', () => {
    const placement = placementWith(testGrid(1, 2, 1))
    const [one, two] = testInstances('web', 2)
    placement.assign(one!, 'r0-z0-m0')
    placement.assign(two!, 'r0-z0-m0')
    expect(zoneCounts(placement, 'web@.service', topology, 1)).toEqual({ 'r0/r0-z0': 2, 'r0/r0-z1': 0 })
    placement.assign(two!, 'r0-z1-m0')
    expect(zoneCounts(placement, 'web@.service', topology, 1)).toEqual({ 'r0/r0-z0': 1, 'r0/r0-z1': 1 })
    expect(placement.load('r0-z0-m0')).toBe(1)
    placement.unassign('web@1.service')
    placement.unassign('web@1.service')
    expect(zoneCounts(placement, 'web@.service', topology, 1)).toEqual({ 'r0/r0-z0': 0, 'r0/r0-z1': 1 })
    expect(placement.assignments).toBe(1)
  })

  it('new metadata moves a machine to its new domains with its units; check() then says why', () => {
    const placement = placementWith([
      machine('m1', { zone: 'a', disk: 'ssd' }),
      machine('m2', { zone: 'b', disk: 'ssd' }),
    ])
    const [one] = testInstances('web', 1, {
      fleet: 'MachineMetadata=disk=ssd',
      cairn: 'Topology=zone,machine',
    })
    placement.assign(one!, 'm1')
    placement.upsertMachine(machine('m1', { zone: 'b', disk: 'hdd' }))
    expect(zoneCounts(placement, 'web@.service', ['zone', 'machine'], 0)).toEqual({ b: 1 })
    expect(placement.check(one!, 'm1')).toBe('MachineMetadata="disk=ssd"')
    expect(placement.check(one!, 'm2')).toBeUndefined()
  })

  it('check() ignores the unit itself, counts hard Caps, and does not re-judge skew', () => {
    const placement = placementWith(testGrid(1, 2, 1))
    const cairn = 'Topology=zone,machine\nCap=machine:1:hard\nMaxSkew=zone:1:hard'
    const [one, two, three] = testInstances('web', 3, { cairn })
    placement.assign(one!, 'r0-z0-m0')
    expect(placement.check(one!, 'r0-z0-m0')).toBeUndefined()
    placement.assign(two!, 'r0-z0-m0')
    expect(placement.check(one!, 'r0-z0-m0')).toBe('Cap=machine:1:hard')
    placement.unassign('web@2.service')
    placement.assign(three!, 'r0-z1-m0')
    placement.upsertMachine({ id: 'r0-z2-m0', metadata: { region: 'r0', zone: 'r0-z2' } })
    placement.upsertMachine({ id: 'r0-z3-m0', metadata: { region: 'r0', zone: 'r0-z3' } })
    expect(placement.check(one!, 'r0-z0-m0')).toBeUndefined()
  })

  it('place() of an assigned unit ranks as if it were not there, and changes nothing', () => {
    const placement = placementWith([machine('m1'), machine('m2')])
    const web = testUnit('web@1.service', { fleet: 'Conflicts=web@*.service' })
    placement.assign(web, 'm2')
    placement.assign(testUnit('x.service'), 'm1')
    expect(placement.place(web)).toEqual({ ok: true, machine: 'm2', evict: [] })
    expect(placement.load('m2')).toBe(1)
    expect(placement.machineOf('web@1.service')).toBe('m2')
  })

  it('answers do not depend on the order machines were added in', () => {
    const machines = testGrid(2, 2, 3)
    const units = [
      ...testInstances('web', 14, { cairn: 'MaxSkew=zone:1:hard\nCap=machine:2:soft' }),
      testUnit('db.service', { fleet: 'Conflicts=web@1*.service' }),
    ]
    const forward = placeAll(placementWith(machines), units)
    const backward = placeAll(placementWith([...machines].reverse()), units)
    expect(backward).toEqual(forward)
  })

  it('no machines, and Global units, are refused with a reason', () => {
    const placement = new Placement()
    expect(placement.place(testUnit('a.service'))).toEqual({ ok: false, reason: 'no machines' })
    placement.upsertMachine(machine('m1'))
    const refused = placement.place(testUnit('g.service', { fleet: 'Global=true' }))
    expect(refused.ok ? '' : refused.reason).toMatch(/^Global=true/)
  })

  it('at machinesMax place() still answers, and one more machine is a PlacementLimitError with code PLACEMENT_LIMIT', () => {
    const placement = new Placement()
    for (let i = 0; i < placementLimits.machinesMax; i++) placement.upsertMachine(machine(`m${i}`))
    placement.upsertMachine(machine('m0', { zone: 'z1' })) // a known machine's new metadata is no new slot
    expect(placement.place(testUnit('a.service')).ok).toBe(true)
    const extra = (): void => placement.upsertMachine(machine('one-too-many'))
    expect(extra).toThrow(PlacementLimitError)
    expect(extra).toThrow(expect.objectContaining({ code: 'PLACEMENT_LIMIT', limit: 'machinesMax' }))
  })

  it('caches past their limits drop the oldest entry and rebuild it when asked again', () => {
    const placement = placementWith(testGrid(1, 2, 1))
    // Conflicts globs: more idle ones than idlePatternsMax; the first is dropped, then rebuilt.
    const globs = placementLimits.idlePatternsMax + 10
    for (let i = 0; i < globs; i++)
      placement.place(testUnit(`u-${i}.service`, { fleet: `Conflicts=v-${i}.service` }))
    placement.assign(testUnit('v-0.service'), 'r0-z0-m0')
    expect(placeAll(placement, [testUnit('u-0.service', { fleet: 'Conflicts=v-0.service' })])).toEqual([
      'r0-z1-m0',
    ])
    // Idle templates past idleTemplatesMax: the oldest's counts are rebuilt from its instances.
    placement.assign(testUnit('t0@1.service'), 'r0-z1-m0')
    placement.unassign('t0@1.service')
    for (let i = 1; i <= placementLimits.idleTemplatesMax + 10; i++)
      placement.place(testUnit(`t${i}@1.service`))
    placement.assign(testUnit('t0@2.service'), 'r0-z0-m0')
    expect(zoneCounts(placement, 't0@.service', ['zone'], 0)).toEqual({ 'r0-z0': 1, 'r0-z1': 0 })
    // One template over more topologies than templateTopologiesMax: the oldest view is rebuilt.
    const topologies = [
      ['region'],
      ['zone'],
      ['region', 'zone'],
      ['zone', 'machine'],
      ['machine'],
      ['region'],
    ]
    for (const topology of topologies) {
      expect(placement.spreadCounts('t0@.service', topology).at(-1)!.size).toBeGreaterThan(0)
    }
    expect(zoneCounts(placement, 't0@.service', ['region'], 0)).toEqual({ r0: 1 })
  })
})
