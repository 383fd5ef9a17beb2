/**
 * Builders for the placement tests: units parsed from real unit file text (so the rules are the
 * parser's, not hand-made shapes), and machine grids over regions and zones.
 */
import type { PlacementMachine, PlacementUnit } from './placement.ts'
import { parseUnitFile } from './unit-file.ts'

export interface UnitLines {
  /** [X-Fleet] body, e.g. 'Conflicts=web@*.service'. */
  fleet?: string
  /** [X-Cairn] body, e.g. 'Topology=zone,machine\nMaxSkew=zone:1:hard'. */
  cairn?: string
}

/** A unit named `name` (plain or instance) with the given [X-Fleet] and [X-Cairn] bodies. */
export function testUnit(name: string, lines: UnitLines = {}): PlacementUnit {
  let text = '[Service]\nExecStart=/bin/true\n'
  if (lines.fleet !== undefined) text += `[X-Fleet]\n${lines.fleet}\n`
  if (lines.cairn !== undefined) text += `[X-Cairn]\n${lines.cairn}\n`
  const parsed = parseUnitFile(text, { name })
  const template = parsed.name.kind === 'instance' ? `${parsed.name.prefix}@.service` : undefined
  return { name, template, fleet: parsed.fleet, spread: parsed.spread }
}

/** `count` instances `<prefix>@1..count.service` of one template. */
export function testInstances(prefix: string, count: number, lines: UnitLines = {}): PlacementUnit[] {
  return Array.from({ length: count }, (_, i) => testUnit(`${prefix}@${i + 1}.service`, lines))
}

/**
 * Machines `r<R>-z<Z>-m<M>` with metadata region=r<R>, zone=r<R>-z<Z>, plus `extra(index)`.
 */
export function testGrid(
  regions: number,
  zonesPerRegion: number,
  machinesPerZone: number,
  extra: (index: number) => Record<string, string> = () => ({}),
): PlacementMachine[] {
  const machines: PlacementMachine[] = []
  for (let r = 0; r < regions; r++) {
    for (let z = 0; z < zonesPerRegion; z++) {
      for (let m = 0; m < machinesPerZone; m++) {
        const metadata = { region: `r${r}`, zone: `r${r}-z${z}`, ...extra(machines.length) }
        machines.push({ id: `r${r}-z${z}-m${m}`, metadata })
      }
    }
  }
  return machines
}
