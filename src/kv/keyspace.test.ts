/**
 * Proves the keyspace's own invariants and accounting: byte accounting follows inserts, rewrites
 * and removals back to zero; the space limit refuses growth (KV_SPACE_EXCEEDED, nothing changed)
 * but never deletes or shrinking writes; subtree removal clears the file index, TTL index and lease
 * attachments, and so does a set that puts a new file in an old one's place; and load() refuses
 * snapshot records that break the tree invariants.
 */
import { describe, expect, it } from 'vitest'
import { ApplyContext } from './apply-context.ts'
import { Keyspace } from './keyspace.ts'
import { put } from './mvcc.ts'
import { errorOf } from './test-support.ts'
import { v2Delete, v2Set, v2Update } from './v2-store.ts'

const record = (key: string, extra = {}) => ({
  key,
  dir: false,
  value: 'v',
  createRevision: 1,
  modRevision: 1,
  version: 1,
  deadlineMs: undefined,
  lease: 0,
  ...extra,
})

describe('keyspace accounting and limits', () => {
  it('bytes follow writes and return to zero when everything is deleted', () => {
    const ks = new Keyspace()
    const ctx = new ApplyContext(ks, 0)
    v2Set(ctx, { key: '/a/b', value: 'hello', dir: false })
    v2Update(ctx, { key: '/a/b', value: 'hello, world' })
    expect(ks.bytes).toBeGreaterThan(0)
    v2Delete(ctx, { key: '/a', recursive: true })
    expect([ks.bytes, ks.nodeCount, ks.fileCount]).toEqual([0, 1, 0])
  })

  it('past keyspaceBytesMax growth is refused and nothing changes; deletes and shrinking writes still apply', () => {
    const ks = new Keyspace(400)
    const ctx = new ApplyContext(ks, 0)
    v2Set(ctx, { key: '/big', value: 'x'.repeat(200), dir: false })
    const error = errorOf(() => v2Set(ctx, { key: '/more', value: 'y'.repeat(200), dir: false }))
    expect([error.code, ks.revision, ks.get('/more')]).toEqual(['KV_SPACE_EXCEEDED', 1, undefined])
    expect(errorOf(() => put(ctx, { key: '/p', value: 'z'.repeat(300) })).code).toBe('KV_SPACE_EXCEEDED')
    v2Update(ctx, { key: '/big', value: 'small' })
    v2Delete(ctx, { key: '/big' })
    expect(ks.revision).toBe(3)
  })

  it('removing a subtree clears the TTL index and lease attachments', () => {
    const ks = new Keyspace()
    const ctx = new ApplyContext(ks, 1000)
    ks.leases.grant(1, 5000, 6000)
    v2Set(ctx, { key: '/d/t', value: 'v', dir: false, ttlMs: 10 })
    put(ctx, { key: '/d/l', value: 'v', lease: 1 })
    expect(ks.ttlDue(2000, 10)).toEqual(['/d/t'])
    expect(ks.leases.info(1)?.keys).toEqual(['/d/l'])
    v2Delete(ctx, { key: '/d', recursive: true })
    expect(ks.ttlDue(2000, 10)).toEqual([])
    expect(ks.leases.info(1)?.keys).toEqual([])
  })

  it('a set over a file puts a new node in its place: the TTL index, leases, bytes and the tree follow', () => {
    const ks = new Keyspace()
    const ctx = new ApplyContext(ks, 1000)
    ks.leases.grant(1, 5000, 6000)
    v2Set(ctx, { key: '/d/t', value: 'old', dir: false, ttlMs: 10 })
    put(ctx, { key: '/d/l', value: 'old', lease: 1 })
    v2Set(ctx, { key: '/d/p', value: 'old', dir: false })
    v2Set(ctx, { key: '/d/t', value: 'new value', dir: false })
    v2Set(ctx, { key: '/d/l', value: 'new value', dir: false })
    v2Set(ctx, { key: '/d/p', value: 'new value', dir: false, ttlMs: 20 })
    expect(ks.ttlDue(3000, 10)).toEqual(['/d/p'])
    expect(ks.leases.info(1)?.keys).toEqual([])
    const node = ks.get('/d/t')
    expect([node?.value, node?.createRevision, node?.modRevision, node?.version]).toEqual([
      'new value',
      4,
      4,
      1,
    ])
    expect(ks.get('/d')?.children?.get('t')).toBe(node)
    expect([ks.fileCount, ks.nodeCount]).toEqual([3, 5])
    const fresh = new Keyspace()
    const freshCtx = new ApplyContext(fresh, 1000)
    for (const key of ['/d/t', '/d/l', '/d/p']) v2Set(freshCtx, { key, value: 'new value', dir: false })
    expect(ks.bytes).toBe(fresh.bytes)
    expect(() =>
      ks.replaceFile(ks.get('/d') as never, {
        dir: false,
        value: '',
        revision: 9,
        deadlineMs: undefined,
        lease: 0,
      }),
    ).toThrow(/replaceFile/)
  })

  it.each([
    { name: 'a record without its parent directory', records: [record('/a/b')] },
    { name: 'a record under a file', records: [record('/a'), record('/a/b')] },
    { name: 'a record listed twice', records: [record('/a'), record('/a')] },
    { name: 'an unclean key', records: [record('/a/')] },
    { name: 'a revision above the store revision', records: [record('/a', { modRevision: 9 })] },
    { name: 'an unknown lease', records: [record('/a', { lease: 3 })] },
  ])('load refuses $name', ({ records }) => {
    const ks = new Keyspace()
    ks.revision = 5
    expect(
      errorOf(() => {
        for (const r of records) ks.load(r)
      }).code,
    ).toBe('KV_SNAPSHOT_INVALID')
  })
})
