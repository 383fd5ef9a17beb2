/**
 * The domain tree of one spread topology (`region,zone,machine`) over the current machines, and the
 * per-template instance counts kept against it.
 *
 * A domain at level i is named by its path: the values of levels 0..i on a machine. Zone `a` in
 * region `eu` and zone `a` in region `us` are two domains. The `machine` level's value is the
 * machine id, so each machine is its own domain there. A machine without a level's metadata key
 * counts in the domain of the empty value at that level (Swarm's null group): it is neither left
 * out of the spread nor given a domain of its own.
 *
 * Invariants:
 * - size[i][d] is the number of machines whose path passes through domain d of level i; a domain
 *   exists (has an index) exactly while size > 0. Emptied indexes are reused, so the arrays are
 *   bounded by the most domains ever present at once.
 * - children[i][d] lists the domains of level i+1 under d; for the last level, the machine slots.
 * - domainOf[i][slot] is the domain of level i of the machine in `slot`, -1 for a free slot.
 * - A TemplateView's counts[i][d] is the number of the template's assigned instances on machines
 *   under d; hist[i][c] the number of existing domains of level i whose count is c; min[i] the
 *   smallest c with hist[i][c] > 0 (0 when the level has no domain).
 */
import { assertPlacement } from './placement-limits.ts'
import { machineLevel } from './unit-values.ts'

/** The key of a topology: its levels, widest first, comma-joined (as `Topology=` writes them). */
export function topologyKey(levels: readonly string[]): string {
  return levels.join(',')
}

/** The value a machine has at `level`; the empty value when it lacks the key. */
export function levelValue(level: string, id: string, metadata: Readonly<Record<string, string>>): string {
  if (level === machineLevel) return id
  return Object.hasOwn(metadata, level) ? (metadata[level] as string) : ''
}

export class TopologyIndex {
  readonly key: string
  readonly levels: readonly string[]
  /** Per level: domain index by `parent index \0 value`. */
  readonly #byPath: Array<Map<string, number>>
  readonly #path: string[][]
  readonly #free: number[][]
  readonly size: number[][]
  readonly label: string[][]
  readonly children: number[][][]
  readonly domainOf: number[][]
  /** The views counting against this tree, told when a domain appears or empties. */
  readonly views = new Set<TemplateView>()

  constructor(levels: readonly string[]) {
    assertPlacement(levels.length > 0, 'a topology has at least one level')
    this.key = topologyKey(levels)
    this.levels = levels
    this.#byPath = levels.map(() => new Map())
    this.#path = levels.map(() => [])
    this.#free = levels.map(() => [])
    this.size = levels.map(() => [])
    this.label = levels.map(() => [])
    this.children = levels.map(() => [])
    this.domainOf = levels.map(() => [])
  }

  /** Domains of level 0 that exist. */
  roots(): number[] {
    const roots: number[] = []
    const size = this.size[0]!
    for (let d = 0; d < size.length; d++) if (size[d]! > 0) roots.push(d)
    return roots
  }

  /** Puts the machine in `slot` into the tree. */
  add(slot: number, id: string, metadata: Readonly<Record<string, string>>): void {
    let parent = -1
    let parentLabel = ''
    for (let i = 0; i < this.levels.length; i++) {
      const value = levelValue(this.levels[i]!, id, metadata)
      const path = `${parent}\u0000${value}`
      let d = this.#byPath[i]!.get(path)
      if (d === undefined) {
        d = this.#create(i, path, i === 0 ? value : `${parentLabel}/${value}`)
        if (i > 0) this.children[i - 1]![parent]!.push(d)
      }
      this.size[i]![d]!++
      this.domainOf[i]![slot] = d
      parent = d
      parentLabel = this.label[i]![d]!
    }
    this.children[this.levels.length - 1]![parent]!.push(slot)
  }

  /** Takes the machine in `slot` out of the tree. Its units must already be unassigned. */
  remove(slot: number): void {
    const last = this.levels.length - 1
    removeItem(this.children[last]![this.domainOf[last]![slot]!]!, slot)
    for (let i = last; i >= 0; i--) {
      const d = this.domainOf[i]![slot]!
      assertPlacement(d >= 0, 'removing a machine that is not in the topology')
      this.domainOf[i]![slot] = -1
      if (--this.size[i]![d]! > 0) continue
      for (const view of this.views) view.domainEmptied(i, d)
      this.#byPath[i]!.delete(this.#path[i]![d]!)
      if (i > 0) removeItem(this.children[i - 1]![this.domainOf[i - 1]![slot]!]!, d)
      this.#free[i]!.push(d)
    }
  }

  #create(level: number, path: string, label: string): number {
    const d = this.#free[level]!.pop() ?? this.size[level]!.length
    this.#byPath[level]!.set(path, d)
    this.#path[level]![d] = path
    this.size[level]![d] = 0
    this.label[level]![d] = label
    this.children[level]![d] = []
    for (const view of this.views) view.domainCreated(level, d)
    return d
  }
}

function removeItem(list: number[], item: number): void {
  const at = list.indexOf(item)
  assertPlacement(at >= 0, 'a domain child is missing')
  list.splice(at, 1)
}

/** One template's instance counts per domain of one topology, with each level's minimum. */
export class TemplateView {
  readonly topology: TopologyIndex
  readonly counts: number[][]
  readonly #hist: number[][]
  readonly #min: number[]

  constructor(topology: TopologyIndex) {
    this.topology = topology
    this.counts = topology.levels.map(() => [])
    this.#hist = topology.levels.map(() => [0])
    this.#min = topology.levels.map(() => 0)
    for (let i = 0; i < topology.levels.length; i++) {
      const size = topology.size[i]!
      for (let d = 0; d < size.length; d++) if (size[d]! > 0) this.domainCreated(i, d)
    }
  }

  /** The smallest count over every existing domain of `level` (0 when there is none). */
  min(level: number): number {
    return this.#min[level]!
  }

  /** An instance was assigned to (+1) or unassigned from (-1) the machine in `slot`. */
  move(slot: number, delta: 1 | -1): void {
    for (let i = 0; i < this.counts.length; i++) {
      const d = this.topology.domainOf[i]![slot]!
      assertPlacement(d >= 0, 'counting an instance on a machine outside the topology')
      const counts = this.counts[i]!
      const hist = this.#hist[i]!
      const c = counts[d]!
      const next = c + delta
      assertPlacement(next >= 0, 'a domain count below zero')
      counts[d] = next
      hist[c]!--
      hist[next] = (hist[next] ?? 0) + 1
      if (delta < 0 && next < this.#min[i]!) this.#min[i] = next
      if (delta > 0 && c === this.#min[i]! && hist[c] === 0) this.#min[i] = next
    }
  }

  domainCreated(level: number, d: number): void {
    this.counts[level]![d] = 0
    this.#hist[level]![0]!++
    this.#min[level] = 0
  }

  domainEmptied(level: number, d: number): void {
    assertPlacement(this.counts[level]![d] === 0, 'a domain emptied while it holds instances')
    const hist = this.#hist[level]!
    hist[0]!--
    if (this.#min[level] !== 0 || hist[0]! > 0) return
    let c = 1
    while (c < hist.length && (hist[c] ?? 0) === 0) c++
    this.#min[level] = c < hist.length ? c : 0
  }
}
