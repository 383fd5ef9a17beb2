/**
 * Proves the watch semantics (reference §1.7): waitIndex is inclusive and served from the history;
 * one-shot and stream watches; recursive watches and the hidden rule; deleting or expiring a parent
 * directory notifies watchers below it; refreshes wake nobody; a compacted revision is etcd's 401
 * with the oldest available index; a slow stream watcher is cancelled with a reason after its
 * buffered events (never a gap); a long replay is paged through the history; events of one
 * revision are never split; a restore resumes live watchers from the history; events are encoded
 * once and shared.
 */
import { describe, expect, it } from 'vitest'
import type { KvEvent } from './events.ts'
import { KvStateMachine } from './state-machine.ts'
import { errorOf, newTestStore } from './test-support.ts'

function setter(store: ReturnType<typeof newTestStore>['store']) {
  return (key: string, value = 'v') => store.apply({ op: 'v2.set', key, value, dir: false })
}

const revisions = (events: readonly KvEvent[]) => events.map((e) => e.revision)
const keys = (events: readonly KvEvent[]) => events.map((e) => e.key)

describe('waitIndex and one-shot watches', () => {
  it('waitIndex is inclusive: the first matching event at or after it, from the history', () => {
    const { store, sm } = newTestStore()
    const set = setter(store)
    set('/k', '1')
    set('/other')
    set('/k', '3')
    expect(revisions(sm.watch({ key: '/k', sinceRevision: 1 }).take())).toEqual([1])
    expect(revisions(sm.watch({ key: '/k', sinceRevision: 2 }).take())).toEqual([3])
    expect(revisions(sm.watch({ key: '/k', sinceRevision: 3 }).take())).toEqual([3])
    const waiting = sm.watch({ key: '/k', sinceRevision: 4 })
    expect([waiting.take(), waiting.status]).toEqual([[], 'live'])
    set('/k', '4')
    expect(revisions(waiting.take())).toEqual([4])
    expect(waiting.status).toBe('done')
  })

  it('without waitIndex a watch starts at the next revision and records the start index', () => {
    const { store, sm } = newTestStore()
    const set = setter(store)
    set('/k')
    const watcher = sm.watch({ key: '/k' })
    expect([watcher.sinceRevision, watcher.startRevision]).toEqual([2, 1])
    expect(watcher.take()).toEqual([])
    set('/k')
    set('/k')
    expect(revisions(watcher.take())).toEqual([2])
    expect(watcher.take()).toEqual([])
  })

  it('a future waitIndex skips the events before it', () => {
    const { store, sm } = newTestStore()
    const set = setter(store)
    const watcher = sm.watch({ key: '/k', sinceRevision: 3 })
    set('/k')
    set('/k')
    expect(watcher.take()).toEqual([])
    set('/k')
    expect(revisions(watcher.take())).toEqual([3])
  })

  it('the listener runs synchronously when the event is applied', () => {
    const { store, sm } = newTestStore()
    const watcher = sm.watch({ key: '/k' })
    const seen: number[] = []
    watcher.setListener(() => seen.push(...revisions(watcher.take())))
    setter(store)('/k')
    expect(seen).toEqual([1])
  })
})

