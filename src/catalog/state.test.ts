/**
 * CatalogState fed by the real feed from a real in-process store (LocalKvStore), written through
 * the real CatalogWriter: what the catalog shows, how health aggregates, what a lost machine lease
 * does, and which topics wake which waiters.
 */
import { describe, expect, it } from 'vitest'
import { LocalKvStore } from '../kv/local-kv-store.ts'
import { startCatalogFeed } from './feed.ts'
import { checkRecord, nodeKey, nodeRecord, serviceKey, serviceRecord } from './records.ts'
import { CatalogState } from './state.ts'
import { CatalogWriter } from './writer.ts'

function setup(now = { ms: 1_000_000 }) {
  const store = new LocalKvStore(undefined, () => now.ms)
  const state = new CatalogState()
  const feed = startCatalogFeed(store, state)
  const writer = new CatalogWriter(store)
  return { store, state, feed, writer, now }
}

async function registerWeb(writer: CatalogWriter, node: string, address: string, agent = false) {
  await writer.register({
    node: nodeRecord({ Node: node, Address: address, Agent: agent, Meta: { zone: 'a' } }),
    services: [serviceRecord({ ID: `web-${node}`, Service: 'web', Port: 8080, Tags: ['v1'] })],
    checks: [
      checkRecord({
        CheckID: `web-${node}-http`,
        ServiceID: `web-${node}`,
        ServiceName: 'web',
        Status: 'passing',
      }),
    ],
  })
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('CatalogState', () => {
  it('shows registered instances with their node and checks, health the worst of them', async () => {
    const { state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    await registerWeb(writer, 'n2', '10.0.0.2')
    await writer.putCheck('n2', checkRecord({ CheckID: 'disk', Status: 'warning' }))
    const entries = state.serviceEntries('WEB')
    expect(entries.map((e) => [e.node.record.Node, e.service.record.ID, e.status])).toEqual([
      ['n1', 'web-n1', 'passing'],
      ['n2', 'web-n2', 'warning'],
    ])
    expect(entries[1]?.checks.map((c) => c.CheckID)).toEqual(['disk', 'web-n2-http'])
    expect(state.serviceInstances('web', 'V1').map((i) => [i.address, i.port, i.status])).toEqual([
      ['10.0.0.1', 8080, 'passing'],
      ['10.0.0.2', 8080, 'warning'],
    ])
    expect([...state.serviceNames()]).toEqual([['web', ['v1']]])
    expect(state.node('N1')).toEqual({ name: 'n1', address: '10.0.0.1', meta: { zone: 'a' } })
    expect(state.nodes().map((n) => n.record.Node)).toEqual(['n1', 'n2'])
  })

  it('a feed whose store cannot be read keeps trying, and follows it once it answers', async () => {
    const store = new LocalKvStore()
    const writer = new CatalogWriter(store)
    await registerWeb(writer, 'n1', '10.0.0.1')
    let refusals = 3
    const errors: unknown[] = []
    const flaky = {
      range: (...args: Parameters<LocalKvStore['range']>) =>
        refusals-- > 0 ? Promise.reject(new Error('no server answered')) : store.range(...args),
      watch: (...args: Parameters<LocalKvStore['watch']>) => store.watch(...args),
    }
    const state = new CatalogState()
    const feed = startCatalogFeed(flaky, state, (error) => errors.push(error))
    await feed.ready
    expect(errors).toHaveLength(3)
    expect(state.serviceEntries('web')).toHaveLength(1)
    await registerWeb(writer, 'n2', '10.0.0.2')
    expect(state.serviceEntries('web')).toHaveLength(2)
    feed.stop()
  })

  it('stop() ends a feed that is waiting to try again', async () => {
    const state = new CatalogState()
    const feed = startCatalogFeed(
      {
        range: () => Promise.reject(new Error('down')),
        watch: () => {
          throw new Error('unused')
        },
      },
      state,
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    feed.stop()
    await feed.ready // resolves at stop
    expect(state.revision).toBe(0)
  })

  it('a state loaded after the writes equals one that followed them', async () => {
    const { store, state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    await registerWeb(writer, 'n2', '10.0.0.2')
    await writer.deregisterService('n2', 'web-n2')
    const late = new CatalogState()
    await startCatalogFeed(store, late).ready
    expect(late.serviceEntries('web')).toEqual(state.serviceEntries('web'))
    expect(late.nodeChecks('n2')).toEqual(state.nodeChecks('n2'))
    expect(state.nodeChecks('n2')).toEqual([]) // the service's checks went with it
    expect(late.revision).toBe(state.revision)
  })

  it('a lost machine lease fails the machine: serfHealth and every check critical, out of DNS health', async () => {
    const { store, state, feed, writer, now } = setup()
    await feed.ready
    await registerWeb(writer, 'm1', '10.0.0.1', true)
    const lease = await store.leaseGrant({ ttlMs: 3000 })
    await writer.putMachine({ Node: 'm1', Lease: lease.id, SinceMs: now.ms })
    expect(state.serviceEntries('web')[0]?.status).toBe('passing')
    expect(state.machineAlive('m1')).toBe(true)
    expect(state.nodeChecks('m1')[0]).toMatchObject({ CheckID: 'serfHealth', Status: 'passing' })

    now.ms += 3001
    expect(store.expire()?.expiredLeases).toBe(1)
    await settle()
    expect(state.machineAlive('m1')).toBe(false)
    const [entry] = state.serviceEntries('web')
    expect(entry?.status).toBe('critical')
    expect(entry?.checks.map((c) => [c.CheckID, c.Status])).toEqual([
      ['serfHealth', 'critical'],
      ['web-m1-http', 'critical'],
    ])
    expect(entry?.checks[1]?.Output).toMatch(
      /Machine failed \(the check's last reported status was passing\)/,
    )
    expect(state.serviceInstances('web')[0]?.status).toBe('critical')
    expect(state.checksInState('critical').map((c) => c.CheckID)).toEqual(['serfHealth', 'web-m1-http'])
  })

  it('a node no agent owns has no machine check', async () => {
    const { state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'ext', '192.0.2.1')
    expect(state.machineAlive('ext')).toBeUndefined()
    expect(state.nodeChecks('ext').map((c) => c.CheckID)).toEqual(['web-ext-http'])
    expect(state.serviceEntries('web')[0]?.status).toBe('passing')
  })

  it('wakes only the waiters whose topics changed, and only after the change', async () => {
    const { state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    const webIndex = state.indexOf(['service:web'])
    const dbIndex = state.indexOf(['service:db'])
    const woken: string[] = []
    const controller = new AbortController()
    void state.waitForChange(['service:web'], webIndex, controller.signal).then(() => woken.push('web'))
    void state.waitForChange(['service:db'], dbIndex, controller.signal).then(() => woken.push('db'))
    void state
      .waitForChange(['node:n1'], state.indexOf(['node:n1']), controller.signal)
      .then(() => woken.push('n1'))
    await settle()
    expect(woken).toEqual([])

    await writer.putService('n2', serviceRecord({ ID: 'cache', Service: 'cache' }))
    await settle()
    expect(woken).toEqual([]) // another service, on another node

    await writer.putCheck('n1', checkRecord({ CheckID: 'mem', Status: 'warning' })) // a node check on n1
    await settle()
    expect(woken.sort()).toEqual(['n1', 'web'])
    expect(state.indexOf(['service:web'])).toBeGreaterThan(webIndex)

    await writer.putService('n3', serviceRecord({ ID: 'db-1', Service: 'db' }))
    await settle()
    expect(woken).toContain('db') // a service that did not exist wakes its waiter when it appears
    expect(state.waiterCount).toBe(0)
  })

  it('an aborted wait resolves and leaves no waiter behind', async () => {
    const { state, feed } = setup()
    await feed.ready
    const controller = new AbortController()
    const waiting = state.waitForChange(['service:x'], state.indexOf(['service:x']), controller.signal)
    expect(state.waiterCount).toBe(1)
    controller.abort()
    await waiting
    expect(state.waiterCount).toBe(0)
  })

  it('leaves out records that are not well formed, and a deleted directory takes its records', async () => {
    const { store, state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    await store.put({ key: serviceKey('n1', 'junk'), value: '{"ID": 5}' })
    await store.put({ key: nodeKey('n9'), value: 'not json' })
    expect(state.serviceEntries('web')).toHaveLength(1)
    expect(state.nodeEntry('n9')).toBeUndefined()
    expect(state.nodeServices('n1').map((s) => s.record.ID)).toEqual(['web-n1'])

    store.apply({ op: 'v2.delete', key: '/_cairn/catalog/services', dir: true, recursive: true })
    await settle()
    expect(state.serviceEntries('web')).toEqual([])
    expect(state.hasService('web')).toBe(false)
    expect(state.nodeEntry('n1')).toBeDefined()
  })

  it('deregistering a service with more checks than one transaction holds removes them all', async () => {
    const { state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    const checks = Array.from({ length: 300 }, (_, i) =>
      checkRecord({ CheckID: `c${i}`, ServiceID: 'web-n1', ServiceName: 'web', Status: 'passing' }),
    )
    for (let i = 0; i < checks.length; i += 100) {
      await writer.register({
        node: nodeRecord({ Node: 'n1', Address: '10.0.0.1' }),
        checks: checks.slice(i, i + 100),
      })
    }
    expect(state.nodeChecks('n1')).toHaveLength(301)
    expect(await writer.deregisterService('n1', 'web-n1')).toBe(true)
    expect(state.nodeChecks('n1')).toEqual([])
    expect(state.serviceEntries('web')).toEqual([])
  })

  it('deregistering a node removes everything on it', async () => {
    const { state, feed, writer } = setup()
    await feed.ready
    await registerWeb(writer, 'n1', '10.0.0.1')
    expect(await writer.deregisterNode('N1')).toBe(true)
    expect(state.nodes()).toEqual([])
    expect(state.serviceEntries('web')).toEqual([])
    expect(state.nodeChecks('n1')).toEqual([])
    expect(await writer.deregisterNode('n1')).toBe(false)
  })

  it('refuses names the layout cannot hold, and a node update for an unknown node', async () => {
    const { writer, state, feed } = setup()
    await feed.ready
    await expect(
      writer.register({ node: nodeRecord({ Node: '..', Address: '10.0.0.1' }) }),
    ).rejects.toMatchObject({
      code: 'CATALOG_INVALID',
    })
    await expect(
      writer.register({
        node: nodeRecord({ Node: 'ghost', Address: '10.0.0.1' }),
        skipNodeUpdate: true,
        services: [serviceRecord({ ID: 's', Service: 's' })],
      }),
    ).rejects.toMatchObject({ code: 'CATALOG_NODE_NOT_FOUND' })
    expect(state.serviceEntries('s')).toEqual([])
  })
})
