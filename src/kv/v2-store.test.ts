/**
 * Proves the etcd v2 store semantics (etcd 2.3 store.go, reference §1.4–1.6): every error code a
 * write or read can raise with its etcd number and cause, prevExist/CAS/CAD compare rules
 * (prevIndex=0 passes), directory rules, hidden keys, in-order keys, recursive delete, result
 * shapes (action, node, prevNode, created/modified indexes) and the index rules: one revision per
 * successful write, none for a failed write or a read.
 */
import { describe, expect, it } from 'vitest'
import type { UnstampedCommand } from './local-kv-store.ts'
import { decodeSnapshot } from './snapshot-codec.ts'
import { errorOf, newTestStore } from './test-support.ts'
import { isCreated, type V2Result } from './v2-node.ts'

type Cmd = UnstampedCommand

const set = (key: string, value = 'v', extra: Partial<Cmd> = {}): Cmd =>
  ({ op: 'v2.set', key, value, dir: false, ...extra }) as Cmd
const mkdir = (key: string): Cmd => ({ op: 'v2.set', key, value: '', dir: true })
const create = (key: string, value = 'v', extra: Partial<Cmd> = {}): Cmd =>
  ({ op: 'v2.create', key, value, dir: false, ...extra }) as Cmd
const update = (key: string, value: string, extra: Partial<Cmd> = {}): Cmd =>
  ({ op: 'v2.update', key, value, ...extra }) as Cmd
const cas = (key: string, value: string, prevValue?: string, prevIndex?: number): Cmd => ({
  op: 'v2.cas',
  key,
  value,
  ...(prevValue === undefined ? {} : { prevValue }),
  ...(prevIndex === undefined ? {} : { prevIndex }),
})
const cad = (key: string, prevValue?: string, prevIndex?: number): Cmd => ({
  op: 'v2.cad',
  key,
  ...(prevValue === undefined ? {} : { prevValue }),
  ...(prevIndex === undefined ? {} : { prevIndex }),
})
const del = (key: string, extra: { dir?: boolean; recursive?: boolean } = {}): Cmd => ({
  op: 'v2.delete',
  key,
  ...extra,
})

function storeWith(...setup: Cmd[]) {
  const t = newTestStore()
  for (const command of setup) t.store.apply(command)
  return t
}