describe('streams, recursion and the hidden rule', () => {
  it('a stream watch gets every matching event in order, from the history then live', () => {
    const { store, sm } = newTestStore()
    const set = setter(store)
    set('/k')
    set('/x')
    const watcher = sm.watch({ key: '/k', stream: true, sinceRevision: 1 })
    set('/k')
    expect(revisions(watcher.take())).toEqual([1, 3])
    expect(watcher.status).toBe('live')
    set('/k')
    set('/k')
    expect(revisions(watcher.take())).toEqual([4, 5])
  })

  it('recursive watches see the subtree; plain ones only the key', () => {
    const { store, sm } = newTestStore()
    const set = setter(store)
    const recursive = sm.watch({ key: '/d', recursive: true, stream: true })
    const plain = sm.watch({ key: '/d', stream: true })
    set('/d/a/b')
    set('/dx')
    store.apply({ op: 'v2.update', key: '/d', value: '', ttlMs: 1000 })
    expect(keys(recursive.take())).toEqual(['/d/a/b', '/d'])
    expect(keys(plain.take())).toEqual(['/d'])
  })

  it.each([
    {
      name: 'recursive on / skips a hidden top-level key',
      watch: '/',
      recursive: true,
      key: '/_h',
      sees: false,
    },
    {
      name: 'recursive on / skips keys inside a hidden directory',
      watch: '/',
      recursive: true,
      key: '/a/_h/x',
      sees: false,
    },
    {
      name: 'recursive on /_h sees its own subtree',
      watch: '/_h',
      recursive: true,
      key: '/_h/x',
      sees: true,
    },
    {
      name: 'an exact watch on a hidden key sees it',
      watch: '/a/_h',
      recursive: false,
      key: '/a/_h',
      sees: true,
    },
    { name: 'recursive on /a sees /a/b', watch: '/a', recursive: true, key: '/a/b', sees: true },
  ])('hidden rule, live and from the history: $name', ({ watch, recursive, key, sees }) => {
    const { store, sm } = newTestStore()
    const live = sm.watch({ key: watch, recursive, stream: true })
    setter(store)(key)
    const fromHistory = sm.watch({ key: watch, recursive, stream: true, sinceRevision: 1 })
    expect(live.take().length).toBe(sees ? 1 : 0)
    expect(fromHistory.take().length).toBe(sees ? 1 : 0)
    const internal = sm.watch({ key: watch, recursive: true, includeHidden: true, sinceRevision: 1 })
    expect(internal.take().length).toBe(key.startsWith(watch) ? 1 : 0)
  })

  it('deleting a parent directory notifies watchers of keys below it (live and from the history)', () => {
    const { store, sm } = newTestStore()
    setter(store)('/d/x/y')
    const exact = sm.watch({ key: '/d/x/y' })
    const deeper = sm.watch({ key: '/d/x/y/never-existed', recursive: true })
    const sibling = sm.watch({ key: '/dx' })
    store.apply({ op: 'v2.delete', key: '/d', recursive: true })
    expect(exact.take().map((e) => [e.action, e.key, e.revision])).toEqual([['delete', '/d', 2]])
    expect(deeper.take().length).toBe(1)
    expect(sibling.take()).toEqual([])
    expect(keys(sm.watch({ key: '/d/x/y', sinceRevision: 2 }).take())).toEqual(['/d'])
  })

  it('refresh events wake no watcher and are skipped by history scans', () => {
    const { store, sm } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 1000 })
    const live = sm.watch({ key: '/k', stream: true })
    store.apply({ op: 'v2.update', key: '/k', value: '', ttlMs: 1000, refresh: true })
    expect(live.take()).toEqual([])
    const oneShot = sm.watch({ key: '/k', sinceRevision: 2 })
    expect(oneShot.status).toBe('live')
    setter(store)('/k')
    expect(revisions(oneShot.take())).toEqual([3])
  })
})

describe('history limits and 401', () => {
  it('a revision older than the history is etcd 401 with the oldest available index', () => {
    const { store, sm } = newTestStore({ historyRevisionsMax: 3 })
    const set = setter(store)
    for (let i = 0; i < 5; i++) set('/k')
    expect(sm.history.compactedRevision).toBe(2)
    const error = errorOf(() => sm.watch({ key: '/k', sinceRevision: 2 }))
    expect([error.code, error.errorCode, error.oldestIndex, error.index]).toEqual([
      'KV_EVENT_INDEX_CLEARED',
      401,
      3,
      5,
    ])
    expect(error.etcdCause).toBe('the requested history has been cleared [3/2]')
    expect(revisions(sm.watch({ key: '/k', sinceRevision: 3 }).take())).toEqual([3])
  })

  it('historyBytesMax drops the oldest revisions by size', () => {
    const { store, sm } = newTestStore({ historyBytesMax: 2000 })
    const set = setter(store)
    for (let i = 0; i < 10; i++) set(`/k${i}`, 'x'.repeat(500))
    expect(sm.history.bytes).toBeLessThanOrEqual(2000)
    expect(sm.history.eventCount).toBeGreaterThan(0)
    expect(sm.history.compactedRevision).toBe(10 - sm.history.eventCount)
  })

  it('a syncing stream watcher whose cursor is compacted away is cancelled with the 401', () => {
    const { store, sm } = newTestStore({ historyRevisionsMax: 4 })
    const set = setter(store)
    set('/k')
    const watcher = sm.watch({ key: '/k', stream: true, sinceRevision: 1 })
    for (let i = 0; i < 6; i++) set('/k')
    expect(watcher.take()).toEqual([])
    expect([watcher.status, watcher.error?.errorCode]).toEqual(['canceled', 401])
  })
})

