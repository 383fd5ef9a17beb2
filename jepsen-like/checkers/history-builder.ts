/**
 * Hand-written histories for checker and report tests: each operation is given as one line (who,
 * what, when it was called and when it returned, how it ended), and `buildHistory` lays them out as
 * a well-formed history (see ../history.ts): entries sorted by time, a completion before an
 * invocation at the same time, consecutive indexes.
 */
import { type Fault, nemesisProcess, type Op, type OpType } from '../history.ts'

export interface OpSpec {
  process: number
  f: string
  key?: string
  /** The invocation's value (null for reads). */
  value?: unknown
  call: number
  /** Completion time; omitted: the operation never completed. */
  ret?: number
  /** How it completed; default `ok`. */
  type?: Exclude<OpType, 'invoke'>
  /** The completion's value; default: the invocation's value. */
  result?: unknown
  error?: string
}

export interface FaultSpec {
  fault: Fault
  start: number
  /** Omitted: never stopped. */
  stop?: number
}

type Draft = Omit<Op, 'index'> & { order: number; rank: number }

export function buildHistory(ops: readonly OpSpec[], faults: readonly FaultSpec[] = []): Op[] {
  const drafts: Draft[] = []
  const add = (entry: Omit<Op, 'index'>, rank: number): void => {
    drafts.push({ ...entry, order: drafts.length, rank })
  }
  for (const spec of ops) {
    const { process, f, key, call, ret } = spec
    const value = spec.value ?? null
    add({ type: 'invoke', process, f, key, value, time: call }, 1)
    if (ret === undefined) continue
    const completion: Omit<Op, 'index'> = {
      type: spec.type ?? 'ok',
      process,
      f,
      key,
      value: spec.result === undefined ? value : spec.result,
      time: ret,
    }
    if (spec.error !== undefined) completion.error = spec.error
    add(completion, 0)
  }
  for (const { fault, start, stop } of faults) {
    add({ type: 'info', process: nemesisProcess, f: 'start', value: fault, time: start }, 0)
    if (stop !== undefined)
      add({ type: 'info', process: nemesisProcess, f: 'stop', value: fault, time: stop }, 0)
  }
  drafts.sort((a, b) => a.time - b.time || a.rank - b.rank || a.order - b.order)
  return drafts.map(({ order: _order, rank: _rank, ...entry }, index) => {
    const op: Op = { ...entry, index }
    if (op.key === undefined) delete op.key
    return op
  })
}

/** The history index of the invocation laid out for `spec` by buildHistory. */
export function invokeIndexOf(history: readonly Op[], spec: OpSpec): number {
  const found = history.find(
    (op) => op.type === 'invoke' && op.process === spec.process && op.time === spec.call && op.f === spec.f,
  )
  if (found === undefined) throw new Error(`no invocation for ${JSON.stringify(spec)}`)
  return found.index
}
