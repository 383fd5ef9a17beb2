/**
 * The machine lease against a real in-process store and catalog, with vitest's fake timers driving
 * both the keep-alive timer and the store's clock. "Cut off" is a wrapper whose lease calls fail
 * the way an unreachable store's would, while the store itself expires the lease as the leader does.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { startCatalogFeed } from '../catalog/feed.ts'
import { decodeMachine, machineKey } from '../catalog/records.ts'
import { CatalogState } from '../catalog/state.ts'
import { CatalogWriter } from '../catalog/writer.ts'
import { CairnError } from '../errors.ts'
import { LocalKvStore } from '../kv/local-kv-store.ts'
import { MachineLease, nodeIdOf } from './machine.ts'

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})

async function setup(options: { api?: string } = {}) {
  const store = new LocalKvStore(undefined, () => Date.now())
  const state = new CatalogState()
  await startCatalogFeed(store, state).ready
  const net = { cut: false, stuck: 0 }
  const guarded = {
    leaseGrant: (req: { ttlMs: number }) => (net.cut ? Promise.reject(unreachable()) : store.leaseGrant(req)),
    leaseKeepAlive: (id: number) => {
      if (net.stuck > 0) {
        net.stuck--
        return new Promise<never>(() => {}) // sent to a leader that died: never answered
      }
      return net.cut ? Promise.reject(unreachable()) : store.leaseKeepAlive(id)
    },
    leaseRevoke: (id: number) => (net.cut ? Promise.reject(unreachable()) : store.leaseRevoke(id)),
  }
  const machine = new MachineLease({
    store: guarded,
    writer: new CatalogWriter(store),
    node: 'm1',
    address: '10.1.0.1',
    datacenter: 'dc1',
    meta: { zone: 'eu-1a', region: 'eu' },
    ttlMs: 3000,
    rejoinStableMs: 3000,
    registered: () => state.machineAlive('m1') === true,
    monotonic: () => Date.now(),
    ...options,
  })
  return { store, state, machine, net }
}

function unreachable(): CairnError {
  return new CairnError('RAFT_NO_LEADER', 'test: cut off')
}

/** Advances time in keep-alive steps, letting the leader's expiry run on each step. */
async function advance(store: LocalKvStore, ms: number) {
  for (let left = ms; left > 0; left -= 250) {
    await vi.advanceTimersByTimeAsync(Math.min(250, left))
    store.expire()
  }
}

describe('MachineLease', () => {
  it('registers the node as an agent node with its metadata and keeps the machine alive', async () => {
    const { store, state, machine } = await setup()
    await machine.start()
    expect(state.nodeEntry('m1')?.record).toMatchObject({
      ID: nodeIdOf('m1'),
      Address: '10.1.0.1',
      Agent: true,
      Meta: { zone: 'eu-1a', region: 'eu' },
    })
    expect(state.machineAlive('m1')).toBe(true)
    await advance(store, 20_000)
    expect(state.machineAlive('m1')).toBe(true)
    expect(machine.status).toBe('alive')
    await machine.stop()
  })

  it('a cut-off machine fails within the TTL, and is served again only after stable contact', async () => {
    const { store, state, machine, net } = await setup()
    await machine.start()
    net.cut = true
    await advance(store, 2500)
    expect(state.machineAlive('m1')).toBe(true)
    await advance(store, 1000) // 3.5 s after the last keep-alive at most
    expect(state.machineAlive('m1')).toBe(false)

    net.cut = false
    await advance(store, 1500) // the keep-alive finds the lease gone; a new one is granted
    expect(machine.losses).toBe(1)
    expect(machine.status).toBe('rejoining')
    expect(state.machineAlive('m1')).toBe(false) // damped: not yet
    await advance(store, 3500)
    expect(machine.status).toBe('alive')
    expect(state.machineAlive('m1')).toBe(true)
    await machine.stop()
  })

  it('a keep-alive that never answers does not hold back the next ones', async () => {
    const { store, state, machine, net } = await setup()
    await machine.start()
    net.stuck = 1
    await advance(store, 10_000)
    expect(state.machineAlive('m1')).toBe(true)
    expect(machine.losses).toBe(0)
    await machine.stop()
  })

  it('a node deregistered behind its back is registered again on the next keep-alive', async () => {
    const { store, state, machine } = await setup()
    await machine.start()
    expect(await new CatalogWriter(store).deregisterNode('m1')).toBe(true)
    expect(state.nodeEntry('m1')).toBeUndefined()
    await advance(store, 1500)
    expect(state.nodeEntry('m1')?.record.Agent).toBe(true)
    expect(state.machineAlive('m1')).toBe(true)
    await machine.stop()
  })

  it('writes MachineRecord.Api when given, so other agents can reach this one', async () => {
    const { store, machine } = await setup({ api: 'http://10.1.0.1:4001' })
    await machine.start()
    const kv = (await store.range({ key: machineKey('m1') })).kvs[0]
    expect(decodeMachine(kv?.value ?? '')?.Api).toBe('http://10.1.0.1:4001')
    await machine.stop()
  })

  it('fence deadline: the send time of the last acknowledged request + TTL; never later; gone with the lease', async () => {
    const { store, machine, net } = await setup()
    const changes: Array<number | undefined> = []
    machine.onLeaseChange(() => changes.push(machine.fenceDeadlineMs))
    const t0 = Date.now()
    expect(machine.fenceDeadlineMs).toBeUndefined()
    await machine.start()
    expect(machine.fenceDeadlineMs).toBe(t0 + 3000) // the grant, sent at t0
    await advance(store, 1000) // one keep-alive, sent at t0 + 1000 and acknowledged
    expect(machine.fenceDeadlineMs).toBe(t0 + 4000)
    net.stuck = 1 // the next keep-alive is never answered: the deadline does not move
    await advance(store, 1000)
    expect(machine.fenceDeadlineMs).toBe(t0 + 4000)
    net.cut = true
    await advance(store, 4000) // the lease expires on the leader no earlier than the deadline
    expect(Date.now()).toBeGreaterThanOrEqual(t0 + 4000)
    net.cut = false
    await advance(store, 1000) // the keep-alive finds it lost
    expect(machine.losses).toBe(1)
    expect(machine.fenceDeadlineMs).toBeUndefined()
    expect(changes).toContain(undefined) // listeners heard the loss
    await advance(store, 1000) // the next tick grants a new lease
    expect(machine.fenceDeadlineMs).toBeGreaterThan(t0 + 8000)
    await machine.stop()
    expect(machine.fenceDeadlineMs).toBeUndefined()
  })

  it('a clean stop revokes the lease, so the machine is marked failed at once', async () => {
    const { state, machine } = await setup()
    await machine.start()
    await machine.stop({ revoke: true })
    await vi.advanceTimersByTimeAsync(0)
    expect(state.machineAlive('m1')).toBe(false)
  })
})
