/**
 * The Conflicts= and Replaces= indexes of the placement: for every glob in use, on which machines
 * sit units whose name it matches (`matches`, the forward direction) and units that carry it
 * (`holders`, the reverse direction: a unit is kept off a machine whose units conflict with it).
 *
 * A glob is indexed from the first time an assigned unit carries it or place() asks about it; its
 * counts then follow every assign and unassign, so no placement scans the assigned units. The
 * cost of one assignment is the globs whose literal prefix (the text before the first `*?[\`) is a
 * prefix of the unit's name, found by one map lookup per distinct prefix length in use.
 *
 * Invariants:
 * - For an indexed glob g and a machine slot s: g.matches.get(s) is the number of assignments on s
 *   whose name g matches; g.holders.get(s) the number of assignments on s whose unit carries g (a
 *   unit's Conflicts are taken once each). Zero counts are deleted from the maps.
 * - g.refs is the sum of g.holders; a glob with refs 0 is idle, and at most idlePatternsMax idle
 *   globs are kept (the oldest is dropped; it is indexed again, by one scan, when next needed).
 * - replacedBy.get(name).get(s) is the number of assignments on s whose unit Replaces `name`.
 */
import { assertPlacement, placementLimits } from './placement-limits.ts'
import { compileGlob, globMatches, type UnitGlob } from './unit-glob.ts'

export interface PatternEntry {
  readonly pattern: string
  readonly glob: UnitGlob
  readonly prefix: string
  readonly matches: Map<number, number>
  readonly holders: Map<number, number>
  refs: number
  /** For reasons: `Conflicts=<glob>`, and `Conflicts=<glob> of a unit there`. */
  readonly label: string
  readonly reverseLabel: string
}

/** The slots a unit name is assigned on, for indexing a new glob. */
export type SlotsOf = (name: string) => Iterable<number>

/**
 * The bucket a name is kept in for indexing new globs: the name up to its first separator
 * (`web@`, `db-`). A glob's prefix finds its bucket the same way.
 */
export function nameStem(name: string): string | undefined {
  const at = name.search(/[@\-._:]/)
  return at < 0 ? undefined : name.slice(0, at + 1)
}