describe('slow consumers and paging', () => {
  it('a stream watcher that falls behind is cancelled explicitly, after its buffered events', () => {
    const { store, sm } = newTestStore({ watcherEventsMax: 3 })
    const set = setter(store)
    const watcher = sm.watch({ key: '/k', stream: true })
    for (let i = 0; i < 5; i++) set('/k')
    expect(watcher.status).toBe('canceled')
    expect(watcher.error?.code).toBe('KV_WATCHER_SLOW')
    expect(revisions(watcher.take())).toEqual([1, 2, 3])
    expect(watcher.take()).toEqual([])
    expect(sm.watcherCount).toBe(0)
  })

  it('events of one revision are never split, even past the buffer size', () => {
    const { store, sm } = newTestStore({ watcherEventsMax: 2 })
    const watcher = sm.watch({ key: '/t', recursive: true, stream: true })
    const puts = ['/t/a', '/t/b', '/t/c'].map((key) => ({ type: 'put' as const, key, value: 'v' }))
    store.apply({ op: 'txn', compare: [], success: puts, failure: [] })
    expect(watcher.status).toBe('live')
    expect(revisions(watcher.take())).toEqual([1, 1, 1])
  })

  it('a long replay is paged through the history in whole revisions, then the watcher goes live', () => {
    const { store, sm } = newTestStore({ watcherEventsMax: 5 })
    const set = setter(store)
    for (let i = 0; i < 23; i++) set(`/p/${i % 3}`)
    const watcher = sm.watch({ key: '/p', recursive: true, stream: true, sinceRevision: 1 })
    const pages: number[][] = []
    for (let page = watcher.take(); page.length > 0; page = watcher.take()) pages.push(revisions(page))
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3])
    expect(pages.flat()).toEqual(Array.from({ length: 23 }, (_, i) => i + 1))
    expect(watcher.status).toBe('live')
    set('/p/x')
    expect(revisions(watcher.take())).toEqual([24])
  })

  it('watchersMax is enforced; a consumer cancel frees the slot', () => {
    const { sm } = newTestStore({ watchersMax: 2 })
    const a = sm.watch({ key: '/a' })
    sm.watch({ key: '/b' })
    expect(errorOf(() => sm.watch({ key: '/c' })).code).toBe('KV_WATCHERS_MAX')
    a.cancel()
    expect(a.status).toBe('canceled')
    expect(sm.watch({ key: '/c' }).status).toBe('live')
  })

  it('closing cancels every watcher with KV_WATCHER_CLEARED and refuses new ones', () => {
    const { sm } = newTestStore()
    const watcher = sm.watch({ key: '/a', stream: true })
    sm.closeWatchers()
    expect([watcher.status, watcher.error?.code]).toEqual(['canceled', 'KV_WATCHER_CLEARED'])
    expect(errorOf(() => sm.watch({ key: '/a' })).errorCode).toBe(400)
  })
})

describe('restore, encoding and iteration', () => {
  it('after a snapshot restore, live watchers resume from the history where they were', () => {
    const lagging = newTestStore()
    const leader = newTestStore()
    for (const t of [lagging, leader]) setter(t.store)('/k', 'same')
    const watcher = lagging.sm.watch({ key: '/k', stream: true })
    setter(leader.store)('/k', 'two')
    setter(leader.store)('/other')
    setter(leader.store)('/k', 'four')
    lagging.sm.restore(leader.sm.snapshot())
    expect(watcher.take().map((e) => e.node.value)).toEqual(['two', 'four'])
    expect(watcher.status).toBe('live')
  })

  it('one event object, and one JSON string, is shared by every watcher (etcd JSON shape)', () => {
    const { store, sm } = newTestStore()
    const a = sm.watch({ key: '/k' })
    const b = sm.watch({ key: '/', recursive: true })
    setter(store)('/k', 'v')
    const [ea] = a.take()
    const [eb] = b.take()
    expect(ea).toBe(eb)
    expect(ea?.json()).toBe(eb?.json())
    expect(ea?.json()).toBe(
      '{"action":"set","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}',
    )
  })

  it('events() iterates a stream until the consumer cancels', async () => {
    const { store, sm } = newTestStore()
    const watcher = sm.watch({ key: '/k', stream: true })
    const got: number[] = []
    const consumer = (async () => {
      for await (const event of watcher.events()) {
        got.push(event.revision)
        if (got.length === 3) watcher.cancel()
      }
    })()
    for (let i = 0; i < 3; i++) {
      setter(store)('/k')
      await Promise.resolve()
    }
    await consumer
    expect(got).toEqual([1, 2, 3])
  })

  it('events() throws the reason when the hub cancels the watcher', async () => {
    const sm = new KvStateMachine()
    const watcher = sm.watch({ key: '/k', stream: true })
    sm.closeWatchers()
    await expect(watcher.events().next()).rejects.toMatchObject({ code: 'KV_WATCHER_CLEARED' })
  })
})
