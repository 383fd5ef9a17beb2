/**
 * bench/scheduler-placement: the scheduler's pure placement (src/scheduler/placement.ts) at scale.
 *
 * Places and records `--units` units on `--machines` simulated machines spread over 5 regions x 4
 * zones (half of them `disk=ssd`), one place() + assign() per unit, as the engine does. The mix:
 * 90% are instances of templates with 1,000 instances each, started template by template, in four
 * spread styles (default soft spread; MaxSkew=zone:1:hard; MaxSkew=region:1:hard zone:1:hard with
 * Cap=machine:2:hard; MachineMetadata=disk=ssd with Cap=zone:100:soft); 10% are plain units in
 * anti-affinity groups of 10 (Conflicts=db-<g>-*.service), every third also pinned to a region.
 *
 *   npm run bench:placement
 *   npx tsx bench/scheduler-placement.ts --machines 1000 --units 50000 [--search scan]
 *
 * Goals it is measured against: issue 6 asks for well under 10 s for 50,000 units on 1,000
 * machines; Docker Swarm's published scale test placed 50,000 containers on 1,000 nodes.
 */
import { parseArgs } from 'node:util'
import { metadataMatches } from '../src/scheduler/metadata-rule.ts'
import { Placement, type PlacementMachine, type PlacementUnit } from '../src/scheduler/placement.ts'
import { checkUnitTemplate, parseUnitFile } from '../src/scheduler/unit-file.ts'

const regions = 5
const zonesPerRegion = 4
const instancesPerTemplate = 1_000

const styles = [
  '',
  'MaxSkew=zone:1:hard',
  'MaxSkew=region:1:hard zone:1:hard\nCap=machine:2:hard',
  'Cap=zone:100:soft',
] as const

function machinesFor(count: number): PlacementMachine[] {
  return Array.from({ length: count }, (_, i) => {
    const zone = i % (regions * zonesPerRegion)
    const region = Math.floor(zone / zonesPerRegion)
    return {
      id: `m${String(i).padStart(5, '0')}`,
      metadata: {
        region: `r${region}`,
        zone: `r${region}-z${zone % zonesPerRegion}`,
        disk: i % 2 ? 'hdd' : 'ssd',
      },
    }
  })
}

function templateUnits(template: number, count: number): PlacementUnit[] {
  const style = template % styles.length
  const name = `t${template}@.service`
  const fleet = style === 3 ? '[X-Fleet]\nMachineMetadata=disk=ssd\n' : ''
  const text = `[Service]\nExecStart=/bin/true\n${fleet}[X-Cairn]\nTopology=region,zone,machine\n${styles[style]}\n`
  const sample = checkUnitTemplate(text, { name })
  return Array.from({ length: count }, (_, i) => ({
    name: `t${template}@${i + 1}.service`,
    template: name,
    fleet: sample.fleet,
    spread: sample.spread,
  }))
}

function plainUnits(count: number): PlacementUnit[] {
  return Array.from({ length: count }, (_, i) => {
    const group = Math.floor(i / 10)
    const name = `db-${group}-${i % 10}.service`
    const pin = group % 3 === 0 ? `MachineMetadata=region=r${group % regions}\n` : ''
    const text = `[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=db-${group}-*.service\n${pin}`
    const parsed = parseUnitFile(text, { name })
    return { name, template: undefined, fleet: parsed.fleet, spread: undefined }
  })
}

