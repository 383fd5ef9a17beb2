/**
 * The history of one jepsen-like run: the contract between the runner (clients and nemesis write
 * it) and the checkers and the report (they only read it).
 *
 * Invariants of a well-formed history (checked by `validateHistory`):
 *   - `index` is the position in the array, 0, 1, 2, ...; `time` never decreases along it
 *     (milliseconds since the run started, from a monotonic clock, fractional).
 *   - A client process has at most one outstanding operation: every `invoke` of a process is
 *     followed, before that process's next `invoke`, by exactly one completion (`ok`, `fail` or
 *     `info`) with the same `f` and `key`. A history may end with invocations still open (the run was
 *     cut short); checkers treat them like `info`.
 *   - `ok`: it happened, `value` is the result. `fail`: it certainly did not happen (a definite error,
 *     such as a failed compare or a refusal before the request was sent). `info`: unknown: it may
 *     have happened at any time after its invocation, even after the end of the history (a timeout,
 *     a reset connection, a crashed client).
 *   - The nemesis is process `nemesisProcess`; its entries are `info` with `f: 'start' | 'stop'`
 *     and `value: Fault`. A fault's window runs from its start to the stop with the same `value.id`
 *     (or to the end of the history).
 *
 * Operation values, per workload:
 *   register  f 'read'   invoke value null;            ok value: the string read, or null (no key)
 *             f 'write'  invoke value: the string written (unique in the run)
 *             f 'cas'    invoke value: [expected, new]  ok: it swapped; fail: the compare failed
 *   set       f 'add'    key: the set's key, invoke value: the element (unique)
 *             f 'read'   key: the set's key, ok value: every element present (final read)
 *   watch     f 'watch'  invoke value: {fromRevision}, ok/info value: WatchEvent[] as delivered
 *             f 'write'  as register (the traffic the watchers follow); key: any
 *             f 'final'  ok value: WatchEvent[] read back after healing, the whole event history
 *                        from the first revision the watchers asked for
 */
import { readFile, writeFile } from 'node:fs/promises'

export type OpType = 'invoke' | 'ok' | 'fail' | 'info'

/** The process number the nemesis writes under; clients are 0, 1, 2, ... */
export const nemesisProcess = -1

export interface Op {
  index: number
  type: OpType
  process: number
  f: string
  key?: string
  value: unknown
  /** Milliseconds since the start of the run (monotonic clock). */
  time: number
  /** Why a `fail` or `info` ended as it did (an error code or message). */
  error?: string
  /** The member the client talked to, when known (for the report). */
  node?: string
}

/** One fault of the nemesis, as written in its `start` and `stop` entries. */
export interface Fault {
  /** Unique in the run; pairs a start with its stop. */
  id: number
  /** partition | latency | drop | kill | pause | member-remove | transfer | ... */
  kind: string
  /** What exactly: which nodes, which links, how long, ... (shown in the report). */
  detail: Record<string, unknown>
}

/** One watch event as a client saw it (etcd v2: modifiedIndex is the revision). */
export interface WatchEvent {
  revision: number
  key: string
  action: string
  value?: string | null
}

/** An invocation paired with its completion; `complete` is undefined when the history ended first. */
export interface PairedOp {
  invoke: Op
  complete: Op | undefined
}

export class HistoryError extends Error {
  override name = 'HistoryError'
}

/** Throws HistoryError at the first entry that breaks the invariants above. */
export function validateHistory(history: readonly Op[]): void {
  const open = new Map<number, Op>()
  let lastTime = Number.NEGATIVE_INFINITY
  history.forEach((op, i) => {
    if (op.index !== i) throw new HistoryError(`entry ${i} has index ${op.index}`)
    if (!(op.time >= lastTime)) throw new HistoryError(`entry ${i}: time goes backwards`)
    lastTime = op.time
    if (op.process === nemesisProcess) {
      if (op.type !== 'info') throw new HistoryError(`entry ${i}: a nemesis entry must be info`)
      return
    }
    const pending = open.get(op.process)
    if (op.type === 'invoke') {
      if (pending !== undefined) {
        throw new HistoryError(
          `entry ${i}: process ${op.process} invokes while entry ${pending.index} is open`,
        )
      }
      open.set(op.process, op)
      return
    }
    if (pending === undefined) throw new HistoryError(`entry ${i}: process ${op.process} completes nothing`)
    if (pending.f !== op.f || pending.key !== op.key) {
      throw new HistoryError(`entry ${i}: completes ${pending.f} ${pending.key} as ${op.f} ${op.key}`)
    }
    open.delete(op.process)
  })
}

/** Client operations as invoke/completion pairs, in invocation order (nemesis entries left out). */
export function pairOps(history: readonly Op[]): PairedOp[] {
  const pairs: PairedOp[] = []
  const open = new Map<number, PairedOp>()
  for (const op of history) {
    if (op.process === nemesisProcess) continue
    if (op.type === 'invoke') {
      const pair: PairedOp = { invoke: op, complete: undefined }
      pairs.push(pair)
      open.set(op.process, pair)
    } else {
      const pair = open.get(op.process)
      if (pair !== undefined) pair.complete = op
      open.delete(op.process)
    }
  }
  return pairs
}

/** A fault window: from its start entry's time to its stop's (Infinity when never stopped). */
export interface FaultWindow {
  fault: Fault
  start: number
  end: number
}

export function faultWindows(history: readonly Op[]): FaultWindow[] {
  const windows = new Map<number, FaultWindow>()
  for (const op of history) {
    if (op.process !== nemesisProcess) continue
    const fault = op.value as Fault
    if (op.f === 'start') windows.set(fault.id, { fault, start: op.time, end: Number.POSITIVE_INFINITY })
    else if (op.f === 'stop') {
      const window = windows.get(fault.id)
      if (window !== undefined) window.end = op.time
    }
  }
  return [...windows.values()]
}

/** Appends entries with consecutive indexes and monotonic times; the runner's only writer. */
export class HistoryRecorder {
  readonly #ops: Op[] = []
  readonly #start = performance.now()

  get ops(): readonly Op[] {
    return this.#ops
  }

  record(entry: Omit<Op, 'index' | 'time'>): Op {
    const op: Op = { ...entry, index: this.#ops.length, time: performance.now() - this.#start }
    this.#ops.push(op)
    return op
  }
}

export async function writeHistory(path: string, history: readonly Op[]): Promise<void> {
  await writeFile(path, history.map((op) => JSON.stringify(op)).join('\n') + (history.length > 0 ? '\n' : ''))
}

export async function readHistory(path: string): Promise<Op[]> {
  const text = await readFile(path, 'utf8')
  const ops = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Op)
  validateHistory(ops)
  return ops
}
