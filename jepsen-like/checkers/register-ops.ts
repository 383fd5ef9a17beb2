/**
 * Register operations as the linearizability search sees them: one key's read / write / cas
 * operations with call and return times, values interned to small integers, and the register model.
 *
 * Which history operations become search operations (the decisions, also in
 * docs/jepsen-like-checkers.md):
 *   - `fail` anything: dropped; it certainly did not happen. A failed cas is not checked as
 *     "the compare failed" because `fail` also covers refusals before the request was sent.
 *   - `read` that is `info` or never completed: dropped (no effect, no information).
 *   - `write` / `cas` that is `info` or never completed: return time +Infinity; a write always
 *     applies, a cas applies iff its expected value matches and is otherwise a no-op. The search
 *     may place it after everything else, which is the same as "it never happened".
 *   - An `info`/open write or cas whose value no ok read returns and no cas expects is dropped:
 *     nothing could depend on it, so placing it last is always possible (same verdict, far less
 *     concurrency). One whose value an ok read or ok cas observed must have taken effect before that
 *     observer returned: its return time becomes the earliest such return (never before its call),
 *     and an observed cas becomes a definite one (its compare must have matched). This is etcd's
 *     robustness-test history patching; it relies on unique values, so a value written by several
 *     operations is never bounded this way.
 *   - `ok` read: legal iff the register holds the value read (null = the key is absent).
 *   - `ok` cas [expected, new]: legal iff the register holds `expected` (null = absent), sets `new`.
 * Value ids: 0 is null (absent), 1.. are the distinct strings of the partition, in first-seen order.
 */
import type { PairedOp } from '../history.ts'
import type { WglModel } from './wgl.ts'

export const opKindRead = 0
export const opKindWrite = 1
export const opKindCas = 2
/** A cas of unknown outcome: applies when the compare matches, otherwise changes nothing. */
export const opKindCasMaybe = 3

export interface RegisterPartition {
  key: string
  /** Per search operation: its pair in the history (for reports). */
  pairs: PairedOp[]
  calls: number[]
  returns: number[]
  kinds: number[]
  /** read: the value id read; write: the id written; cas: the expected id. */
  argA: number[]
  /** cas: the new id; otherwise unused (0). */
  argB: number[]
  /** Value id -> the value (index 0 is null). */
  values: (string | null)[]
}

export interface PartitionResult {
  partitions: RegisterPartition[]
  /** Operations left out, by reason (fail, read-info, ...). */
  dropped: Record<string, number>
}

export class MalformedOpError extends Error {
  override name = 'MalformedOpError'
}

/** Splits register operations by key (a missing key is the key ''), dropping what carries nothing. */
export function partitionRegisterOps(pairs: readonly PairedOp[]): PartitionResult {
  const byKey = new Map<string, RegisterPartition>()
  const interned = new Map<string, Map<string, number>>()
  const dropped: Record<string, number> = {}
  const drop = (reason: string): void => {
    dropped[reason] = (dropped[reason] ?? 0) + 1
  }
  for (const pair of pairs) {
    const { invoke, complete } = pair
    if (invoke.f !== 'read' && invoke.f !== 'write' && invoke.f !== 'cas') continue
    const outcome = complete?.type ?? 'open'
    if (outcome === 'fail') {
      drop(`${invoke.f}-fail`)
      continue
    }
    if (invoke.f === 'read' && outcome !== 'ok') {
      drop('read-unknown')
      continue
    }
    const key = invoke.key ?? ''
    let partition = byKey.get(key)
    if (partition === undefined) {
      partition = { key, pairs: [], calls: [], returns: [], kinds: [], argA: [], argB: [], values: [null] }
      byKey.set(key, partition)
      interned.set(key, new Map())
    }
    const ids = interned.get(key)!
    const idOf = (value: string | null): number => {
      if (value === null) return 0
      let id = ids.get(value)
      if (id === undefined) {
        id = partition.values.length
        partition.values.push(value)
        ids.set(value, id)
      }
      return id
    }
    const known = outcome === 'ok'
    const [kind, a, b] = encode(pair, known, idOf)
    partition.pairs.push(pair)
    partition.calls.push(invoke.time)
    partition.returns.push(known ? complete!.time : Number.POSITIVE_INFINITY)
    partition.kinds.push(kind)
    partition.argA.push(a)
    partition.argB.push(b)
  }
  const partitions = [...byKey.values()].map((partition) => patchUnknownOutcomes(partition, drop))
  return { partitions, dropped }
}