function workload(units: number): PlacementUnit[] {
  const plain = Math.round(units * 0.1)
  const all: PlacementUnit[] = []
  let template = 0
  while (all.length < units - plain) {
    all.push(...templateUnits(template++, Math.min(instancesPerTemplate, units - plain - all.length)))
  }
  // Plain units arrive spread through the run, one after every ninth instance.
  const plains = plainUnits(plain)
  const mixed: PlacementUnit[] = []
  for (const [i, unit] of all.entries()) {
    mixed.push(unit)
    if (i % 9 === 8 && plains.length > 0) mixed.push(plains.shift()!)
  }
  mixed.push(...plains)
  return mixed
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

/** Max skew per level of each template style: max count minus min over eligible domains. */
function skewSummary(placement: Placement, units: readonly PlacementUnit[], machines: PlacementMachine[]) {
  const worst = styles.map(() => [0, 0, 0])
  const seen = new Set<string>()
  for (const unit of units) {
    if (unit.template === undefined || seen.has(unit.template)) continue
    seen.add(unit.template)
    const style = Number(unit.template.slice(1, unit.template.indexOf('@'))) % styles.length
    const eligible = machines.filter((m) => metadataMatches(unit.fleet.machineMetadata, m.metadata))
    const labels = [
      new Set(eligible.map((m) => m.metadata.region!)),
      new Set(eligible.map((m) => m.metadata.zone!.replace(/^(r\d+)-/, '$1/$1-'))),
      new Set(eligible.map((m) => `${m.metadata.region}/${m.metadata.zone}/${m.id}`)),
    ]
    const counts = placement.spreadCounts(unit.template, ['region', 'zone', 'machine'])
    for (let level = 0; level < 3; level++) {
      const values = [...counts[level]!].filter(([label]) => labels[level]!.has(label)).map(([, n]) => n)
      worst[style]![level] = Math.max(worst[style]![level]!, Math.max(...values) - Math.min(...values))
    }
  }
  return worst
}

function main(): void {
  const { values } = parseArgs({
    options: {
      machines: { type: 'string', default: '1000' },
      units: { type: 'string', default: '50000' },
      search: { type: 'string', default: 'descent' },
    },
  })
  const machines = machinesFor(Number(values.machines))
  const units = workload(Number(values.units))
  const placement = new Placement({ search: values.search === 'scan' ? 'scan' : 'descent' })
  for (const m of machines) placement.upsertMachine(m)
  const perPlaceMs = new Float64Array(units.length)
  const unplaced = new Map<string, number>()
  const start = performance.now()
  for (const [i, unit] of units.entries()) {
    const t0 = performance.now()
    const result = placement.place(unit)
    perPlaceMs[i] = performance.now() - t0
    if (result.ok) placement.assign(unit, result.machine)
    else {
      const rule = result.reason.replace(/^no machine fits [^:]+: /, '').replace(/ excludes \d+/g, '')
      unplaced.set(rule, (unplaced.get(rule) ?? 0) + 1)
    }
  }
  const seconds = (performance.now() - start) / 1000
  perPlaceMs.sort()
  const loads = machines.map((m) => placement.load(m.id))
  console.log(`placement: ${units.length} units on ${machines.length} machines (${values.search})`)
  console.log(
    `  total ${seconds.toFixed(2)} s, ${Math.round(units.length / seconds)} units/s (place + assign)`,
  )
  console.log(
    `  place(): p50 ${(percentile(perPlaceMs, 0.5) * 1000).toFixed(1)} µs, ` +
      `p99 ${(percentile(perPlaceMs, 0.99) * 1000).toFixed(1)} µs, ` +
      `max ${(perPlaceMs[perPlaceMs.length - 1]! * 1000).toFixed(0)} µs`,
  )
  console.log(`  placed ${placement.assignments}, unplaced ${units.length - placement.assignments}`)
  for (const [rule, n] of unplaced) console.log(`    ${n} refused: ${rule}`)
  console.log(`  load per machine: min ${Math.min(...loads)}, max ${Math.max(...loads)}`)
  const skews = skewSummary(placement, units, machines)
  for (const [style, [region, zone, machine]] of skews.entries()) {
    const rules = styles[style]!.replace('\n', ' ') || 'default (every level 1:soft)'
    console.log(`  max skew region/zone/machine ${region}/${zone}/${machine}: ${rules}`)
  }
  console.log('  goal (issue 6): well under 10 s; Docker Swarm: 50,000 containers on 1,000 nodes')
}

main()
