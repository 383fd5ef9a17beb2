/**
 * How placement ranks and searches machines for one unit, given a PlaceContext the index built for
 * it (placement.ts): hard rules as a filter, then the ranking key
 *
 *   (soft rules broken, count in the domain at each topology level widest first, load, machine id)
 *
 * compared lexicographically, smallest first. Three searches share the rules and the key:
 * - scanBest: every candidate in turn (plain units, and short candidate lists: MachineID,
 *   MachineOf, Replaces).
 * - descend: template instances. Walks the domain tree widest level first, keeping only the domains
 *   with the lowest count that still hold a feasible machine (ties are searched together, a
 *   failing group gives way to the next count), and takes the least-loaded feasible machine below.
 *   This is the lexicographic minimum of the key without its first element; when that machine
 *   breaks no soft rule it is the overall minimum, else the caller falls back to scanBest.
 * - tally: why nothing fits, as the number of machines each hard rule excluded (the first rule a
 *   machine fails, in the order of `failure`).
 *
 * Invariants: pure over the context (no mutation of the index); deterministic (ties end at the
 * machine id, compared as strings); a returned slot passes every hard rule.
 */
import type { PatternEntry } from './placement-conflicts.ts'
import type { TemplateView, TopologyIndex } from './placement-topology.ts'

/** The machines as the search sees them. */
export interface MachineTable {
  /** By slot; '' for a free slot. */
  readonly ids: readonly string[]
  readonly load: readonly number[]
  /** Slots of every machine, by id ascending. */
  sorted(): readonly number[]
}

/** MachineID and MachineMetadata: which machines the unit may run on at all. */
export interface NodeFilter {
  /** Undefined: every machine. Else 1 at each eligible slot. */
  readonly flags: Uint8Array | undefined
  /** Eligible slots (undefined with `flags`). */
  readonly slots: readonly number[] | undefined
  /** The rule an ineligible slot fails, for reasons. */
  why(slot: number): string
}

/** One topology level's spread rules for the unit. Infinity: no such rule. */
export interface LevelRule {
  readonly level: number
  readonly view: TemplateView
  readonly counts: readonly number[]
  readonly domainOf: readonly number[]
  readonly hardCap: number
  readonly softCap: number
  readonly hardSkew: number
  readonly softSkew: number
  readonly capLabel: string
  readonly skewLabel: string
  /** The domain holding the unit itself (check() ignores it), -1 for none. */
  readonly selfDomain: number
  /** Whether MaxSkew is checked (place: yes; check: no, skew is a placement-time rule). */
  readonly skew: boolean
  /** The smallest count over eligible domains; computed on first use (-1 until then). */
  min: number
}

export interface PlaceContext {
  readonly machines: MachineTable
  readonly filter: NodeFilter
  readonly topology: TopologyIndex | undefined
  readonly levels: readonly LevelRule[]
  /** The unit's own Conflicts globs, and whether each matches the unit's own name. */
  readonly forward: readonly PatternEntry[]
  readonly forwardSelf: readonly boolean[]
  /** Indexed globs matching the unit's name (other units' Conflicts may hold them). */
  readonly reverse: readonly PatternEntry[]
  readonly replacedBy: ReadonlyMap<number, number> | undefined
  readonly unitName: string
  /**
   * Where the unit itself is assigned, with the Conflicts it was assigned with (check and
   * globalMachines ignore the unit's own counts; place() unassigns it for the time of the call).
   */
  readonly self: ReadonlyMap<number, readonly string[]>
}

function eligible(ctx: PlaceContext, slot: number): boolean {
  const flags = ctx.filter.flags
  return flags === undefined ? ctx.machines.ids[slot] !== '' : flags[slot] === 1
}

/** The smallest count over the domains of the level that hold an eligible machine. */
export function levelMin(ctx: PlaceContext, rule: LevelRule): number {
  if (rule.min >= 0) return rule.min
  const slots = ctx.filter.slots
  if (slots === undefined) {
    rule.min = rule.view.min(rule.level)
    return rule.min
  }
  let min = Number.POSITIVE_INFINITY
  for (const slot of slots) min = Math.min(min, rule.counts[rule.domainOf[slot]!]!)
  rule.min = Number.isFinite(min) ? min : 0
  return rule.min
}

function countAt(rule: LevelRule, domain: number): number {
  return rule.counts[domain]! - (domain === rule.selfDomain ? 1 : 0)
}

/** The first hard rule of the level that domain `d` fails, if any. */
export function domainFailure(ctx: PlaceContext, rule: LevelRule, d: number): string | undefined {
  const after = countAt(rule, d) + 1
  if (after > rule.hardCap) return rule.capLabel
  if (rule.skew && rule.hardSkew !== Number.POSITIVE_INFINITY && after - levelMin(ctx, rule) > rule.hardSkew)
    return rule.skewLabel
  return undefined
}

/** The first conflict rule that keeps the unit off `slot`, if any. */
function conflictFailure(ctx: PlaceContext, slot: number): string | undefined {
  const self = ctx.self.size === 0 ? undefined : ctx.self.get(slot)
  for (let i = 0; i < ctx.forward.length; i++) {
    const entry = ctx.forward[i]!
    const own = self !== undefined && ctx.forwardSelf[i] ? 1 : 0
    if ((entry.matches.get(slot) ?? 0) - own > 0) return entry.label
  }
  for (const entry of ctx.reverse) {
    const own = self?.includes(entry.pattern) ? 1 : 0
    if ((entry.holders.get(slot) ?? 0) - own > 0) return entry.reverseLabel
  }
  if ((ctx.replacedBy?.get(slot) ?? 0) > 0) return `Replaces=${ctx.unitName} of a unit there`
  return undefined
}

