/**
 * The `watch` checker (after etcd's robustness `validate/watch.go`): every watcher (one `watch` op;
 * its completion's value is the WatchEvent[] it delivered, ok or info) is checked for
 *   - matching: each event is one it asked for (key filter, revision >= fromRevision);
 *   - ordered: revisions never decrease (equal revisions must be distinct keys);
 *   - unique: no (revision, key) twice;
 *   - written: an event's value was written to that key by a write or cas that did not fail;
 *   - reliable and resumable (no gaps): every reference event the watcher asked for, from its
 *     fromRevision up to the last revision it delivered, is delivered, identical.
 * The reference is the last ok `final` op's event list (the whole event history after healing;
 * events outside what it covers, see watch-events.ts, are not compared with it): then the delivered
 * stream must be exactly a prefix of the reference's matching events, and an event the reference
 * lacks or holds differently is invalid. Without an ok `final` the reference is the union of what
 * watchers delivered: watchers must agree on every event they share and none may skip one another
 * delivered within its range; the verdict is then at best valid, with a note saying so.
 * The final list itself is checked for order, uniqueness and written values.
 *
 * The culprit is the problem whose window starts first: the window is the interval of the write
 * that produced the event concerned, or else of the watch op itself.
 */
import { type Op, type PairedOp, pairOps, type WatchEvent } from '../history.ts'
import type { Checker, CheckResult } from './checker.ts'
import {
  describeEvent,
  eventId,
  filterOf,
  isWatchEvent,
  matches,
  normalizeKey,
  sameEvent,
  type WatchFilter,
  writesByValue,
} from './watch-events.ts'

/** details.problems keeps at most this many. */
export const problemsReportedMax = 100

export type ProblemKind =
  | 'unrequested'
  | 'out-of-order'
  | 'duplicate'
  | 'unwritten-value'
  | 'failed-write-value'
  | 'wrong-key'
  | 'not-in-final'
  | 'differs'
  | 'gap'

export interface WatchProblem {
  kind: ProblemKind
  /** The watch (or final) op's invocation index. */
  watcher: number
  event: WatchEvent
  text: string
  opIndexes: number[]
  window: { start: number; end: number }
}

interface Stream {
  pair: PairedOp
  filter: WatchFilter
  events: WatchEvent[]
}

interface Reference {
  /** 'final': the final op's list; 'union': what the watchers delivered. */
  source: 'final' | 'union'
  byId: Map<string, { event: WatchEvent; from: PairedOp }>
  /** Sorted by revision. */
  sorted: WatchEvent[]
  covers: (event: WatchEvent) => boolean
}

export const watchChecker: Checker = {
  name: 'watch',
  check: (history) => checkWatch(history),
}

export function checkWatch(history: readonly Op[]): CheckResult {
  const pairs = pairOps(history)
  const writers = writesByValue(pairs)
  const streams: Stream[] = []
  const malformed: string[] = []
  for (const pair of pairs) {
    if (pair.invoke.f !== 'watch' || !Array.isArray(pair.complete?.value)) continue
    const stream = streamOf(pair)
    if (typeof stream === 'string') malformed.push(stream)
    else streams.push(stream)
  }
  const finalPair = pairs.findLast((pair) => pair.invoke.f === 'final' && pair.complete?.type === 'ok')
  const finalOrError = finalPair === undefined ? undefined : streamOf(finalPair, true)
  if (typeof finalOrError === 'string') malformed.push(finalOrError)
  const final = typeof finalOrError === 'string' ? undefined : finalOrError
  if (malformed.length > 0) {
    return {
      checker: 'watch',
      verdict: 'unknown',
      summary: `cannot check: ${malformed[0]}`,
      details: { malformed },
    }
  }
  if (streams.length === 0)
    return { checker: 'watch', verdict: 'unknown', summary: 'no watcher delivered a list' }
  const context: Context = { writers, final }
  const problems: WatchProblem[] = []
  for (const stream of streams) problems.push(...internalProblems(stream, context))
  if (final !== undefined) problems.push(...internalProblems(final, context))
  const reference = final === undefined ? unionReference(streams, problems, context) : finalReference(final)
  for (const stream of streams) problems.push(...referenceProblems(stream, reference, context))
  return verdictOf(streams, reference, problems)
}

