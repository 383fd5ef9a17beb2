/**
 * One reconcile of the engine, as a pure plan: desired units and live machines in (the model),
 * the keyspace writes that make the assignments match out. No I/O and no clock (`nowMs` is given),
 * so a test drives it step by step. The engine (engine.ts) writes the plan fenced by its lease.
 *
 * Steps, in order:
 * 1. Every assignment that must go is deleted: its unit was destroyed or unloaded (inactive), its
 *    instance's template is gone, its machine is dead (its units are re-placed in step 3 of the
 *    same plan: failover), a Global unit's machine no longer matches, a MachineOf target moved
 *    (the unit follows it, as in fleet), or a non-Global unit somehow has a second machine.
 * 2. Assignments that stay are brought to the desired state and version. A plain unit, a Global
 *    unit or an instance that is not launched gets a new version at once; a template's launched
 *    instances are rolled (rolling update, below).
 * 3. Every desired unit without an assignment is placed (placement.ts): in natural name order,
 *    several passes so a MachineOf target placed later in a pass still takes its followers; a
 *    Replaces= eviction is re-placed in a later pass. A unit that fits nowhere gets an unplaced
 *    record with the reason (written only when the reason changes), deleted once it is placed.
 *    A Global unit is assigned to every machine placement.globalMachines() lists.
 *
 * Rolling update of a template T at version V (T's record; its instances run their assignment's
 * text): instances whose assignment is not at V are stale. At most `UpdateParallelism` updated
 * instances may be in flight (assigned V, not yet healthy); each free slot takes the next stale
 * instance in name order and rewrites its assignment in place (same machine: the runner stops the
 * old process and starts the new one). Healthy = the runner reports V active/running and, when the
 * unit declares a check, passing. Failed = it reports V failed or restarted, or is not healthy
 * within UpdateTimeoutSec: then T's record goes back to `previous` (a transaction guarded by T's
 * modRevision as well as the fence) and the rollout is marked rolled-back with the reason, after
 * which the updated instances are stale against the old version and go back at once. A rolled-back
 * rollout stays halted until a new version is submitted. The RolloutRecord says all of it.
 *
 * Invariants:
 * - Deletions come before puts in `ops`, so a unit moved to another machine is never assigned to
 *   two machines at any revision, however the ops are split into transactions.
 * - The plan changes the index only to record its own decisions (assign/unassign), in step with
 *   its ops.
 * - Deterministic: the same model, index and nowMs give the same plan.
 */
import type { Compare } from '../kv/mvcc.ts'
import type { PlacementIndex } from './engine-index.ts'
import type { SchedulerModel, Versioned } from './engine-model.ts'
import {
  type Assignment,
  assignKey,
  type RolloutRecord,
  rolloutKey,
  type UnitRecord,
  type UnitVersion,
  type UnplacedRecord,
  unitKey,
  unplacedKey,
} from './records.ts'

/** Placement passes per plan (MachineOf chains and Replaces evictions settle within them). */
export const placementPassesMax = 8

export type PlanOp = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string }

export interface GuardedWrite {
  compare: Compare[]
  ops: PlanOp[]
}

export interface Plan {
  /** Unguarded writes (the engine adds the fence), deletions first. */
  ops: PlanOp[]
  /** Writes with their own compares besides the fence (a template's rollback). */
  guarded: GuardedWrite[]
  /** When the plan must run again though nothing changed (a rollout's timeout); undefined: never. */
  wakeAtMs: number | undefined
  placed: number
  removed: number
  unplaced: number
}

export interface PlanContext {
  model: SchedulerModel
  index: PlacementIndex
  fence: number
  nowMs: number
  /** When each in-flight rolling update of an instance began (kept by the engine across plans). */
  updateStarted: Map<string, number>
}

interface Desired {
  state: 'loaded' | 'launched'
  version: UnitVersion
  template: Versioned<UnitRecord> | undefined
}

export function planReconcile(ctx: PlanContext): Plan {
  return new Planner(ctx).run()
}

class Planner {
  readonly #ctx: PlanContext
  readonly #deletes: PlanOp[] = []
  readonly #puts: PlanOp[] = []
  readonly #guarded: GuardedWrite[] = []
  #wakeAtMs: number | undefined
  #placed = 0
  #removed = 0
  /** Units assigned (after this plan) → machine ids. */
  readonly #assigned = new Map<string, Set<string>>()
  /** Reasons units could not be placed. */
  readonly #reasons = new Map<string, string>()

  constructor(ctx: PlanContext) {
    this.#ctx = ctx
  }

