/**
 * The watch checker: watchers that deliver a prefix of what they asked for are valid; a duplicated
 * event, a gap (in the middle or at the start), an out-of-order event, an event the final history
 * lacks or holds differently, a value nobody (or only a failed write) wrote, an event not asked for,
 * and watchers that disagree with each other are invalid, with the culprit pointing at the watcher.
 */
import { describe, expect, it } from 'vitest'
import { validateHistory, type WatchEvent } from '../history.ts'
import { buildHistory, invokeIndexOf, type OpSpec } from './history-builder.ts'
import { checkWatch } from './watch.ts'

const ev = (revision: number, key: string, value: string | null, action = 'set'): WatchEvent =>
  value === null ? { revision, key, action } : { revision, key, action, value }

/** Revisions 1..4: /a=v1, /b=v2, /a=v3, /a=v4 (each written by process 0, op n at time 10n). */
const events = [ev(1, '/a', 'v1'), ev(2, '/b', 'v2'), ev(3, '/a', 'v3'), ev(4, '/a', 'v4')]
const writes: OpSpec[] = events.map((event, i) => ({
  process: 0,
  f: 'write',
  key: event.key,
  value: event.value,
  call: 10 * (i + 1),
  ret: 10 * (i + 1) + 1,
}))
const final: OpSpec = {
  process: 9,
  f: 'final',
  value: { fromRevision: 1 },
  call: 100,
  ret: 101,
  result: events,
}

let nextProcess = 1
function watcher(
  request: { fromRevision: number; key?: string; recursive?: boolean },
  delivered: WatchEvent[],
) {
  return {
    process: nextProcess++,
    f: 'watch',
    value: request,
    call: 0,
    ret: 90,
    type: 'info',
    result: delivered,
  } as OpSpec
}
const all = (fromRevision: number) => ({ fromRevision, key: '/', recursive: true })

function judge(specs: OpSpec[]) {
  const history = buildHistory(specs)
  validateHistory(history)
  return { history, result: checkWatch(history) }
}

describe('watch checker: valid', () => {
  it('watchers delivering prefixes of what they asked for agree with the final history', () => {
    const { result } = judge([
      ...writes,
      watcher(all(1), events.slice(0, 3)),
      watcher({ fromRevision: 2, key: '/a' }, [events[2]!, events[3]!]),
      watcher({ fromRevision: 3, key: 'b' }, []),
      watcher({ fromRevision: 3 }, [events[2]!]),
      final,
    ])
    expect(result.summary).toContain('agreeing with the final history')
    expect(result.verdict).toBe('valid')
  })

  it('a watch is recursive unless it says otherwise', () => {
    expect(judge([...writes, watcher({ fromRevision: 1, key: '/' }, events), final]).result.verdict).toBe(
      'valid',
    )
    const narrow = watcher({ fromRevision: 1, key: '/', recursive: false }, [events[0]!])
    expect(judge([...writes, narrow, final]).result.details).toMatchObject({ counts: { unrequested: 1 } })
  })

  it('without a final history, agreeing watchers are valid with a note', () => {
    const { result } = judge([...writes, watcher(all(1), events), watcher(all(2), events.slice(1))])
    expect(result.verdict).toBe('valid')
    expect(result.details).toMatchObject({ reference: 'union', note: expect.stringContaining('no ok final') })
  })

  it('a delete event carries no value to check', () => {
    const withDelete = [...events, ev(5, '/a', null, 'delete')]
    const { result } = judge([...writes, watcher(all(1), withDelete), { ...final, result: withDelete }])
    expect(result.verdict).toBe('valid')
  })
})

describe('watch checker: invalid', () => {
  const cases: [string, OpSpec[], string][] = [
    [
      'a duplicated event',
      [watcher(all(1), [events[0]!, events[1]!, events[1]!, events[2]!]), final],
      'duplicate',
    ],
    ['a gap in the middle', [watcher(all(1), [events[0]!, events[2]!]), final], 'gap'],
    [
      'a gap at the start (not resumed where asked)',
      [watcher({ fromRevision: 2, key: '/a' }, [events[3]!]), final],
      'gap',
    ],
    ['an out-of-order event', [watcher(all(1), [events[0]!, events[2]!, events[1]!]), final], 'out-of-order'],
    [
      'an event the final history lacks',
      [watcher(all(1), [...events, ev(5, '/a', 'v1')]), final],
      'not-in-final',
    ],
    [
      'an event the final history holds differently',
      [watcher(all(3), [ev(3, '/a', 'v4')]), final],
      'differs',
    ],
    ['a value nobody wrote', [watcher(all(1), [ev(1, '/a', 'zz')]), final], 'unwritten-value'],
    [
      'an event of another key',
      [watcher({ fromRevision: 1, key: '/a' }, [events[0]!, events[1]!]), final],
      'unrequested',
    ],
    [
      'an event before fromRevision',
      [watcher({ fromRevision: 2, key: '/a' }, [events[0]!]), final],
      'unrequested',
    ],
  ]
  for (const [name, specs, kind] of cases) {
    it(`${name} is invalid (${kind})`, () => {
      const { result } = judge([...writes, ...specs])
      expect(result.verdict).toBe('invalid')
      expect(result.details).toMatchObject({ counts: { [kind]: expect.any(Number) } })
    })
  }

  it('the culprit is the watcher and the write of the event concerned, windowed on that write', () => {
    const dup = watcher(all(1), [events[0]!, events[1]!, events[1]!])
    const { history, result } = judge([...writes, dup, final])
    expect(result.culprit?.opIndexes).toEqual([
      invokeIndexOf(history, dup),
      invokeIndexOf(history, writes[1]!),
    ])
    expect(result.culprit?.window).toEqual({ start: 20, end: 21 })
    expect(result.summary).toContain('duplicate')
  })

  it('the value of a failed write is invalid (in the watcher and in the final history)', () => {
    const failed = { ...writes[0]!, type: 'fail' as const }
    const { result } = judge([failed, ...writes.slice(1), watcher(all(1), events), final])
    expect(result.details).toMatchObject({ counts: { 'failed-write-value': 2 } })
  })

  it('without a final history, watchers that disagree on an event are invalid', () => {
    const other = ev(1, '/a', 'v1', 'create')
    const { result } = judge([...writes, watcher(all(1), events.slice(0, 2)), watcher(all(1), [other])])
    expect(result.verdict).toBe('invalid')
    expect(result.details).toMatchObject({ reference: 'union', counts: { differs: 1 } })
  })

  it('without a final history, a watcher skipping an event another delivered in its range is invalid', () => {
    const { result } = judge([...writes, watcher(all(1), events), watcher(all(1), [events[0]!, events[3]!])])
    expect(result.verdict).toBe('invalid')
    expect(result.details).toMatchObject({ counts: { gap: 2 } })
  })

  it('the final history itself must be ordered and unique', () => {
    const { result } = judge([...writes, watcher(all(1), []), { ...final, result: [...events, events[0]!] }])
    expect(result.verdict).toBe('invalid')
  })
})

describe('watch checker: unknown', () => {
  it('no watcher: unknown', () => {
    expect(judge([...writes, final]).result.verdict).toBe('unknown')
  })

  it('a malformed event list: unknown, naming the op', () => {
    const { result } = judge([...writes, watcher(all(1), [{ revision: 'x' } as unknown as WatchEvent])])
    expect(result.verdict).toBe('unknown')
    expect(result.summary).toMatch(/op \d+: event 0/)
  })
})
