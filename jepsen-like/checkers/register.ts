/**
 * The `register` checker: each key is an independent register (linearizability is local, so the
 * history is linearizable iff every key's sub-history is); each key is searched with the WGL
 * algorithm (./wgl.ts) over the operations chosen in ./register-ops.ts. Keys start absent (null).
 *
 * Verdict: invalid if any key is not linearizable; otherwise unknown if any key ran out of budget
 * (the time budget is shared by all keys, smallest first); otherwise valid. For an invalid key the
 * culprit is the first operation that could not be linearized (the one blocking the longest
 * linearizable prefix) plus the operations concurrent with it and the last write of that prefix;
 * the window is the culprit's call..return widened to the concurrent operations that returned
 * (never-returning ones are listed but do not widen it). Across keys, the culprit returning first is shown.
 */
import { type Op, type PairedOp, pairOps } from '../history.ts'
import type { Checker, CheckOptions, CheckResult } from './checker.ts'
import {
  MalformedOpError,
  opKindRead,
  partitionRegisterOps,
  type RegisterPartition,
  registerModel,
} from './register-ops.ts'
import { checkLinearizable, type WglLimits, type WglOutcome, wglLimitsDefault } from './wgl.ts'

/** The prefix reported in details keeps at most this many (most recent) operations. */
export const prefixOpsReportedMax = 200

export interface RegisterCheckOptions extends CheckOptions {
  /** Overrides of the search limits (tests use `stepsMax` for a deterministic `unknown`). */
  limits?: Partial<Omit<WglLimits, 'deadline'>>
}

interface IllegalKey {
  key: string
  summary: string
  culprit: NonNullable<CheckResult['culprit']>
  /** When the culprit returned (ordering keys: the first to go wrong is reported). */
  blockerReturn: number
  details: Record<string, unknown>
}

export const registerChecker: Checker = {
  name: 'register',
  check: (history, options) => checkRegister(history, options),
}

export function checkRegister(history: readonly Op[], options: RegisterCheckOptions): CheckResult {
  const now = options.limits?.now ?? (() => performance.now())
  const limits: WglLimits = {
    ...wglLimitsDefault,
    now,
    ...options.limits,
    deadline: now() + options.timeBudgetMs,
  }
  let partitioned: ReturnType<typeof partitionRegisterOps>
  try {
    partitioned = partitionRegisterOps(pairOps(history))
  } catch (error) {
    if (!(error instanceof MalformedOpError)) throw error
    return { checker: 'register', verdict: 'unknown', summary: `cannot check: ${error.message}` }
  }
  const partitions = [...partitioned.partitions].sort((a, b) => a.calls.length - b.calls.length)
  const illegal: IllegalKey[] = []
  const unknownKeys: { key: string; reason: string }[] = []
  let steps = 0
  for (const partition of partitions) {
    const outcome = checkLinearizable(partition.calls, partition.returns, registerModel(partition), limits)
    steps += outcome.steps
    if (outcome.kind === 'illegal') illegal.push(describeIllegal(partition, outcome))
    else if (outcome.kind === 'unknown') unknownKeys.push({ key: partition.key, reason: outcome.reason })
  }
  const operations = partitions.reduce((sum, p) => sum + p.calls.length, 0)
  const details = { keys: partitions.length, operations, dropped: partitioned.dropped, steps, unknownKeys }
  illegal.sort((a, b) => a.blockerReturn - b.blockerReturn)
  const first = illegal[0]
  if (first !== undefined) {
    const summary =
      illegal.length === 1 ? first.summary : `${first.summary} (and ${illegal.length - 1} more keys)`
    const invalidKeys = illegal.map(({ key, summary, details }) => ({ key, summary, ...details }))
    return {
      checker: 'register',
      verdict: 'invalid',
      summary,
      details: { ...details, invalidKeys },
      culprit: first.culprit,
    }
  }
  if (unknownKeys.length > 0) {
    const reasons = [...new Set(unknownKeys.map(({ reason }) => unknownReasonText(reason, options)))]
    const summary = `${unknownKeys.length} of ${partitions.length} keys not decided: ${reasons.join('; ')}`
    return { checker: 'register', verdict: 'unknown', summary, details }
  }
  const summary = `linearizable: ${operations} operations on ${partitions.length} keys`
  return { checker: 'register', verdict: 'valid', summary, details }
}

function describeIllegal(
  partition: RegisterPartition,
  outcome: Extract<WglOutcome, { kind: 'illegal' }>,
): IllegalKey {
  const { blocker, prefix } = outcome
  const call = partition.calls[blocker]!
  const ret = partition.returns[blocker]!
  const concurrent: number[] = []
  for (let op = 0; op < partition.calls.length; op++) {
    if (op !== blocker && partition.calls[op]! <= ret && partition.returns[op]! >= call) concurrent.push(op)
  }
  const lastWrite = prefix.findLast((op) => partition.kinds[op] !== opKindRead)
  const shown = [blocker, ...concurrent]
  if (lastWrite !== undefined && !shown.includes(lastWrite)) shown.push(lastWrite)
  let start = call
  let end = ret
  for (const op of concurrent) {
    const opReturn = partition.returns[op]!
    if (!Number.isFinite(opReturn)) continue
    start = Math.min(start, partition.calls[op]!)
    end = Math.max(end, opReturn)
  }
  const pairOf = (op: number): PairedOp => partition.pairs[op]!
  const stateValue = partition.values[outcome.state] ?? null
  const keyText = partition.key === '' ? '(no key)' : partition.key
  const summary = `key ${keyText}: ${describePair(pairOf(blocker))} cannot be linearized after ${prefix.length} operations (register holds ${JSON.stringify(stateValue)})`
  return {
    key: partition.key,
    summary,
    culprit: { opIndexes: shown.map((op) => pairOf(op).invoke.index), window: { start, end } },
    blockerReturn: ret,
    details: {
      blocker: pairOf(blocker).invoke.index,
      concurrent: concurrent.map((op) => pairOf(op).invoke.index),
      lastWrite: lastWrite === undefined ? null : pairOf(lastWrite).invoke.index,
      stateAfterPrefix: stateValue,
      prefixLength: prefix.length,
      prefix: prefix.slice(-prefixOpsReportedMax).map((op) => pairOf(op).invoke.index),
    },
  }
}

function unknownReasonText(reason: string, options: RegisterCheckOptions): string {
  if (reason === 'deadline') return `time budget of ${options.timeBudgetMs} ms spent`
  if (reason === 'cache') return 'search cache limit reached'
  return 'search step limit reached'
}

/** "read -> "v1" (op 12, process 3)": an operation in one line. */
export function describePair({ invoke, complete }: PairedOp): string {
  const outcome = complete?.type ?? 'open'
  const shown = invoke.f === 'read' ? (complete?.value ?? null) : invoke.value
  const arrow = invoke.f === 'read' ? '->' : ''
  const text = `${invoke.f}${arrow === '' ? ' ' : ` ${arrow} `}${JSON.stringify(shown)}`
  return `${text}${outcome === 'ok' ? '' : ` [${outcome}]`} (op ${invoke.index}, process ${invoke.process})`
}