function streamOf(pair: PairedOp, isFinal = false): Stream | string {
  const events = pair.complete?.value as unknown[]
  if (!Array.isArray(events)) return `op ${pair.invoke.index}: the completion is not a list of events`
  const bad = events.findIndex((event) => !isWatchEvent(event))
  if (bad >= 0) return `op ${pair.invoke.index}: event ${bad} is not a WatchEvent`
  const first = (events as WatchEvent[])[0]?.revision ?? Number.POSITIVE_INFINITY
  const filter = filterOf(pair, isFinal ? first : undefined)
  if (filter === undefined) return `op ${pair.invoke.index}: the watch has no fromRevision`
  return { pair, filter, events: events as WatchEvent[] }
}

interface Context {
  writers: Map<string, PairedOp[]>
  final: Stream | undefined
}

/** Matching, ordered, unique, written: what a stream shows on its own. */
function internalProblems(stream: Stream, context: Context): WatchProblem[] {
  const problems: WatchProblem[] = []
  const seen = new Set<string>()
  let previous: WatchEvent | undefined
  for (const event of stream.events) {
    const report = (kind: ProblemKind, text: string, related: PairedOp[] = []): void => {
      problems.push(problemOf(kind, stream, event, text, related, context))
    }
    if (!matches(stream.filter, event)) report('unrequested', 'delivered but not asked for')
    if (previous !== undefined && event.revision < previous.revision) {
      report('out-of-order', `after revision ${previous.revision}`)
    }
    const id = eventId(event)
    if (seen.has(id)) report('duplicate', 'delivered twice')
    seen.add(id)
    previous = event
    if (typeof event.value !== 'string') continue
    const writes = context.writers.get(event.value) ?? []
    const sameKey = writes.filter(
      (w) => w.invoke.key === undefined || normalizeKey(w.invoke.key) === normalizeKey(event.key),
    )
    if (writes.length === 0) report('unwritten-value', 'a value nobody wrote')
    else if (sameKey.length === 0) report('wrong-key', 'a value written to another key', writes)
    else if (sameKey.every((w) => w.complete?.type === 'fail')) {
      report('failed-write-value', 'the value of a failed write', sameKey)
    }
  }
  return problems
}

function finalReference(final: Stream): Reference {
  const byId = new Map<string, { event: WatchEvent; from: PairedOp }>()
  for (const event of final.events)
    if (!byId.has(eventId(event))) byId.set(eventId(event), { event, from: final.pair })
  const sorted = [...byId.values()].map(({ event }) => event).sort((a, b) => a.revision - b.revision)
  return { source: 'final', byId, sorted, covers: (event) => matches(final.filter, event) }
}

/** The union of delivered events; a watcher disagreeing with the first to deliver an event is a problem. */
function unionReference(streams: readonly Stream[], problems: WatchProblem[], context: Context): Reference {
  const byId = new Map<string, { event: WatchEvent; from: PairedOp }>()
  for (const stream of streams) {
    for (const event of stream.events) {
      const known = byId.get(eventId(event))
      if (known === undefined) byId.set(eventId(event), { event, from: stream.pair })
      else if (!sameEvent(known.event, event)) {
        const text = `op ${known.from.invoke.index} delivered ${describeEvent(known.event)}`
        problems.push(problemOf('differs', stream, event, text, [known.from], context))
      }
    }
  }
  const sorted = [...byId.values()].map(({ event }) => event).sort((a, b) => a.revision - b.revision)
  return { source: 'union', byId, sorted, covers: () => true }
}

