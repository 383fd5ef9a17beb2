/**
 * Proves the watch hub's index finds exactly the watchers a naive scan of every watcher finds with
 * the matching rule (watch-match.ts), for random watch sets and random events (writes, deletes and
 * expiries of files and directories, refreshes, hidden names), each watcher at most once.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KvEvent } from './events.ts'
import { History } from './history.ts'
import { makeKvConfig } from './limits.ts'
import type { V2Node, V2WriteAction } from './v2-node.ts'
import { WatchHub } from './watch-hub.ts'
import { watchMatches } from './watch-match.ts'

const segment = fc.constantFrom('a', 'b', 'ab', '_h', 'c')
const key = fc.array(segment, { minLength: 0, maxLength: 4 }).map((parts) => '/' + parts.join('/'))
const eventKey = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => '/' + parts.join('/'))
const action = fc.constantFrom<V2WriteAction>(
  'set',
  'create',
  'update',
  'compareAndSwap',
  'delete',
  'compareAndDelete',
  'expire',
)

const watchSpec = fc.record({ key, recursive: fc.boolean(), includeHidden: fc.boolean() })
const eventSpec = fc.record({ key: eventKey, action, dir: fc.boolean(), refresh: fc.boolean() })

function makeEvent(
  spec: { key: string; action: V2WriteAction; dir: boolean; refresh: boolean },
  revision: number,
): KvEvent {
  const removal = spec.action === 'delete' || spec.action === 'compareAndDelete' || spec.action === 'expire'
  const prev: V2Node = spec.dir
    ? { key: spec.key, dir: true, createdIndex: 1, modifiedIndex: 1 }
    : { key: spec.key, value: 'old', createdIndex: 1, modifiedIndex: 1 }
  const node: V2Node = removal
    ? { key: spec.key, createdIndex: 1, modifiedIndex: revision, ...(spec.dir ? { dir: true as const } : {}) }
    : { key: spec.key, value: 'new', createdIndex: 1, modifiedIndex: revision }
  return new KvEvent(spec.action, revision, node, prev, 0, spec.refresh && !removal)
}

describe('watch hub index', () => {
  it('finds exactly the watchers a naive scan finds, each once', () => {
    fc.assert(
      fc.property(
        fc.array(watchSpec, { maxLength: 40 }),
        fc.array(eventSpec, { minLength: 1, maxLength: 30 }),
        (specs, events) => {
          const config = makeKvConfig()
          const hub = new WatchHub(config, new History(config), () => 0)
          const watchers = specs.map((spec) => hub.watch({ ...spec, stream: true }))
          events.forEach((spec, i) => {
            const event = makeEvent(spec, i + 2)
            const indexed = hub.matching(event).map((w) => w.id)
            const naive = watchers.filter((w) => watchMatches(w, event)).map((w) => w.id)
            expect(new Set(indexed).size).toBe(indexed.length)
            expect([...indexed].sort((a, b) => a - b)).toEqual(naive)
          })
        },
      ),
      { numRuns: 300 },
    )
  })

  it('dispatch delivers to the matching watchers only (the index after watchers come and go)', () => {
    fc.assert(
      fc.property(
        fc.array(watchSpec, { maxLength: 20 }),
        fc.array(eventSpec, { minLength: 1, maxLength: 20 }),
        (specs, events) => {
          const config = makeKvConfig()
          const history = new History(config)
          let revision = 0
          const hub = new WatchHub(config, history, () => revision)
          const watchers = specs.map((spec) => hub.watch({ ...spec, stream: true }))
          for (const w of watchers.filter((_, i) => i % 3 === 0)) w.cancel()
          const expected = new Map(watchers.map((w) => [w.id, [] as number[]]))
          for (const spec of events) {
            const event = makeEvent(spec, ++revision)
            history.append([event])
            hub.dispatch([event])
            for (const w of watchers)
              if (w.status === 'live' && watchMatches(w, event)) expected.get(w.id)?.push(revision)
          }
          for (const w of watchers) {
            const got = w.status === 'canceled' ? [] : w.take().map((e) => e.revision)
            expect(got).toEqual(w.status === 'canceled' ? [] : expected.get(w.id))
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})
