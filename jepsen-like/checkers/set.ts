/**
 * The `set` checker: adds of unique elements, then a final read of the whole set (per set key; a
 * missing key is the set '').
 *
 * The final read of a set is its ok `read` invoked last. Against it, per set:
 *   - lost: an ok add that returned before the final read was invoked, missing from it;
 *   - unexpected: an element present that no add attempted, or whose add was invoked only after
 *     the final read returned (it came from nowhere);
 *   - refused: an element present whose add failed (`fail`: it certainly did not happen).
 * Any of these makes the history invalid. Not errors, only counted: an info (or never completed) add
 * present or absent (either is allowed), an ok add concurrent with the final read that is absent,
 * an element listed twice (`duplicates`; a client retrying a CAS-loop add can cause it).
 * A set with adds but no ok read is unknown. Elements are compared by their JSON text.
 */
import { type Op, type PairedOp, pairOps } from '../history.ts'
import type { Checker, CheckResult } from './checker.ts'

/** Each list of elements in `details` keeps at most this many. */
export const elementsReportedMax = 100

interface Problem {
  kind: 'lost' | 'unexpected' | 'refused'
  element: unknown
  opIndexes: number[]
  window: { start: number; end: number }
}

interface SetReport {
  key: string
  verdict: CheckResult['verdict']
  counts: Record<string, number>
  problems: Problem[]
  duplicates: unknown[]
  note?: string
}

export const setChecker: Checker = {
  name: 'set',
  check: (history) => checkSet(history),
}

export function checkSet(history: readonly Op[]): CheckResult {
  const byKey = new Map<string, PairedOp[]>()
  for (const pair of pairOps(history)) {
    if (pair.invoke.f !== 'add' && pair.invoke.f !== 'read') continue
    const key = pair.invoke.key ?? ''
    const pairs = byKey.get(key) ?? []
    pairs.push(pair)
    byKey.set(key, pairs)
  }
  if (byKey.size === 0) return { checker: 'set', verdict: 'unknown', summary: 'no add or read operations' }
  const reports = [...byKey].map(([key, pairs]) => checkOneSet(key, pairs))
  const problems = reports
    .flatMap((report) => report.problems)
    .sort((a, b) => a.window.start - b.window.start)
  const details = { sets: reports.map((report) => reportDetails(report)) }
  const total = (name: string): number => reports.reduce((sum, report) => sum + (report.counts[name] ?? 0), 0)
  const counts = `${total('okAdds')} ok adds, ${total('present')} present`
  const first = problems[0]
  if (first !== undefined) {
    const kinds = ['lost', 'unexpected', 'refused'] as const
    const found = kinds.map((kind) => `${total(kind)} ${kind}`).join(', ')
    const summary = `${found} (${counts}); first: ${first.kind} element ${JSON.stringify(first.element)}`
    return {
      checker: 'set',
      verdict: 'invalid',
      summary,
      details,
      culprit: { opIndexes: first.opIndexes, window: first.window },
    }
  }
  const undecided = reports.filter((report) => report.verdict === 'unknown')
  if (undecided.length > 0) {
    const names = undecided.map((report) => JSON.stringify(report.key)).join(', ')
    return {
      checker: 'set',
      verdict: 'unknown',
      summary: `no ok final read of set ${names} (${counts})`,
      details,
    }
  }
  return { checker: 'set', verdict: 'valid', summary: `nothing lost or from nowhere: ${counts}`, details }
}