/** Delivered events match the reference; nothing the watcher asked for is skipped. */
function referenceProblems(stream: Stream, reference: Reference, context: Context): WatchProblem[] {
  const problems: WatchProblem[] = []
  const delivered = new Set<string>()
  const finalPair = reference.source === 'final' ? [context.final!.pair] : []
  for (const event of stream.events) {
    delivered.add(eventId(event))
    if (reference.source === 'union' || !reference.covers(event)) continue
    const known = reference.byId.get(eventId(event))
    if (known === undefined)
      problems.push(problemOf('not-in-final', stream, event, 'not in the final history', finalPair, context))
    else if (!sameEvent(known.event, event)) {
      const text = `the final history has ${describeEvent(known.event)}`
      problems.push(problemOf('differs', stream, event, text, finalPair, context))
    }
  }
  const last = stream.events.reduce((max, event) => Math.max(max, event.revision), Number.NEGATIVE_INFINITY)
  for (const event of reference.sorted) {
    if (event.revision > last) break
    if (!matches(stream.filter, event) || !reference.covers(event) || delivered.has(eventId(event))) continue
    const from = reference.byId.get(eventId(event))!.from
    const related = from === stream.pair ? [] : [from]
    problems.push(problemOf('gap', stream, event, 'skipped', related, context))
  }
  return problems
}

function problemOf(
  kind: ProblemKind,
  stream: Stream,
  event: WatchEvent,
  text: string,
  related: readonly PairedOp[],
  context: Context,
): WatchProblem {
  const writes = typeof event.value === 'string' ? (context.writers.get(event.value) ?? []) : []
  const write = writes[0]
  const anchor = write ?? stream.pair
  const end = anchor.complete?.time ?? anchor.invoke.time
  const indexes = [stream.pair, ...related, ...(write === undefined ? [] : [write])].map(
    (p) => p.invoke.index,
  )
  return {
    kind,
    watcher: stream.pair.invoke.index,
    event,
    text: `${stream.pair.invoke.f} op ${stream.pair.invoke.index}: ${kind}: ${describeEvent(event)}: ${text}`,
    opIndexes: [...new Set(indexes)],
    window: { start: anchor.invoke.time, end },
  }
}

function verdictOf(streams: readonly Stream[], reference: Reference, problems: WatchProblem[]): CheckResult {
  problems.sort((a, b) => a.window.start - b.window.start)
  const counts: Partial<Record<ProblemKind, number>> = {}
  for (const problem of problems) counts[problem.kind] = (counts[problem.kind] ?? 0) + 1
  const watchers = streams.map(({ pair, filter, events }) => ({
    op: pair.invoke.index,
    ...filter,
    delivered: events.length,
    firstRevision: events[0]?.revision ?? null,
    lastRevision: events.at(-1)?.revision ?? null,
  }))
  const note =
    reference.source === 'union'
      ? 'no ok final op: checked each stream and agreement between watchers only, not against the store'
      : undefined
  const details = {
    reference: reference.source,
    referenceEvents: reference.sorted.length,
    watchers,
    counts,
    problems: problems.slice(0, problemsReportedMax),
    ...(note === undefined ? {} : { note }),
  }
  const delivered = streams.reduce((sum, stream) => sum + stream.events.length, 0)
  const first = problems[0]
  if (first !== undefined) {
    const kinds = Object.entries(counts)
      .map(([kind, count]) => `${count} ${kind}`)
      .join(', ')
    const summary = `${problems.length} problems (${kinds}); first: ${first.text}`
    return {
      checker: 'watch',
      verdict: 'invalid',
      summary,
      details,
      culprit: { opIndexes: first.opIndexes, window: first.window },
    }
  }
  const against = reference.source === 'final' ? 'the final history' : 'each other (no final history)'
  const summary = `${streams.length} watchers, ${delivered} events: ordered, unique, gap-free, agreeing with ${against}`
  return { checker: 'watch', verdict: 'valid', summary, details }
}
