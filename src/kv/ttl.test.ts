/**
 * Proves the TTL and lease rules: a TTL is an absolute deadline from the proposer's stamped clock;
 * set/update without a TTL clears it; refresh keeps the value, uses an index and wakes no watcher;
 * expiry happens only through an `expire` command the leader proposes from expiredAt(now), each
 * key at its own index with an `expire` event; a stale expire (key refreshed or replaced since)
 * does nothing; directory TTLs take the whole subtree; the deadline survives a snapshot (a new
 * leader sees the remaining time, not a fresh TTL); leases grant, keep alive through the log,
 * revoke and expire with their keys at one revision.
 */
import { describe, expect, it } from 'vitest'
import { decodeCommand, encodeCommand } from './commands.ts'
import { KvStateMachine } from './state-machine.ts'
import { errorOf, newTestStore, testEpochMs } from './test-support.ts'
import type { V2Result } from './v2-node.ts'

describe('v2 TTL', () => {
  it('a TTL is stored as an absolute deadline from the command clock', () => {
    const { store, sm } = newTestStore()
    const result = store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 5000 }) as V2Result
    expect(result.node.expiresAtMs).toBe(testEpochMs + 5000)
    expect(sm.v2Get('/k').node.expiresAtMs).toBe(testEpochMs + 5000)
  })

  it('update, set and compareAndSwap without a TTL make the key permanent (etcd: ttl= clears)', () => {
    const { store, sm } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 5000 })
    store.apply({ op: 'v2.update', key: '/k', value: 'w' })
    expect(sm.v2Get('/k').node.expiresAtMs).toBeUndefined()
    store.apply({ op: 'v2.cas', key: '/k', value: 'x', prevValue: 'w', ttlMs: 1000 })
    expect(sm.v2Get('/k').node.expiresAtMs).toBe(testEpochMs + 1000)
    store.apply({ op: 'v2.cas', key: '/k', value: 'y', prevValue: 'x' })
    expect(sm.expiredAt(testEpochMs + 10_000)).toBeUndefined()
  })

  it('refresh resets the deadline, keeps the value, uses an index, and is marked refresh', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'keep', dir: false, ttlMs: 5000 })
    const watcher = sm.watch({ key: '/k', stream: true })
    clock.advance(3000)
    const refreshed = store.apply({
      op: 'v2.update',
      key: '/k',
      value: '',
      ttlMs: 5000,
      refresh: true,
    }) as V2Result
    expect(refreshed).toMatchObject({ action: 'update', refresh: true, index: 2 })
    expect(refreshed.node).toEqual({
      key: '/k',
      value: 'keep',
      createdIndex: 1,
      modifiedIndex: 2,
      expiresAtMs: clock.nowMs + 5000,
    })
    expect(watcher.take()).toEqual([])
    expect(sm.history.all().map((e) => [e.revision, e.refresh])).toEqual([
      [1, false],
      [2, true],
    ])
  })

  it('a refresh through set keeps the value (etcd recreates the node: new createdIndex)', () => {
    const { store } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'keep', dir: false, ttlMs: 5000 })
    const result = store.apply({
      op: 'v2.set',
      key: '/k',
      value: '',
      dir: false,
      ttlMs: 9000,
      refresh: true,
    }) as V2Result
    expect(result.node).toMatchObject({ value: 'keep', createdIndex: 2, expiresAtMs: testEpochMs + 9000 })
    expect(result.refresh).toBe(true)
  })

  it('nothing expires inside apply: the key stays until an expire command applies', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 1000 })
    clock.advance(5000)
    expect(sm.v2Get('/k').node.value).toBe('v')
    expect(sm.expiredAt(clock.nowMs)).toEqual({ keys: [{ key: '/k', modRevision: 1 }], leases: [] })
    expect(sm.expiredAt(testEpochMs + 999)).toBeUndefined()
    const result = store.expire()
    expect(result).toEqual({ revision: 2, expiredKeys: 1, expiredLeases: 0 })
    expect(errorOf(() => sm.v2Get('/k')).errorCode).toBe(100)
    const event = sm.history.all()[1]
    expect([event?.action, event?.node, event?.prevNode?.value]).toEqual([
      'expire',
      { key: '/k', createdIndex: 1, modifiedIndex: 2 },
      'v',
    ])
  })

  it('each expired key uses its own index (etcd expires keys one by one)', () => {
    const { store, sm, clock } = newTestStore()
    for (const key of ['/a', '/b', '/c'])
      store.apply({ op: 'v2.set', key, value: key, dir: false, ttlMs: 10 })
    clock.advance(10)
    expect(store.expire()).toEqual({ revision: 6, expiredKeys: 3, expiredLeases: 0 })
    expect(
      sm.history
        .all()
        .slice(3)
        .map((e) => [e.revision, e.action, e.key]),
    ).toEqual([
      [4, 'expire', '/a'],
      [5, 'expire', '/b'],
      [6, 'expire', '/c'],
    ])
  })

  it('a stale expire does nothing: the key was refreshed, replaced or is not yet due by the command clock', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 1000 })
    clock.advance(1000)
    const stale = sm.expireCommand('leader-1', clock.nowMs)
    store.apply({ op: 'v2.update', key: '/k', value: '', ttlMs: 1000, refresh: true })
    const data = encodeCommand(stale as NonNullable<typeof stale>)
    const outcome = sm.apply({ index: sm.appliedIndex + 1, term: 2, type: 'normal', data })
    expect(outcome).toMatchObject({ type: 'command', id: 'leader-1', ok: true, result: { expiredKeys: 0 } })
    expect(sm.revision).toBe(2)
    // Same version, but the command's clock says it is not due yet.
    const early = { ...decodeCommand(data), now: clock.nowMs - 1 }
    expect(early.op).toBe('expire')
    const early2 = sm.apply({
      index: sm.appliedIndex + 1,
      term: 2,
      type: 'normal',
      data: encodeCommand(early),
    })
    expect(early2).toMatchObject({ ok: true, result: { expiredKeys: 0 } })
  })

  it('a directory TTL expires the whole subtree in one event; watchers below it are told', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'v2.set', key: '/d', value: '', dir: true, ttlMs: 2000 })
    store.apply({ op: 'v2.set', key: '/d/x/y', value: 'y', dir: false })
    const below = sm.watch({ key: '/d/x/y' })
    clock.advance(2000)
    store.expire()
    expect(sm.stats().nodes).toBe(1)
    const [event] = below.take()
    expect([event?.action, event?.key, event?.node.dir]).toEqual(['expire', '/d', true])
  })

  it('the deadline is replicated state: a member restored from a snapshot expires at the same instant', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false, ttlMs: 60_000 })
    clock.advance(45_000) // the old leader fails 45 s in
    const newLeader = new KvStateMachine()
    newLeader.restore(sm.snapshot())
    expect(newLeader.expiredAt(testEpochMs + 59_999)).toBeUndefined()
    expect(newLeader.expiredAt(testEpochMs + 60_000)?.keys).toEqual([{ key: '/k', modRevision: 1 }])
  })

  it('expiredAt lists at most expireBatchMax items, earliest deadline first', () => {
    const { store, sm } = newTestStore()
    for (let i = 0; i < 1005; i++) {
      store.apply({ op: 'v2.set', key: `/k${i}`, value: '', dir: false, ttlMs: 2000 - i })
    }
    const batch = sm.expiredAt(testEpochMs + 5000)
    expect(batch?.keys.length).toBe(1000)
    expect(batch?.keys[0]?.key).toBe('/k1004')
  })
})

