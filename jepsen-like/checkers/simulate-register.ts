/**
 * A seeded simulation of clients using a correct (linearizable) multi-key register store, producing
 * a well-formed register history (see ../history.ts). Used by the checker's property tests and by
 * ../bench-checker.ts; not by the harness.
 *
 * Invariants of the produced history:
 *   - Every operation takes effect atomically at one instant between its invoke and its
 *     completion (inclusive), or, for write/cas completed as `info`, possibly after its completion
 *     or never; so the history is linearizable by construction.
 *   - Written values are unique; keys start absent; reads that complete `info` did nothing.
 *   - A cas whose compare fails completes `fail` (and changed nothing).
 *   - Times never decrease; consecutive entries share a time with probability `tieProbability`.
 */
import type { Op, OpType } from '../history.ts'

export interface RegisterSimulation {
  seed: number
  clients: number
  /** Invocations to make in total (each completes, except when the history is cut at the end). */
  operations: number
  keys: number
  readProbability: number
  casProbability: number
  /** Chance that a write/cas/read completes as `info` instead of its real outcome. */
  infoProbability: number
  /** Chance that an `info` write/cas which had not yet taken effect takes effect later. */
  lateEffectProbability: number
  tieProbability: number
}

export const registerSimulationDefault: RegisterSimulation = {
  seed: 1,
  clients: 10,
  operations: 1000,
  keys: 4,
  readProbability: 0.5,
  casProbability: 0.2,
  infoProbability: 0.02,
  lateEffectProbability: 0.5,
  tieProbability: 0.1,
}

/** mulberry32: a small seeded PRNG giving floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Pending {
  invoke: Op
  /** Set once the operation has taken effect: the completion it earned. */
  result?: { type: OpType; value: unknown }
}

export function simulateRegister(options: Partial<RegisterSimulation> = {}): Op[] {
  const sim = { ...registerSimulationDefault, ...options }
  const random = seededRandom(sim.seed)
  const pick = (n: number): number => Math.floor(random() * n)
  const store = new Map<string, string>()
  const history: Op[] = []
  const pending = new Map<number, Pending>()
  /** info writes/cas that have not taken effect yet and may still do so. */
  const lingering: Op[] = []
  let time = 0
  let invoked = 0
  let written = 0
  const record = (entry: Omit<Op, 'index' | 'time'>): Op => {
    if (history.length > 0 && random() >= sim.tieProbability) time += 1 + pick(3)
    const op: Op = { ...entry, index: history.length, time }
    history.push(op)
    return op
  }
  const apply = (invoke: Op): { type: OpType; value: unknown } => {
    const key = invoke.key!
    const current = store.get(key) ?? null
    if (invoke.f === 'read') return { type: 'ok', value: current }
    if (invoke.f === 'write') {
      store.set(key, invoke.value as string)
      return { type: 'ok', value: null }
    }
    const [expected, next] = invoke.value as [string | null, string]
    if (current !== expected) return { type: 'fail', value: invoke.value }
    store.set(key, next)
    return { type: 'ok', value: invoke.value }
  }
  while (invoked < sim.operations || pending.size > 0) {
    if (lingering.length > 0 && random() < 0.05) {
      const [late] = lingering.splice(pick(lingering.length), 1)
      if (late !== undefined && random() < sim.lateEffectProbability) apply(late)
      continue
    }
    const process = pick(sim.clients)
    const current = pending.get(process)
    if (current === undefined) {
      if (invoked >= sim.operations) continue
      invoked++
      const key = `k${pick(sim.keys)}`
      const roll = random()
      const f =
        roll < sim.readProbability
          ? 'read'
          : roll < sim.readProbability + sim.casProbability
            ? 'cas'
            : 'write'
      const fresh = `v${written++}`
      const expected = f === 'cas' ? (store.get(key) ?? null) : null
      const value =
        f === 'read' ? null : f === 'cas' ? [random() < 0.7 ? expected : `v${pick(written)}`, fresh] : fresh
      pending.set(process, { invoke: record({ type: 'invoke', process, f, key, value }) })
      continue
    }
    const { invoke } = current
    if (current.result === undefined && random() < 0.5) {
      current.result = apply(invoke)
      continue
    }
    pending.delete(process)
    if (random() < sim.infoProbability) {
      if (current.result === undefined && invoke.f !== 'read') lingering.push(invoke)
      record({ type: 'info', process, f: invoke.f, key: invoke.key, value: invoke.value, error: 'timeout' })
      continue
    }
    const result = current.result ?? apply(invoke)
    record({ type: result.type, process, f: invoke.f, key: invoke.key, value: result.value })
  }
  return history
}