function checkOneSet(key: string, pairs: readonly PairedOp[]): SetReport {
  const adds = pairs.filter((pair) => pair.invoke.f === 'add')
  const reads = pairs.filter((pair) => pair.invoke.f === 'read' && pair.complete?.type === 'ok')
  const finalRead = reads.at(-1)
  const counts: Record<string, number> = {
    okAdds: adds.filter((pair) => pair.complete?.type === 'ok').length,
    failAdds: adds.filter((pair) => pair.complete?.type === 'fail').length,
    unknownAdds: adds.filter((pair) => pair.complete === undefined || pair.complete.type === 'info').length,
  }
  if (finalRead === undefined) {
    const verdict = adds.length === 0 ? 'valid' : 'unknown'
    return { key, verdict, counts, problems: [], duplicates: [], note: 'no ok read' }
  }
  const readComplete = finalRead.complete!
  if (!Array.isArray(readComplete.value)) {
    const note = `the final read (op ${finalRead.invoke.index}) did not return a list`
    return { key, verdict: 'unknown', counts, problems: [], duplicates: [], note }
  }
  const present = new Map<string, unknown>()
  const duplicates: unknown[] = []
  for (const element of readComplete.value as unknown[]) {
    const id = JSON.stringify(element)
    if (present.has(id)) duplicates.push(element)
    present.set(id, element)
  }
  const addOf = new Map<string, PairedOp>()
  for (const add of adds) addOf.set(JSON.stringify(add.invoke.value), add)
  const problems = [...lostAdds(adds, present, finalRead), ...appearedFromNowhere(present, addOf, finalRead)]
  counts['present'] = present.size
  counts['duplicates'] = duplicates.length
  counts['unknownAddsPresent'] = adds.filter(
    (add) =>
      add.complete?.type !== 'ok' &&
      add.complete?.type !== 'fail' &&
      present.has(JSON.stringify(add.invoke.value)),
  ).length
  for (const kind of ['lost', 'unexpected', 'refused'] as const) {
    counts[kind] = problems.filter((problem) => problem.kind === kind).length
  }
  return { key, verdict: problems.length > 0 ? 'invalid' : 'valid', counts, problems, duplicates }
}

function lostAdds(
  adds: readonly PairedOp[],
  present: ReadonlyMap<string, unknown>,
  finalRead: PairedOp,
): Problem[] {
  const problems: Problem[] = []
  for (const add of adds) {
    const complete = add.complete
    if (complete?.type !== 'ok' || complete.time >= finalRead.invoke.time) continue
    if (present.has(JSON.stringify(add.invoke.value))) continue
    problems.push({
      kind: 'lost',
      element: add.invoke.value,
      opIndexes: [add.invoke.index, finalRead.invoke.index],
      window: { start: add.invoke.time, end: complete.time },
    })
  }
  return problems
}

function appearedFromNowhere(
  present: ReadonlyMap<string, unknown>,
  addOf: ReadonlyMap<string, PairedOp>,
  finalRead: PairedOp,
): Problem[] {
  const readWindow = { start: finalRead.invoke.time, end: finalRead.complete!.time }
  const problems: Problem[] = []
  for (const [id, element] of present) {
    const add = addOf.get(id)
    if (add === undefined || add.invoke.time > readWindow.end) {
      const opIndexes =
        add === undefined ? [finalRead.invoke.index] : [finalRead.invoke.index, add.invoke.index]
      problems.push({ kind: 'unexpected', element, opIndexes, window: readWindow })
    } else if (add.complete?.type === 'fail') {
      const window = { start: add.invoke.time, end: add.complete.time }
      problems.push({
        kind: 'refused',
        element,
        opIndexes: [add.invoke.index, finalRead.invoke.index],
        window,
      })
    }
  }
  return problems
}

function reportDetails(report: SetReport): Record<string, unknown> {
  const elementsOf = (kind: Problem['kind']): unknown[] =>
    report.problems
      .filter((problem) => problem.kind === kind)
      .slice(0, elementsReportedMax)
      .map((problem) => problem.element)
  return {
    key: report.key,
    verdict: report.verdict,
    counts: report.counts,
    lost: elementsOf('lost'),
    unexpected: elementsOf('unexpected'),
    refused: elementsOf('refused'),
    duplicates: report.duplicates.slice(0, elementsReportedMax),
    ...(report.note === undefined ? {} : { note: report.note }),
  }
}