/** The literal text a glob's matches all start with. */
export function literalPrefix(pattern: string): string {
  const at = pattern.search(/[*?[\\]/)
  return at < 0 ? pattern : pattern.slice(0, at)
}

function bump(map: Map<number, number>, slot: number, delta: number): void {
  const next = (map.get(slot) ?? 0) + delta
  if (next === 0) map.delete(slot)
  else map.set(slot, next)
}

export class ConflictIndex {
  readonly #entries = new Map<string, PatternEntry>()
  readonly #byPrefix = new Map<string, PatternEntry[]>()
  /** Distinct prefix lengths in #byPrefix, with how many entries have each. */
  readonly #prefixLengths = new Map<number, number>()
  /** Entries with refs 0, oldest first. */
  readonly #idle = new Set<PatternEntry>()
  readonly #replacedBy = new Map<string, Map<number, number>>()
  /** Assigned names by nameStem, and how many assignments each name has. */
  readonly #byStem = new Map<string, Set<string>>()
  readonly #names = new Map<string, number>()
  readonly #slotsOf: SlotsOf

  constructor(slotsOf: SlotsOf) {
    this.#slotsOf = slotsOf
  }

  /** The indexed entry of a glob, indexing it (one scan of the assignments) if needed. */
  entry(pattern: string): PatternEntry {
    const known = this.#entries.get(pattern)
    if (known !== undefined) return known
    const glob = compileGlob(pattern)
    const entry: PatternEntry = {
      pattern,
      glob,
      prefix: literalPrefix(pattern),
      matches: new Map(),
      holders: new Map(),
      refs: 0,
      label: `Conflicts=${pattern}`,
      reverseLabel: `Conflicts=${pattern} of a unit there`,
    }
    for (const name of this.#candidates(entry.prefix)) {
      if (!name.startsWith(entry.prefix) || !globMatches(glob, name)) continue
      for (const slot of this.#slotsOf(name)) bump(entry.matches, slot, 1)
    }
    this.#entries.set(pattern, entry)
    const list = this.#byPrefix.get(entry.prefix)
    if (list === undefined) this.#byPrefix.set(entry.prefix, [entry])
    else list.push(entry)
    this.#prefixLengths.set(entry.prefix.length, (this.#prefixLengths.get(entry.prefix.length) ?? 0) + 1)
    this.#idle.add(entry)
    this.#trimIdle()
    return entry
  }

  /** Assigned names that may start with `prefix`: its stem's bucket, or every bucket it prefixes. */
  *#candidates(prefix: string): Iterable<string> {
    const stem = nameStem(prefix)
    if (stem !== undefined) {
      yield* this.#byStem.get(stem) ?? []
      return
    }
    for (const [key, names] of this.#byStem) if (key.startsWith(prefix)) yield* names
  }

  /** The indexed globs that match `name` (only globs some unit carries, or place() asked about). */
  matching(name: string): PatternEntry[] {
    const found: PatternEntry[] = []
    for (const length of this.#prefixLengths.keys()) {
      if (length > name.length) continue
      const list = this.#byPrefix.get(name.slice(0, length))
      if (list === undefined) continue
      for (const entry of list) if (globMatches(entry.glob, name)) found.push(entry)
    }
    return found
  }

  replacedBy(name: string): ReadonlyMap<number, number> | undefined {
    return this.#replacedBy.get(name)
  }

  /**
   * Records an assignment of `name` on `slot`, carrying `conflicts` and `replaces`; delta -1
   * removes it. Call with +1 before slotsOf(name) shows the slot, -1 after it no longer does.
   */
  count(
    name: string,
    conflicts: readonly string[],
    replaces: readonly string[],
    slot: number,
    delta: 1 | -1,
  ) {
    for (const pattern of new Set(conflicts)) {
      const entry = delta > 0 ? this.entry(pattern) : this.#entries.get(pattern)
      assertPlacement(entry !== undefined, `a held glob is not indexed: ${pattern}`)
      bump(entry.holders, slot, delta)
      entry.refs += delta
      if (entry.refs === 0) this.#idle.add(entry)
      else this.#idle.delete(entry)
    }
    for (const entry of this.matching(name)) bump(entry.matches, slot, delta)
    this.#countName(name, delta)
    for (const replaced of new Set(replaces)) {
      let map = this.#replacedBy.get(replaced)
      if (map === undefined) this.#replacedBy.set(replaced, (map = new Map()))
      bump(map, slot, delta)
      if (map.size === 0) this.#replacedBy.delete(replaced)
    }
    this.#trimIdle()
  }

  #countName(name: string, delta: 1 | -1): void {
    const n = (this.#names.get(name) ?? 0) + delta
    const stem = nameStem(name) ?? name
    if (n > 0) {
      this.#names.set(name, n)
      if (n === 1) {
        let bucket = this.#byStem.get(stem)
        if (bucket === undefined) this.#byStem.set(stem, (bucket = new Set()))
        bucket.add(name)
      }
      return
    }
    this.#names.delete(name)
    const bucket = this.#byStem.get(stem)!
    bucket.delete(name)
    if (bucket.size === 0) this.#byStem.delete(stem)
  }

  #trimIdle(): void {
    while (this.#idle.size > placementLimits.idlePatternsMax) {
      const oldest = this.#idle.values().next().value as PatternEntry
      this.#idle.delete(oldest)
      this.#drop(oldest)
    }
  }

  #drop(entry: PatternEntry): void {
    this.#entries.delete(entry.pattern)
    const list = this.#byPrefix.get(entry.prefix)!
    list.splice(list.indexOf(entry), 1)
    if (list.length === 0) this.#byPrefix.delete(entry.prefix)
    const n = this.#prefixLengths.get(entry.prefix.length)! - 1
    if (n === 0) this.#prefixLengths.delete(entry.prefix.length)
    else this.#prefixLengths.set(entry.prefix.length, n)
  }
}