describe('leases', () => {
  it('grant picks ids above every id used, keep-alive restarts the TTL from the command clock, no revision is used', () => {
    const { store, sm, clock } = newTestStore()
    const lease = store.apply({ op: 'lease.grant', ttlMs: 10_000 }) as { id: number; deadlineMs: number }
    expect(lease).toEqual({ id: 1, ttlMs: 10_000, deadlineMs: testEpochMs + 10_000 })
    expect(store.apply({ op: 'lease.grant', lease: 7, ttlMs: 1000 })).toMatchObject({ id: 7 })
    expect(store.apply({ op: 'lease.grant', ttlMs: 1000 })).toMatchObject({ id: 8 })
    clock.advance(4000)
    expect(store.apply({ op: 'lease.keepAlive', lease: 1 })).toEqual({
      id: 1,
      ttlMs: 10_000,
      deadlineMs: clock.nowMs + 10_000,
    })
    expect(sm.revision).toBe(0)
    expect(errorOf(() => store.apply({ op: 'lease.grant', lease: 7, ttlMs: 1000 })).code).toBe(
      'KV_LEASE_EXISTS',
    )
    expect(errorOf(() => store.apply({ op: 'lease.keepAlive', lease: 99 })).code).toBe('KV_LEASE_NOT_FOUND')
  })

  it('revoke deletes the attached keys at one revision; a put without the lease detaches it', async () => {
    const { store, sm } = newTestStore()
    const { id } = await store.leaseGrant({ ttlMs: 10_000 })
    await store.put({ key: '/s/a', value: 'a', lease: id })
    await store.put({ key: '/s/b', value: 'b', lease: id })
    await store.put({ key: '/s/c', value: 'c', lease: id })
    await store.put({ key: '/s/c', value: 'c2' })
    expect(sm.lease(id)?.keys).toEqual(['/s/a', '/s/b'])
    expect(await store.leaseRevoke(id)).toEqual({ revision: 5, deleted: 2 })
    expect(
      sm.history
        .all()
        .slice(-2)
        .map((e) => [e.revision, e.action, e.key]),
    ).toEqual([
      [5, 'delete', '/s/a'],
      [5, 'delete', '/s/b'],
    ])
    expect((await store.range({ key: '/s/', rangeEnd: '/s0' })).kvs.map((kv) => kv.key)).toEqual(['/s/c'])
    expect(sm.lease(id)).toBeUndefined()
  })

  it('an expired lease is revoked by the leader expire command: its keys expire at one revision', async () => {
    const { store, sm, clock } = newTestStore()
    const { id } = await store.leaseGrant({ ttlMs: 3000 })
    await store.put({ key: '/m/1', value: 'x', lease: id })
    clock.advance(2000)
    await store.leaseKeepAlive(id)
    clock.advance(2999)
    expect(sm.expiredAt(clock.nowMs)).toBeUndefined()
    clock.advance(1)
    expect(sm.expiredAt(clock.nowMs)).toEqual({ keys: [], leases: [id] })
    expect(store.expire()).toEqual({ revision: 2, expiredKeys: 0, expiredLeases: 1 })
    expect(sm.history.all().at(-1)?.action).toBe('expire')
    expect(errorOf(() => store.apply({ op: 'put', key: '/m/2', value: 'x', lease: id })).code).toBe(
      'KV_LEASE_NOT_FOUND',
    )
  })

  it('a lease without keys expires without using a revision', () => {
    const { store, sm, clock } = newTestStore()
    store.apply({ op: 'lease.grant', ttlMs: 10 })
    clock.advance(10)
    expect(store.expire()).toEqual({ revision: 0, expiredKeys: 0, expiredLeases: 1 })
    expect(sm.revision).toBe(0)
  })
})