/** Drops unobserved info writes/cas and bounds observed ones (see the header). */
function patchUnknownOutcomes(
  partition: RegisterPartition,
  drop: (reason: string) => void,
): RegisterPartition {
  const { calls, returns, kinds, argA, argB } = partition
  const firstObserved = new Map<number, number>()
  const expectedByCas = new Set<number>()
  const writers = new Map<number, number>()
  for (let op = 0; op < calls.length; op++) {
    const kind = kinds[op]!
    if (kind !== opKindRead) {
      const written = kind === opKindWrite ? argA[op]! : argB[op]!
      writers.set(written, (writers.get(written) ?? 0) + 1)
    }
    if (kind === opKindCas || kind === opKindCasMaybe) expectedByCas.add(argA[op]!)
    if (kind !== opKindRead && kind !== opKindCas) continue
    if (!Number.isFinite(returns[op]!)) continue
    const seen = firstObserved.get(argA[op]!)
    if (seen === undefined || returns[op]! < seen) firstObserved.set(argA[op]!, returns[op]!)
  }
  const keep: number[] = []
  for (let op = 0; op < calls.length; op++) {
    const kind = kinds[op]!
    const unknown = !Number.isFinite(returns[op]!)
    const written = kind === opKindWrite ? argA[op]! : argB[op]!
    if (!unknown || kind === opKindRead) {
      keep.push(op)
      continue
    }
    const observed = firstObserved.get(written)
    if (observed !== undefined && writers.get(written) === 1) {
      returns[op] = Math.max(calls[op]!, observed)
      if (kind === opKindCasMaybe) kinds[op] = opKindCas
    } else if (observed === undefined && !expectedByCas.has(written)) {
      drop(`${partition.pairs[op]!.invoke.f}-unknown-unobserved`)
      continue
    }
    keep.push(op)
  }
  if (keep.length === calls.length) return partition
  const pick = <T>(array: T[]): T[] => keep.map((op) => array[op]!)
  return {
    ...partition,
    pairs: pick(partition.pairs),
    calls: pick(calls),
    returns: pick(returns),
    kinds: pick(kinds),
    argA: pick(argA),
    argB: pick(argB),
  }
}

function encode(
  { invoke, complete }: PairedOp,
  known: boolean,
  idOf: (value: string | null) => number,
): [number, number, number] {
  if (invoke.f === 'read') {
    const read = complete!.value
    if (read !== null && typeof read !== 'string')
      throw malformed(invoke.index, 'a read returns a string or null')
    return [opKindRead, idOf(read), 0]
  }
  if (invoke.f === 'write') {
    if (typeof invoke.value !== 'string') throw malformed(invoke.index, 'a write writes a string')
    return [opKindWrite, idOf(invoke.value), 0]
  }
  const value = invoke.value
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !isStringOrNull(value[0]) ||
    typeof value[1] !== 'string'
  ) {
    throw malformed(invoke.index, 'a cas takes [expected: string | null, new: string]')
  }
  return [known ? opKindCas : opKindCasMaybe, idOf(value[0]), idOf(value[1])]
}

function isStringOrNull(value: unknown): value is string | null {
  return value === null || typeof value === 'string'
}

function malformed(index: number, what: string): MalformedOpError {
  return new MalformedOpError(`op ${index}: ${what}`)
}

/** The register model over one partition; the state is a value id. */
export function registerModel(partition: RegisterPartition): WglModel {
  const { kinds, argA, argB } = partition
  return {
    init: 0,
    step(state, op) {
      switch (kinds[op]) {
        case opKindRead:
          return state === argA[op] ? state : -1
        case opKindWrite:
          return argA[op]!
        case opKindCas:
          return state === argA[op] ? argB[op]! : -1
        case opKindCasMaybe:
          return state === argA[op] ? argB[op]! : state
        default:
          return -1
      }
    },
  }
}
