/**
 * Proves the v3-style operations: per-key createRevision/modRevision/version, ranges (single key,
 * [key, end), prefix, '\0', limit, count, keys only) over files only, deletes of nothing using no
 * revision, txn compares on value/version/createRevision/modRevision/lease (missing keys compare as
 * 0 and fail on value), one revision for a whole txn, atomicity (a failing put changes nothing),
 * the 128-op limit and overlapping-write rejection, and that v2 and v3 views share one keyspace.
 */
import { describe, expect, it } from 'vitest'
import { prefixEnd } from './key-path.ts'
import type { Compare, TxnOp } from './mvcc.ts'
import { errorOf, newTestStore } from './test-support.ts'

describe('put, range, delete', () => {
  it('tracks createRevision, modRevision and version per key', async () => {
    const { store } = newTestStore()
    expect(await store.put({ key: '/a', value: '1' })).toEqual({ revision: 1 })
    await store.put({ key: '/b', value: 'x' })
    expect(await store.put({ key: '/a', value: '2', prevKv: true })).toEqual({
      revision: 3,
      prevKv: { key: '/a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 },
    })
    const { kvs } = await store.range({ key: '/a' })
    expect(kvs).toEqual([{ key: '/a', value: '2', createRevision: 1, modRevision: 3, version: 2, lease: 0 }])
    await store.delete({ key: '/a' })
    await store.put({ key: '/a', value: 'again' })
    expect((await store.range({ key: '/a' })).kvs[0]).toMatchObject({ createRevision: 5, version: 1 })
  })

  it('ranges: prefix, bounds, unbounded, limit, countOnly, keysOnly; directories are invisible', async () => {
    const { store } = newTestStore()
    for (const key of ['/s/a', '/s/b', '/s/c/d', '/sa', '/t']) await store.put({ key, value: key })
    const prefix = await store.range({ key: '/s/', rangeEnd: prefixEnd('/s/') })
    expect(prefix.kvs.map((kv) => kv.key)).toEqual(['/s/a', '/s/b', '/s/c/d'])
    expect((await store.range({ key: '/s/b', rangeEnd: '\0' })).kvs.map((kv) => kv.key)).toEqual([
      '/s/b',
      '/s/c/d',
      '/sa',
      '/t',
    ])
    expect(await store.range({ key: '/s/', rangeEnd: prefixEnd('/s/'), limit: 2 })).toMatchObject({
      count: 3,
      more: true,
    })
    expect(await store.range({ key: '/s/', rangeEnd: prefixEnd('/s/'), countOnly: true })).toMatchObject({
      kvs: [],
      count: 3,
    })
    expect((await store.range({ key: '/t', keysOnly: true })).kvs[0]?.value).toBe('')
    expect((await store.range({ key: '/s/c' })).kvs).toEqual([])
  })

  it('a delete of nothing uses no revision; a range delete uses one for all its keys', async () => {
    const { store, sm } = newTestStore()
    for (const key of ['/r/1', '/r/2', '/r/3']) await store.put({ key, value: 'v' })
    expect(await store.delete({ key: '/nope' })).toEqual({ revision: 3, deleted: 0 })
    expect(await store.delete({ key: '/r/', rangeEnd: prefixEnd('/r/'), prevKv: true })).toMatchObject({
      revision: 4,
      deleted: 3,
    })
    expect(
      sm.history
        .all()
        .filter((e) => e.revision === 4)
        .map((e) => e.action),
    ).toEqual(['delete', 'delete', 'delete'])
  })

  it('put checks: not over a directory (102), not under a file (104), clean keys only, known lease', () => {
    const { store } = newTestStore()
    store.apply({ op: 'put', key: '/d/x', value: 'v' })
    expect(errorOf(() => store.apply({ op: 'put', key: '/d', value: 'v' })).errorCode).toBe(102)
    expect(errorOf(() => store.apply({ op: 'put', key: '/d/x/y', value: 'v' })).errorCode).toBe(104)
    expect(errorOf(() => store.apply({ op: 'put', key: '/d/', value: 'v' })).code).toBe('KV_KEY_INVALID')
    expect(errorOf(() => store.apply({ op: 'put', key: '/', value: 'v' })).code).toBe('KV_KEY_INVALID')
    expect(errorOf(() => store.apply({ op: 'put', key: '/l', value: 'v', lease: 42 })).code).toBe(
      'KV_LEASE_NOT_FOUND',
    )
  })

  it('v2 and v3 share one keyspace and one revision counter', async () => {
    const { store, sm } = newTestStore()
    await store.put({ key: '/_cairn/machines/m1', value: '{"ip":"10.0.0.1"}' })
    store.apply({ op: 'v2.set', key: '/app/config', value: 'x', dir: false })
    expect(sm.v2Get('/_cairn/machines/m1').node).toMatchObject({
      value: '{"ip":"10.0.0.1"}',
      modifiedIndex: 1,
    })
    expect((await store.range({ key: '/app/config' })).kvs[0]?.modRevision).toBe(2)
    expect(sm.v2Get('/').node.nodes?.map((n) => n.key)).toEqual(['/app'])
  })
})

describe('txn', () => {
  const put = (key: string, value: string): TxnOp => ({ type: 'put', key, value })
  const cmp = (
    key: string,
    target: Compare['target'],
    result: Compare['result'],
    value: string | number,
  ): Compare => ({
    key,
    target,
    result,
    value,
  })

  it.each([
    { name: 'value equal', c: cmp('/k', 'value', 'equal', 'v1'), holds: true },
    { name: 'value notEqual', c: cmp('/k', 'value', 'notEqual', 'v1'), holds: false },
    { name: 'value greater (string order)', c: cmp('/k', 'value', 'greater', 'v0'), holds: true },
    { name: 'version equal', c: cmp('/k', 'version', 'equal', 2), holds: true },
    { name: 'version less', c: cmp('/k', 'version', 'less', 2), holds: false },
    { name: 'createRevision equal', c: cmp('/k', 'createRevision', 'equal', 1), holds: true },
    { name: 'modRevision greater', c: cmp('/k', 'modRevision', 'greater', 1), holds: true },
    { name: 'lease equal 0', c: cmp('/k', 'lease', 'equal', 0), holds: true },
    {
      name: 'missing key: createRevision = 0 (create if absent)',
      c: cmp('/missing', 'createRevision', 'equal', 0),
      holds: true,
    },
    { name: 'missing key: modRevision = 0', c: cmp('/missing', 'modRevision', 'equal', 0), holds: true },
    {
      name: 'missing key: a value compare fails',
      c: cmp('/missing', 'value', 'notEqual', 'x'),
      holds: false,
    },
    { name: 'a directory compares as missing', c: cmp('/dir', 'version', 'equal', 0), holds: true },
  ])('compare: $name', async ({ c, holds }) => {
    const { store } = newTestStore()
    await store.put({ key: '/k', value: 'v0' })
    await store.put({ key: '/k', value: 'v1' })
    await store.put({ key: '/dir/x', value: 'x' })
    const result = await store.txn({ compare: [c], success: [], failure: [] })
    expect(result.succeeded).toBe(holds)
  })

  it('the chosen branch applies at one revision; ranges in it see earlier puts', async () => {
    const { store, sm } = newTestStore()
    const result = await store.txn({
      compare: [cmp('/lock', 'createRevision', 'equal', 0)],
      success: [put('/lock', 'me'), put('/data', 'x'), { type: 'range', key: '/lock' }],
      failure: [{ type: 'range', key: '/lock' }],
    })
    expect(result.succeeded).toBe(true)
    expect(result.revision).toBe(1)
    expect(result.responses[2]).toMatchObject({ type: 'range', kvs: [{ key: '/lock', value: 'me' }] })
    expect(sm.history.all().map((e) => e.revision)).toEqual([1, 1])
    const again = await store.txn({
      compare: [cmp('/lock', 'createRevision', 'equal', 0)],
      success: [put('/lock', 'other')],
      failure: [{ type: 'range', key: '/lock' }],
    })
    expect([again.succeeded, again.revision]).toEqual([false, 1])
    expect(again.responses[0]).toMatchObject({ kvs: [{ value: 'me' }] })
  })

  it('is atomic: a put that fails its check leaves every other op of the branch undone', async () => {
    const { store, sm } = newTestStore()
    await store.put({ key: '/f', value: 'file' })
    const error = errorOf(() =>
      store.apply({ op: 'txn', compare: [], success: [put('/ok', 'v'), put('/f/under', 'v')], failure: [] }),
    )
    expect(error.errorCode).toBe(104)
    expect(sm.revision).toBe(1)
    expect((await store.range({ key: '/ok' })).kvs).toEqual([])
  })

  it('a txn that changes nothing uses no revision', async () => {
    const { store } = newTestStore()
    expect(
      (await store.txn({ compare: [], success: [{ type: 'delete', key: '/none' }], failure: [] })).revision,
    ).toBe(0)
  })

  it('rejects more than txnOpsMax ops per list, and overlapping writes', () => {
    const { store } = newTestStore()
    const many = Array.from({ length: 129 }, (_, i) => put(`/k${i}`, 'v'))
    expect(errorOf(() => store.apply({ op: 'txn', compare: [], success: many, failure: [] })).code).toBe(
      'KV_TXN_TOO_MANY_OPS',
    )
    expect(store.apply({ op: 'txn', compare: [], success: many.slice(0, 128), failure: [] })).toMatchObject({
      succeeded: true,
    })
    const overlaps: TxnOp[][] = [
      [put('/a', '1'), put('/a', '2')],
      [put('/a', '1'), put('/a/b', '2')],
      [{ type: 'delete', key: '/x' }, put('/x/y', '1')],
      [put('/x', '1'), { type: 'delete', key: '/x/y' }],
      [{ type: 'delete', key: '/p/', rangeEnd: '/p0' }, put('/p/q', '1')],
    ]
    for (const success of overlaps) {
      expect(errorOf(() => store.apply({ op: 'txn', compare: [], success, failure: [] })).code).toBe(
        'KV_TXN_DUPLICATE_KEY',
      )
    }
    expect(
      store.apply({
        op: 'txn',
        compare: [],
        success: [put('/m/a', '1'), put('/m/b', '2'), { type: 'delete', key: '/m/c' }],
        failure: [],
      }),
    ).toMatchObject({ succeeded: true })
  })
})