describe('etcd v2 errors: each code with its number and cause', () => {
  const cases: { name: string; setup: Cmd[]; act: Cmd; code: string; errorCode: number; cause: string }[] = [
    {
      name: '100 update of a missing key',
      setup: [],
      act: update('/a', 'x'),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/a',
    },
    {
      name: '100 names the first missing segment',
      setup: [mkdir('/a')],
      act: update('/a/b/c', 'x'),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/a/b',
    },
    {
      name: '100 delete of a missing key',
      setup: [],
      act: del('/nope'),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/nope',
    },
    {
      name: '100 CAS of a missing key',
      setup: [],
      act: cas('/a', 'x', 'y'),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/a',
    },
    {
      name: '100 CAD of a missing key',
      setup: [],
      act: cad('/a', 'y'),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/a',
    },
    {
      name: '100 refresh (set) of a missing key',
      setup: [],
      act: set('/a', '', { ttlMs: 5000, refresh: true }),
      code: 'KV_KEY_NOT_FOUND',
      errorCode: 100,
      cause: '/a',
    },
    {
      name: '101 CAS value mismatch',
      setup: [set('/a', 'one')],
      act: cas('/a', 'x', 'two'),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[two != one]',
    },
    {
      name: '101 CAS index mismatch',
      setup: [set('/a', 'one')],
      act: cas('/a', 'x', undefined, 8),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[8 != 1]',
    },
    {
      name: '101 CAS both mismatch',
      setup: [set('/a', 'one')],
      act: cas('/a', 'x', 'two', 8),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[two != one] [8 != 1]',
    },
    {
      name: '101 CAS value matches, index does not',
      setup: [set('/a', 'one')],
      act: cas('/a', 'x', 'one', 8),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[8 != 1]',
    },
    {
      name: '101 CAD value mismatch',
      setup: [set('/a', 'one')],
      act: cad('/a', 'two'),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[two != one]',
    },
    {
      name: '101 CAD index mismatch',
      setup: [set('/a', 'one')],
      act: cad('/a', undefined, 3),
      code: 'KV_COMPARE_FAILED',
      errorCode: 101,
      cause: '[3 != 1]',
    },
    {
      name: '102 set over a directory',
      setup: [mkdir('/d')],
      act: set('/d'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '102 set dir=true over a directory',
      setup: [mkdir('/d')],
      act: mkdir('/d'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '102 CAS on a directory',
      setup: [mkdir('/d')],
      act: cas('/d', 'x', 'y'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '102 CAD on a directory',
      setup: [mkdir('/d')],
      act: cad('/d', 'y'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '102 CAD on the root',
      setup: [],
      act: cad('/', 'y'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/',
    },
    {
      name: '102 update of a directory with a value',
      setup: [mkdir('/d')],
      act: update('/d', 'x'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '102 delete of a directory without dir or recursive',
      setup: [mkdir('/d')],
      act: del('/d'),
      code: 'KV_NOT_FILE',
      errorCode: 102,
      cause: '/d',
    },
    {
      name: '104 set under a file',
      setup: [set('/f')],
      act: set('/f/x'),
      code: 'KV_NOT_DIR',
      errorCode: 104,
      cause: '/f',
    },
    {
      name: '104 create deep under a file',
      setup: [set('/a/f')],
      act: create('/a/f/x/y'),
      code: 'KV_NOT_DIR',
      errorCode: 104,
      cause: '/a/f',
    },
    {
      name: '104 POST into a file',
      setup: [set('/q')],
      act: create('/q', 'job', { unique: true }),
      code: 'KV_NOT_DIR',
      errorCode: 104,
      cause: '/q',
    },
    {
      name: '104 update under a file',
      setup: [set('/f')],
      act: update('/f/x', 'v'),
      code: 'KV_NOT_DIR',
      errorCode: 104,
      cause: '/f',
    },
    {
      name: '105 create of an existing file',
      setup: [set('/a')],
      act: create('/a'),
      code: 'KV_NODE_EXISTS',
      errorCode: 105,
      cause: '/a',
    },
    {
      name: '105 create of an existing directory',
      setup: [mkdir('/d')],
      act: create('/d', '', { dir: true }),
      code: 'KV_NODE_EXISTS',
      errorCode: 105,
      cause: '/d',
    },
    {
      name: '107 set of the root',
      setup: [],
      act: set('/'),
      code: 'KV_ROOT_READ_ONLY',
      errorCode: 107,
      cause: '/',
    },
    {
      name: '107 create of the root',
      setup: [],
      act: create(''),
      code: 'KV_ROOT_READ_ONLY',
      errorCode: 107,
      cause: '/',
    },
    {
      name: '107 update of the root',
      setup: [],
      act: update('/', ''),
      code: 'KV_ROOT_READ_ONLY',
      errorCode: 107,
      cause: '/',
    },
    {
      name: '107 CAS of the root',
      setup: [],
      act: cas('/', 'x', 'y'),
      code: 'KV_ROOT_READ_ONLY',
      errorCode: 107,
      cause: '/',
    },
    {
      name: '107 delete of the root (recursive)',
      setup: [],
      act: del('/', { recursive: true }),
      code: 'KV_ROOT_READ_ONLY',
      errorCode: 107,
      cause: '/',
    },
    {
      name: '108 dir=true on a non-empty directory',
      setup: [set('/d/x')],
      act: del('/d', { dir: true }),
      code: 'KV_DIR_NOT_EMPTY',
      errorCode: 108,
      cause: '/d',
    },
    {
      name: '108 counts hidden children too',
      setup: [set('/d/_h')],
      act: del('/d', { dir: true }),
      code: 'KV_DIR_NOT_EMPTY',
      errorCode: 108,
      cause: '/d',
    },
  ]

  it.each(cases)('$name', ({ setup, act, code, errorCode, cause }) => {
    const { store, sm } = storeWith(...setup)
    const before = sm.revision
    const snapshotBefore = sm.snapshot()
    const error = errorOf(() => store.apply(act))
    expect([error.code, error.errorCode, error.etcdCause]).toEqual([code, errorCode, cause])
    expect(error.index).toBe(before)
    expect(error.v2Body()).toEqual({ errorCode, message: error.etcdMessage, cause, index: before })
    // A failed write changes nothing but the applied index.
    expect(sm.revision).toBe(before)
    expect(stripApplied(sm.snapshot())).toEqual(stripApplied(snapshotBefore))
  })

  it('reads raise 100 and 104 the same way', () => {
    const { sm } = storeWith(set('/f'), mkdir('/d'))
    expect(errorOf(() => sm.v2Get('/x/y')).etcdCause).toBe('/x')
    expect(errorOf(() => sm.v2Get('/d/y')).etcdCause).toBe('/d/y')
    const notDir = errorOf(() => sm.v2Get('/f/y'))
    expect([notDir.errorCode, notDir.etcdCause]).toEqual([104, '/f'])
  })
})

describe('etcd v2 writes: results and indexes', () => {
  it('set creates a file at the next index; over a file it replaces the node (new createdIndex, prevNode)', () => {
    const { store } = newTestStore()
    const first = store.apply(set('/a', 'one')) as V2Result
    expect(first).toEqual({
      action: 'set',
      node: { key: '/a', value: 'one', createdIndex: 1, modifiedIndex: 1 },
      index: 1,
    })
    expect(isCreated(first)).toBe(true)
    const second = store.apply(set('/a', 'two')) as V2Result
    expect(second).toEqual({
      action: 'set',
      node: { key: '/a', value: 'two', createdIndex: 2, modifiedIndex: 2 },
      prevNode: { key: '/a', value: 'one', createdIndex: 1, modifiedIndex: 1 },
      index: 2,
    })
    expect(isCreated(second)).toBe(false)
  })

  it('set dir=true over a file replaces it with a directory', () => {
    const { store } = storeWith(set('/a', 'one'))
    const result = store.apply(mkdir('/a')) as V2Result
    expect(result.node).toEqual({ key: '/a', dir: true, createdIndex: 2, modifiedIndex: 2 })
    expect(result.prevNode?.value).toBe('one')
  })

  it('intermediate directories are created with the write, at its index, without events of their own', () => {
    const { store, sm } = storeWith(set('/x', '1'))
    store.apply(set('/a/b/c', 'deep'))
    const a = sm.v2Get('/a', { recursive: true }).node
    expect(a).toEqual({
      key: '/a',
      dir: true,
      createdIndex: 2,
      modifiedIndex: 2,
      nodes: [
        {
          key: '/a/b',
          dir: true,
          createdIndex: 2,
          modifiedIndex: 2,
          nodes: [{ key: '/a/b/c', value: 'deep', createdIndex: 2, modifiedIndex: 2 }],
        },
      ],
    })
    expect(sm.history.all().map((e) => e.key)).toEqual(['/x', '/a/b/c'])
  })

  it('create (prevExist=false) and update (prevExist=true)', () => {
    const { store } = newTestStore()
    const created = store.apply(create('/a', 'one')) as V2Result
    expect([created.action, created.node.createdIndex, isCreated(created)]).toEqual(['create', 1, true])
    const updated = store.apply(update('/a', 'two')) as V2Result
    expect(updated).toEqual({
      action: 'update',
      node: { key: '/a', value: 'two', createdIndex: 1, modifiedIndex: 2 },
      prevNode: { key: '/a', value: 'one', createdIndex: 1, modifiedIndex: 1 },
      index: 2,
    })
  })

  it.each([
    { name: 'value matches', prevValue: 'one', prevIndex: undefined },
    { name: 'index matches', prevValue: undefined, prevIndex: 1 },
    { name: 'both match', prevValue: 'one', prevIndex: 1 },
    { name: 'prevIndex=0 passes (only the value is compared)', prevValue: 'one', prevIndex: 0 },
  ])('compareAndSwap succeeds when $name', ({ prevValue, prevIndex }) => {
    const { store } = storeWith(set('/a', 'one'))
    const result = store.apply(cas('/a', 'two', prevValue, prevIndex)) as V2Result
    expect(result.action).toBe('compareAndSwap')
    expect(result.node).toEqual({ key: '/a', value: 'two', createdIndex: 1, modifiedIndex: 2 })
    expect(result.prevNode?.value).toBe('one')
  })

  it('compareAndDelete removes the file: node without value, modifiedIndex = the delete index', () => {
    const { store, sm } = storeWith(set('/a', 'one'))
    const result = store.apply(cad('/a', 'one', 1)) as V2Result
    expect(result).toEqual({
      action: 'compareAndDelete',
      node: { key: '/a', createdIndex: 1, modifiedIndex: 2 },
      prevNode: { key: '/a', value: 'one', createdIndex: 1, modifiedIndex: 1 },
      index: 2,
    })
    expect(errorOf(() => sm.v2Get('/a')).errorCode).toBe(100)
  })

  it('delete: a file; an empty directory with dir=true; a tree with recursive=true (one event)', () => {
    const { store, sm } = storeWith(set('/f'), mkdir('/empty'), set('/t/a/b'), set('/t/c'))
    expect((store.apply(del('/f')) as V2Result).node).toEqual({
      key: '/f',
      createdIndex: 1,
      modifiedIndex: 5,
    })
    expect((store.apply(del('/empty', { dir: true })) as V2Result).node).toEqual({
      key: '/empty',
      dir: true,
      createdIndex: 2,
      modifiedIndex: 6,
    })
    const tree = store.apply(del('/t', { recursive: true })) as V2Result
    expect(tree.node).toEqual({ key: '/t', dir: true, createdIndex: 3, modifiedIndex: 7 })
    expect(tree.prevNode).toEqual({ key: '/t', dir: true, createdIndex: 3, modifiedIndex: 3 })
    expect(sm.v2Get('/').node.nodes).toEqual([])
    expect(sm.history.all().length).toBe(7)
    expect(sm.stats().nodes).toBe(1)
  })

  it('dir=true also deletes a file (etcd: only directories need the flag)', () => {
    const { store } = storeWith(set('/f'))
    expect((store.apply(del('/f', { dir: true })) as V2Result).action).toBe('delete')
  })

  it('update of a directory with an empty value sets its TTL (directory TTLs)', () => {
    const { store, clock } = storeWith(mkdir('/d'))
    const result = store.apply(update('/d', '', { ttlMs: 30_000 })) as V2Result
    expect(result.node).toEqual({
      key: '/d',
      dir: true,
      createdIndex: 1,
      modifiedIndex: 2,
      expiresAtMs: clock.nowMs + 30_000,
    })
  })

  it('keys are cleaned like Go path.Clean: //a/./b/../c/ is /a/c', () => {
    const { store, sm } = newTestStore()
    expect((store.apply(set('//a/./b/../c/', 'v')) as V2Result).node.key).toBe('/a/c')
    expect(sm.v2Get('a/c').node.value).toBe('v')
  })

  it('failed writes and reads use no index; each successful write uses exactly one', () => {
    const { store, sm } = newTestStore()
    store.apply(set('/a'))
    errorOf(() => store.apply(create('/a')))
    errorOf(() => store.apply(cas('/a', 'x', 'nope')))
    sm.v2Get('/a')
    expect(sm.revision).toBe(1)
    store.apply(update('/a', 'b'))
    store.apply(del('/a'))
    expect(sm.revision).toBe(3)
  })
})

describe('etcd v2 reads: listings, hidden keys, in-order keys', () => {
  it('a directory lists its direct children sorted; child directories without their children', () => {
    const { sm } = storeWith(set('/d/b', '2'), set('/d/a', '1'), set('/d/sub/x', 'x'))
    expect(sm.v2Get('/d').node.nodes).toEqual([
      { key: '/d/a', value: '1', createdIndex: 2, modifiedIndex: 2 },
      { key: '/d/b', value: '2', createdIndex: 1, modifiedIndex: 1 },
      { key: '/d/sub', dir: true, createdIndex: 3, modifiedIndex: 3 },
    ])
  })

  it('hidden (_-prefixed) names are left out of listings at every level but readable directly', () => {
    const { sm } = storeWith(
      set('/d/_h', 'hidden'),
      set('/d/v', 'visible'),
      set('/d/s/_x', 'x'),
      set('/_top/k', 'k'),
    )
    expect(sm.v2Get('/d', { recursive: true }).node.nodes?.map((n) => n.key)).toEqual(['/d/s', '/d/v'])
    expect(sm.v2Get('/d/s').node.nodes).toEqual([])
    expect(sm.v2Get('/').node.nodes?.map((n) => n.key)).toEqual(['/d'])
    expect(sm.v2Get('/d/_h').node.value).toBe('hidden')
    expect(sm.v2Get('/_top').node.nodes?.map((n) => n.key)).toEqual(['/_top/k'])
  })

  it('POST creates in-order keys named by the new index (%020d), strictly increasing with gaps', () => {
    const { store, sm } = storeWith(set('/x'), set('/y'), set('/z'), set('/w'), set('/v'))
    const first = store.apply(create('/queue', 'Job1', { unique: true })) as V2Result
    expect(first.node).toEqual({
      key: '/queue/00000000000000000006',
      value: 'Job1',
      createdIndex: 6,
      modifiedIndex: 6,
    })
    store.apply(set('/other'))
    const second = store.apply(create('/queue', 'Job2', { unique: true })) as V2Result
    expect(second.node.key).toBe('/queue/00000000000000000008')
    expect(sm.v2Get('/queue', { sorted: true }).node.nodes?.map((n) => n.value)).toEqual(['Job1', 'Job2'])
  })

  it('the root lists everything visible and carries no indexes', () => {
    const { sm } = storeWith(set('/a'))
    const root = sm.v2Get('/')
    expect(root.node).toMatchObject({ key: '/', dir: true, createdIndex: 0, modifiedIndex: 0 })
    expect(root.index).toBe(1)
  })
})

/** The decoded snapshot without its appliedIndex, to compare state only. */
function stripApplied(snapshot: Uint8Array) {
  return { ...decodeSnapshot(snapshot), appliedIndex: 0 }
}