  run(): Plan {
    const { model } = this.#ctx
    const desired = new Map<string, Desired>()
    for (const [name, v] of model.units) {
      const d = this.#desiredOf(v.record)
      if (d !== undefined) desired.set(name, d)
    }
    const rolling = this.#reviewAssignments(desired)
    for (const [template, members] of rolling) this.#roll(template, members)
    this.#placeAll(desired)
    this.#syncUnplaced()
    return {
      ops: [...this.#deletes, ...this.#puts],
      guarded: this.#guarded,
      wakeAtMs: this.#wakeAtMs,
      placed: this.#placed,
      removed: this.#removed,
      unplaced: this.#reasons.size,
    }
  }

  #desiredOf(record: UnitRecord): Desired | undefined {
    if (record.desiredState === 'inactive') return undefined
    if (record.template === undefined) {
      if (record.version === undefined) return undefined
      return { state: record.desiredState, version: record.version, template: undefined }
    }
    const template = this.#ctx.model.units.get(record.template)
    const version = template?.record.version
    if (template === undefined || version === undefined) {
      this.#reasons.set(record.name, `its template ${record.template} is not submitted`)
      return undefined
    }
    return { state: record.desiredState, version, template }
  }

  /** Steps 1 and 2; returns the launched instances per template, for the rolling update. */
  #reviewAssignments(desired: Map<string, Desired>): Map<string, Array<{ a: Assignment; d: Desired }>> {
    const { model, index } = this.#ctx
    const rolling = new Map<string, Array<{ a: Assignment; d: Desired }>>()
    const units = [...model.assignments.keys()].sort(naturalCompare)
    for (const unit of units) {
      const byMachine = model.assignments.get(unit) as Map<string, Assignment>
      const d = desired.get(unit)
      const segs = [...byMachine.keys()].sort()
      let kept = 0
      /** A Global unit's machines, asked once per unit (not once per machine it runs on). */
      let globalOn: Set<string> | undefined
      for (const seg of segs) {
        const a = byMachine.get(seg) as Assignment
        const live = model.liveMachine(seg)
        const parsed = d === undefined ? undefined : index.parse(unit, d.version.text, d.version.hash)
        const global = parsed !== undefined && typeof parsed !== 'string' && parsed.placement.fleet.global
        let drop = d === undefined || live === undefined || (!global && kept > 0)
        if (!drop && parsed !== undefined && typeof parsed !== 'string' && live !== undefined) {
          if (global) {
            globalOn ??= new Set(index.placement.globalMachines(parsed.placement))
            drop = !globalOn.has(live.id)
          } else if (
            parsed.placement.fleet.machineOf.length > 0 ||
            (a.hash !== d?.version.hash && d?.template === undefined)
          ) {
            // A MachineOf unit follows its target; a plain unit's new version may no longer fit.
            drop = index.placement.check(parsed.placement, live.id) !== undefined
          }
        }
        if (drop) {
          this.#deletes.push({ type: 'delete', key: assignKey(a.machine, unit) })
          if (live !== undefined) index.unassign(unit, live.id)
          this.#removed++
          continue
        }
        kept++
        this.#noteAssigned(unit, a.machine)
        const want = d as Desired
        if (
          want.template !== undefined &&
          want.state === 'launched' &&
          !global &&
          a.desiredState === 'launched'
        ) {
          // A running instance of a template: its version changes only through the rollout.
          const template = want.template.record.name
          const members = rolling.get(template)
          if (members === undefined) rolling.set(template, [{ a, d: want }])
          else members.push({ a, d: want })
        } else if (a.hash !== want.version.hash || a.desiredState !== want.state) {
          this.#putAssignment(a, want.state, want.version)
        }
      }
    }
    for (const members of rolling.values()) members.sort((x, y) => naturalCompare(x.a.unit, y.a.unit))
    this.#finishedRollouts(rolling)
    return rolling
  }

  /** Marks rollouts done whose template has no launched instance left to roll. */
  #finishedRollouts(rolling: Map<string, unknown>): void {
    const { model, nowMs } = this.#ctx
    for (const [template, v] of model.rollouts) {
      const r = v.record
      if (r.state !== 'rolling' || rolling.has(template)) continue
      const version = model.units.get(template)?.record.version
      if (version === undefined || version.hash !== r.to) continue
      this.#putRollout({ ...r, state: 'done', sinceMs: nowMs })
    }
  }

  #roll(template: string, members: Array<{ a: Assignment; d: Desired }>): void {
    const { model, nowMs, updateStarted } = this.#ctx
    const first = members[0]
    if (first === undefined) return
    const t = first.d.template as Versioned<UnitRecord>
    const target = first.d.version
    const stale = members.filter((m) => m.a.hash !== target.hash)
    const current = model.rollouts.get(template)?.record
    const rollingToTarget = current?.state === 'rolling' && current.to === target.hash
    if (stale.length === 0 && !rollingToTarget) return
    if (current !== undefined && current.state === 'rolled-back') {
      // Back to the version the rollout started from: every updated instance returns at once.
      if (current.from === target.hash) {
        for (const m of stale) this.#putAssignment(m.a, m.d.state, target)
        return
      }
      // Halted on this version (nothing to roll back to): wait for a new submit.
      if (current.to === target.hash) return
    }
    const rollout: RolloutRecord =
      current !== undefined && rollingToTarget
        ? { ...current, updated: [...current.updated] }
        : {
            template,
            from: stale[0]?.a.hash ?? target.hash,
            to: target.hash,
            state: 'rolling',
            updated: [],
            sinceMs: nowMs,
          }
    let changed = !rollingToTarget
    const policy = this.#policyOf(first.a.unit, target)
    let inFlight = 0
    for (const m of members) {
      if (m.a.hash !== target.hash || !rollout.updated.includes(m.a.unit)) continue
      const health = this.#health(m.a, target)
      if (health === 'healthy') {
        updateStarted.delete(m.a.unit)
        continue
      }
      let started = updateStarted.get(m.a.unit)
      if (started === undefined) {
        started = nowMs
        updateStarted.set(m.a.unit, started)
      }
      const failure =
        health !== 'pending'
          ? health
          : nowMs - started >= policy.timeoutMs
            ? `${m.a.unit} was not healthy within ${policy.timeoutMs} ms`
            : undefined
      if (failure !== undefined) {
        this.#rollBack(t, rollout, failure)
        return
      }
      inFlight++
      this.#wake(started + policy.timeoutMs)
    }
    for (const m of stale) {
      if (inFlight >= policy.parallelism) break
      this.#putAssignment(m.a, m.d.state, target)
      if (!rollout.updated.includes(m.a.unit)) rollout.updated.push(m.a.unit)
      updateStarted.set(m.a.unit, nowMs)
      this.#wake(nowMs + policy.timeoutMs)
      inFlight++
      changed = true
    }
    if (stale.length === 0 && inFlight === 0) {
      this.#putRollout({ ...rollout, state: 'done', sinceMs: nowMs })
      return
    }
    if (changed) this.#putRollout(rollout)
  }

  #policyOf(unit: string, version: UnitVersion): { parallelism: number; timeoutMs: number } {
    const parsed = this.#ctx.index.parse(unit, version.text, version.hash)
    if (typeof parsed === 'string') return { parallelism: 1, timeoutMs: 60_000 }
    return parsed.file.update
  }

  /** healthy, pending, or the failure as a sentence. */
  #health(a: Assignment, version: UnitVersion): 'healthy' | 'pending' | string {
    const state = this.#ctx.model.stateOf(a.machine, a.unit)
    if (state === undefined || state.hash !== version.hash) return 'pending'
    if (state.activeState === 'failed')
      return `${a.unit} failed on ${a.machine}: ${state.message ?? state.subState}`
    if (state.restarts > 0) return `${a.unit} restarted ${state.restarts} times on ${a.machine}`
    if (state.activeState !== 'active' || state.subState !== 'running') return 'pending'
    const parsed = this.#ctx.index.parse(a.unit, version.text, version.hash)
    const declared = typeof parsed !== 'string' && parsed.file.registration?.check !== undefined
    if (declared && state.health !== 'passing') return 'pending'
    return 'healthy'
  }

  #rollBack(template: Versioned<UnitRecord>, rollout: RolloutRecord, reason: string): void {
    const { nowMs } = this.#ctx
    const t = template.record
    const record: RolloutRecord = { ...rollout, state: 'rolled-back', reason, sinceMs: nowMs }
    if (t.previous === undefined || t.previous.hash !== rollout.from) {
      // Nothing to go back to: halt where it stands.
      this.#putRollout({ ...record, reason: `${reason}; halted (no previous version to roll back to)` })
      return
    }
    const restored: UnitRecord = { ...t, version: t.previous, submittedMs: t.submittedMs }
    delete restored.previous
    this.#guarded.push({
      compare: [
        { key: unitKey(t.name), target: 'modRevision', result: 'equal', value: template.modRevision },
        { key: unitKey(t.name), target: 'createRevision', result: 'greater', value: 0 },
      ],
      ops: [
        { type: 'put', key: unitKey(t.name), value: JSON.stringify(restored) },
        { type: 'put', key: rolloutKey(t.name), value: JSON.stringify(record) },
      ],
    })
  }

  #placeAll(desired: Map<string, Desired>): void {
    const { index } = this.#ctx
    const globals: string[] = []
    const single: string[] = []
    for (const [unit, d] of desired) {
      const parsed = index.parse(unit, d.version.text, d.version.hash)
      if (typeof parsed !== 'string' && parsed.placement.fleet.global) globals.push(unit)
      else if (!this.#assigned.has(unit)) single.push(unit)
    }
    let queue = single.sort(naturalCompare)
    for (let pass = 0; pass < placementPassesMax && queue.length > 0; pass++) {
      const next: string[] = []
      let progress = false
      for (const unit of queue) {
        const d = desired.get(unit) as Desired
        const parsed = index.parse(unit, d.version.text, d.version.hash)
        if (typeof parsed === 'string') {
          this.#reasons.set(unit, `the unit file does not parse: ${parsed}`)
          continue
        }
        const result = index.placement.place(parsed.placement)
        if (!result.ok) {
          this.#reasons.set(unit, result.reason)
          next.push(unit)
          continue
        }
        for (const evicted of result.evict) {
          const on = this.#assigned.get(evicted)
          for (const machine of on ?? []) {
            this.#deletes.push({ type: 'delete', key: assignKey(machine, evicted) })
            index.unassign(evicted, machine)
            this.#removed++
          }
          this.#assigned.delete(evicted)
          if (desired.has(evicted)) next.push(evicted)
        }
        index.assign(parsed.placement, result.machine)
        this.#reasons.delete(unit)
        this.#newAssignment(unit, result.machine, d)
        progress = true
      }
      queue = next
      if (!progress) break
    }
    for (const unit of globals.sort(naturalCompare)) this.#placeGlobal(unit, desired.get(unit) as Desired)
  }

  #placeGlobal(unit: string, d: Desired): void {
    const { index } = this.#ctx
    const parsed = index.parse(unit, d.version.text, d.version.hash)
    if (typeof parsed === 'string') return
    const machines = index.placement.globalMachines(parsed.placement)
    if (machines.length === 0) this.#reasons.set(unit, 'no machine matches its MachineMetadata and Conflicts')
    for (const machine of machines) {
      if (this.#assigned.get(unit)?.has(machine)) continue
      index.assign(parsed.placement, machine)
      this.#newAssignment(unit, machine, d)
    }
  }

  #newAssignment(unit: string, machine: string, d: Desired): void {
    const { fence, nowMs } = this.#ctx
    const a: Assignment = {
      unit,
      machine,
      desiredState: d.state,
      text: d.version.text,
      hash: d.version.hash,
      engine: fence,
      placedMs: nowMs,
    }
    this.#puts.push({ type: 'put', key: assignKey(machine, unit), value: JSON.stringify(a) })
    this.#noteAssigned(unit, machine)
    this.#placed++
  }

  #putAssignment(a: Assignment, state: 'loaded' | 'launched', version: UnitVersion): void {
    const next: Assignment = {
      ...a,
      desiredState: state,
      text: version.text,
      hash: version.hash,
      engine: this.#ctx.fence,
    }
    this.#puts.push({ type: 'put', key: assignKey(a.machine, a.unit), value: JSON.stringify(next) })
  }

  #putRollout(r: RolloutRecord): void {
    this.#puts.push({ type: 'put', key: rolloutKey(r.template), value: JSON.stringify(r) })
  }

  #syncUnplaced(): void {
    const { model, nowMs } = this.#ctx
    for (const [unit, reason] of this.#reasons) {
      if (this.#assigned.has(unit)) continue
      if (model.unplaced.get(unit)?.reason === reason) continue
      const record: UnplacedRecord = { unit, reason, sinceMs: nowMs }
      this.#puts.push({ type: 'put', key: unplacedKey(unit), value: JSON.stringify(record) })
    }
    for (const unit of model.unplaced.keys()) {
      const stillUnplaced = this.#reasons.has(unit) && !this.#assigned.has(unit)
      if (!stillUnplaced) this.#puts.push({ type: 'delete', key: unplacedKey(unit) })
    }
  }

  #noteAssigned(unit: string, machine: string): void {
    const on = this.#assigned.get(unit)
    if (on === undefined) this.#assigned.set(unit, new Set([machine]))
    else on.add(machine)
  }

  #wake(atMs: number): void {
    if (this.#wakeAtMs === undefined || atMs < this.#wakeAtMs) this.#wakeAtMs = atMs
  }
}

/** Names with their digit runs compared as numbers: web@2 before web@10. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g
  const pa = a.match(re) ?? []
  const pb = b.match(re) ?? []
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string
    const y = pb[i] as string
    if (x === y) continue
    const nx = /^\d/.test(x)
    const ny = /^\d/.test(y)
    if (nx && ny) {
      const diff = x.replace(/^0+/, '').length - y.replace(/^0+/, '').length
      if (diff !== 0) return diff
      const stripped = x.replace(/^0+/, '').localeCompare(y.replace(/^0+/, ''))
      if (stripped !== 0) return stripped
      return x.length - y.length
    }
    return x < y ? -1 : 1
  }
  return pa.length - pb.length || (a < b ? -1 : a > b ? 1 : 0)
}