/** The first hard rule the unit fails on `slot` (node filter, conflicts, caps, skews), if any. */
export function failure(ctx: PlaceContext, slot: number): string | undefined {
  if (!eligible(ctx, slot)) return ctx.filter.why(slot)
  const conflict = conflictFailure(ctx, slot)
  if (conflict !== undefined) return conflict
  for (const rule of ctx.levels) {
    const why = domainFailure(ctx, rule, rule.domainOf[slot]!)
    if (why !== undefined) return why
  }
  return undefined
}

/** Soft rules the unit would break on `slot`: Caps, then MaxSkews, one per level each. */
export function softBroken(ctx: PlaceContext, slot: number): number {
  let broken = 0
  for (const rule of ctx.levels) {
    const after = countAt(rule, rule.domainOf[slot]!) + 1
    if (after > rule.softCap) broken++
    if (rule.softSkew !== Number.POSITIVE_INFINITY && after - levelMin(ctx, rule) > rule.softSkew) broken++
  }
  return broken
}

/** Negative when `a` ranks before `b`. */
export function compareSlots(ctx: PlaceContext, a: number, b: number, withSoft: boolean): number {
  if (withSoft && ctx.levels.length > 0) {
    const soft = softBroken(ctx, a) - softBroken(ctx, b)
    if (soft !== 0) return soft
  }
  for (const rule of ctx.levels) {
    const diff = countAt(rule, rule.domainOf[a]!) - countAt(rule, rule.domainOf[b]!)
    if (diff !== 0) return diff
  }
  const load = ctx.machines.load[a]! - ctx.machines.load[b]!
  if (load !== 0) return load
  const ia = ctx.machines.ids[a]!
  const ib = ctx.machines.ids[b]!
  return ia < ib ? -1 : ia > ib ? 1 : 0
}

/** The ranking key of a feasible slot without the id: for comparing across index states. */
export function rankKey(ctx: PlaceContext, slot: number): number[] {
  const key = [softBroken(ctx, slot)]
  for (const rule of ctx.levels) key.push(countAt(rule, rule.domainOf[slot]!))
  key.push(ctx.machines.load[slot]!)
  return key
}

/** The best feasible slot among `slots`, -1 when none is feasible. */
export function scanBest(ctx: PlaceContext, slots: Iterable<number>): number {
  let best = -1
  for (const slot of slots) {
    if (failure(ctx, slot) !== undefined) continue
    if (best < 0 || compareSlots(ctx, slot, best, true) < 0) best = slot
  }
  return best
}

/** Whether `a` ranks before `best` on (count, load, id), `best` < 0 meaning none yet. */
function before(ctx: PlaceContext, a: number, countA: number, best: number, countBest: number): boolean {
  if (best < 0) return true
  if (countA !== countBest) return countA < countBest
  const { load, ids } = ctx.machines
  if (load[a] !== load[best]) return load[a]! < load[best]!
  return ids[a]! < ids[best]!
}

/**
 * The last level in one pass: the minimum of (count, load, id) over feasible machines under
 * `domains`, checking a machine's conflicts only when it would win. -1 when none is feasible.
 */
function lastLevel(ctx: PlaceContext, domains: readonly number[]): number {
  const level = ctx.levels.length - 1
  const rule = ctx.levels[level]!
  const children = ctx.topology!.children[level]!
  let best = -1
  let bestCount = 0
  for (const d of domains) {
    const count = countAt(rule, d)
    if (best >= 0 && count > bestCount) continue
    if (domainFailure(ctx, rule, d) !== undefined) continue
    for (const slot of children[d]!) {
      if (!before(ctx, slot, count, best, bestCount)) continue
      if (!eligible(ctx, slot) || conflictFailure(ctx, slot) !== undefined) continue
      best = slot
      bestCount = count
    }
  }
  return best
}

/**
 * The lexicographic minimum of (counts widest first, load, id) over feasible machines under
 * `domains` of `level`; -1 when none is feasible. Domain-level hard rules prune whole subtrees;
 * the domains of the lowest count are searched together, and give way to the next count only
 * when none of them holds a feasible machine.
 */
function descendFrom(ctx: PlaceContext, level: number, domains: readonly number[]): number {
  if (level === ctx.levels.length - 1) return lastLevel(ctx, domains)
  const rule = ctx.levels[level]!
  const children = ctx.topology!.children[level]!
  let remaining = domains.filter((d) => domainFailure(ctx, rule, d) === undefined)
  while (remaining.length > 0) {
    let min = Number.POSITIVE_INFINITY
    for (const d of remaining) min = Math.min(min, countAt(rule, d))
    const below: number[] = []
    const rest: number[] = []
    for (const d of remaining) {
      if (countAt(rule, d) === min) for (const c of children[d]!) below.push(c)
      else rest.push(d)
    }
    const found = descendFrom(ctx, level + 1, below)
    if (found >= 0) return found
    remaining = rest
  }
  return -1
}

/** Best feasible machine for a unit with spread levels, by descent; see the header. */
export function descend(ctx: PlaceContext): number {
  if (ctx.topology === undefined || ctx.levels.length === 0) return scanBest(ctx, ctx.machines.sorted())
  const found = descendFrom(ctx, 0, ctx.topology.roots())
  if (found < 0 || softBroken(ctx, found) === 0) return found
  return scanBest(ctx, ctx.machines.sorted())
}

/** `<rule> excludes n; ...` over `slots`, rules in first-seen order. */
export function tally(ctx: PlaceContext, slots: Iterable<number>): string {
  const counts = new Map<string, number>()
  for (const slot of slots) {
    const why = failure(ctx, slot) ?? 'nothing (a bug)'
    counts.set(why, (counts.get(why) ?? 0) + 1)
  }
  return [...counts].map(([rule, n]) => `${rule} excludes ${n}`).join('; ')
}
