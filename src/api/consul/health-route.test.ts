/**
 * Proves the Consul v1 health endpoints over real HTTP against a real LocalKvStore, a real
 * CatalogState fed by the catalog feed and a real CatalogWriter:
 * - /health/service entries are {Node, Service, Checks} with Consul's field names; `?passing`
 *   keeps instances whose every check passes (node checks included), `tag`, `node-meta` and
 *   `filter` select, a bad `passing` is a 400;
 * - a lost machine lease makes serfHealth and every check of that node critical, so `?passing`
 *   drops its instances (A5, without Consul's "service checks still passing" surprise);
 * - /health/checks (the service's own checks), /health/node (serfHealth included), /health/state
 *   (any|passing|warning|critical, anything else a 400);
 * - blocking: `?passing` waits through a check change that keeps an instance out, returns when an
 *   instance drops out; /health/state wakes when a failed agent node is deregistered.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, fetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { checkRecord, nodeRecord, serviceRecord } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { buildConsulApi } from './index.ts'
import { agentNotUnderTest, testDeps } from './test-support.ts'

interface Harness {
  base: string
  dispatcher: Agent
  store: LocalKvStore
  catalog: CatalogState
  writer: CatalogWriter
  app: FastifyInstance
  now: { ms: number }
}

const open: Harness[] = []

async function start(): Promise<Harness> {
  const now = { ms: 1_000_000 }
  const store = new LocalKvStore(undefined, () => now.ms)
  const catalog = new CatalogState()
  const feed = startCatalogFeed(store, catalog)
  await feed.ready
  const writer = new CatalogWriter(store)
  const deps = testDeps({
    store,
    catalog,
    writer,
    nodeName: 'm1',
    agent: agentNotUnderTest,
    random: () => 0,
  })
  const app = Fastify()
  await app.register(buildConsulApi(deps))
  app.addHook('onClose', async () => feed.stop())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const h = {
    base: `http://127.0.0.1:${address.port}`,
    dispatcher: new Agent(),
    store,
    catalog,
    writer,
    app,
    now,
  }
  open.push(h)
  return h
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.dispatcher.destroy()
    await h.app.close()
  }
})

async function get(h: Harness, path: string) {
  const res = await fetch(h.base + path, { dispatcher: h.dispatcher })
  const text = await res.text()
  return {
    status: res.status,
    index: Number(res.headers.get('x-consul-index') ?? 0),
    type: res.headers.get('content-type') ?? '',
    text,
    body: res.status === 200 ? (JSON.parse(text) as unknown) : undefined,
  }
}

async function waitFor(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** web on n1 (passing, zone a), web on n2 (its check warning, zone b), db on n3; n2 has a disk check. */
async function fleet(h: Harness): Promise<void> {
  const instance = (node: string, zone: string, status: 'passing' | 'warning', tags: string[]) =>
    h.writer.register({
      node: nodeRecord({ Node: node, Address: `10.0.0.${node.slice(1)}`, Meta: { zone } }),
      services: [serviceRecord({ ID: `web-${node}`, Service: 'web', Port: 8080, Tags: tags })],
      checks: [
        checkRecord({
          CheckID: `web-${node}`,
          ServiceID: `web-${node}`,
          ServiceName: 'web',
          ServiceTags: tags,
          Status: status,
        }),
      ],
    })
  await instance('n1', 'a', 'passing', ['v1'])
  await instance('n2', 'b', 'warning', ['v2'])
  await h.writer.putCheck('n2', checkRecord({ CheckID: 'disk', Name: 'Disk', Status: 'passing' }))
  await h.writer.register({
    node: nodeRecord({ Node: 'n3', Address: '10.0.0.3' }),
    services: [serviceRecord({ ID: 'db', Service: 'db' })],
  })
}

type Entry = {
  Node: { Node: string }
  Service: { ID: string }
  Checks: { CheckID: string; Status: string }[]
}
const serviceIds = (body: unknown) => (body as Entry[]).map((e) => e.Service.ID)
const checkIds = (body: unknown) => (body as { CheckID: string }[]).map((c) => c.CheckID)

describe('GET /v1/health/service/:name', () => {
  it('answers {Node, Service, Checks} entries with Consul field names, node checks first', async () => {
    const h = await start()
    await fleet(h)
    const res = await get(h, '/v1/health/service/web')
    expect(res.status).toBe(200)
    expect(res.index).toBe(h.catalog.topicRevision('service:web'))
    const entries = res.body as Record<string, Record<string, unknown>>[]
    expect(entries.map((e) => Object.keys(e))).toEqual([
      ['Node', 'Service', 'Checks'],
      ['Node', 'Service', 'Checks'],
    ])
    expect(Object.keys(entries[0]!.Node!)).toEqual([
      'ID',
      'Node',
      'Address',
      'Datacenter',
      'TaggedAddresses',
      'Meta',
      'CreateIndex',
      'ModifyIndex',
    ])
    expect(entries[0]?.Service).toEqual({
      ID: 'web-n1',
      Service: 'web',
      Tags: ['v1'],
      Address: '',
      TaggedAddresses: {},
      Meta: {},
      Port: 8080,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Kind: '',
      CreateIndex: expect.any(Number),
      ModifyIndex: expect.any(Number),
    })
    expect((entries[1] as unknown as Entry).Checks.map((c) => [c.CheckID, c.Status])).toEqual([
      ['disk', 'passing'],
      ['web-n2', 'warning'],
    ])
    expect(Object.keys((entries[1] as unknown as Entry).Checks[1]!)).toEqual([
      'Node',
      'CheckID',
      'Name',
      'Status',
      'Notes',
      'Output',
      'ServiceID',
      'ServiceName',
      'ServiceTags',
      'Type',
      'Definition',
      'CreateIndex',
      'ModifyIndex',
    ])
  })

  it('?passing keeps instances whose every check passes; node checks count; bad values are a 400', async () => {
    const h = await start()
    await fleet(h)
    expect(serviceIds((await get(h, '/v1/health/service/web?passing')).body)).toEqual(['web-n1'])
    expect(serviceIds((await get(h, '/v1/health/service/web?passing=true')).body)).toEqual(['web-n1'])
    expect(serviceIds((await get(h, '/v1/health/service/web?passing=0')).body)).toEqual(['web-n1', 'web-n2'])
    await h.writer.putCheck('n1', checkRecord({ CheckID: 'mem', Status: 'critical' }))
    expect(serviceIds((await get(h, '/v1/health/service/web?passing=1')).body)).toEqual([])
    const bad = await get(h, '/v1/health/service/web?passing=yes')
    expect([bad.status, bad.type, bad.text]).toEqual([
      400,
      'text/plain; charset=utf-8',
      expect.stringContaining('Invalid value for ?passing'),
    ])
  })

  it('selects with tag, node-meta and filter', async () => {
    const h = await start()
    await fleet(h)
    expect(serviceIds((await get(h, '/v1/health/service/web?tag=V2')).body)).toEqual(['web-n2'])
    expect(serviceIds((await get(h, '/v1/health/service/web?node-meta=zone:a')).body)).toEqual(['web-n1'])
    const q = (f: string) => `/v1/health/service/web?filter=${encodeURIComponent(f)}`
    expect(serviceIds((await get(h, q('Node.Meta.zone == "b"'))).body)).toEqual(['web-n2'])
    expect(serviceIds((await get(h, q('"v1" in Service.Tags'))).body)).toEqual(['web-n1'])
    expect((await get(h, q('Service.Nope == 1'))).status).toBe(400)
  })

  it('a lost machine lease makes every check of its node critical and drops it from ?passing', async () => {
    const h = await start()
    const lease = await h.store.leaseGrant({ ttlMs: 10_000 })
    await h.writer.register({
      node: nodeRecord({ Node: 'm1', Address: '10.0.0.10', Agent: true }),
      services: [serviceRecord({ ID: 'web-m1', Service: 'web' })],
      checks: [
        checkRecord({ CheckID: 'web-m1', ServiceID: 'web-m1', ServiceName: 'web', Status: 'passing' }),
      ],
    })
    await h.writer.putMachine({ Node: 'm1', Lease: lease.id, SinceMs: h.now.ms })
    const alive = await get(h, '/v1/health/service/web?passing')
    expect((alive.body as Entry[])[0]?.Checks.map((c) => [c.CheckID, c.Status])).toEqual([
      ['serfHealth', 'passing'],
      ['web-m1', 'passing'],
    ])
    h.now.ms += 20_000
    expect(h.store.expire()?.expiredLeases).toBe(1)
    expect(serviceIds((await get(h, '/v1/health/service/web?passing')).body)).toEqual([])
    const all = await get(h, '/v1/health/service/web')
    expect((all.body as Entry[])[0]?.Checks.map((c) => [c.CheckID, c.Status])).toEqual([
      ['serfHealth', 'critical'],
      ['web-m1', 'critical'],
    ])
    expect(checkIds((await get(h, '/v1/health/state/critical')).body)).toEqual(['serfHealth', 'web-m1'])
  })
})

describe('GET /v1/health/checks, /node, /state', () => {
  it('answers the service own checks, the node checks, the checks in a state', async () => {
    const h = await start()
    await fleet(h)
    expect(checkIds((await get(h, '/v1/health/checks/web')).body)).toEqual(['web-n1', 'web-n2'])
    expect(checkIds((await get(h, '/v1/health/checks/nope')).body)).toEqual([])
    expect(checkIds((await get(h, '/v1/health/node/N2')).body)).toEqual(['disk', 'web-n2'])
    expect(checkIds((await get(h, '/v1/health/node/nope')).body)).toEqual([])
    expect(checkIds((await get(h, '/v1/health/state/any')).body)).toEqual(['web-n1', 'disk', 'web-n2'])
    expect(checkIds((await get(h, '/v1/health/state/passing')).body)).toEqual(['web-n1', 'disk'])
    expect(checkIds((await get(h, '/v1/health/state/warning')).body)).toEqual(['web-n2'])
    expect(checkIds((await get(h, '/v1/health/state/critical')).body)).toEqual([])
    expect(checkIds((await get(h, '/v1/health/state/any?node-meta=zone:b')).body)).toEqual(['disk', 'web-n2'])
    const filtered = await get(h, `/v1/health/state/any?filter=${encodeURIComponent('ServiceName == "web"')}`)
    expect(checkIds(filtered.body)).toEqual(['web-n1', 'web-n2'])
    for (const bad of [
      '/v1/health/state/bogus',
      '/v1/health/state/',
      '/v1/health/node/',
      '/v1/health/checks/',
    ]) {
      const res = await get(h, bad)
      expect([bad, res.status, res.type]).toEqual([bad, 400, 'text/plain; charset=utf-8'])
    }
  })
})

describe('blocking health queries', () => {
  it('?passing waits through a change that keeps an instance out, returns when one drops out', async () => {
    const h = await start()
    await fleet(h)
    const first = await get(h, '/v1/health/service/web?passing')
    let settled = false
    const pending = get(h, `/v1/health/service/web?passing&index=${first.index}`)
    void pending.then(() => (settled = true))
    await waitFor(() => h.catalog.waiterCount === 1, 'the query to wait')
    // web-n2 goes from warning to critical: still not passing, the answer is the same.
    await h.writer.putCheck(
      'n2',
      checkRecord({ CheckID: 'web-n2', ServiceID: 'web-n2', ServiceName: 'web', Status: 'critical' }),
    )
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect([settled, h.catalog.waiterCount]).toEqual([false, 1])
    await h.writer.putCheck(
      'n1',
      checkRecord({ CheckID: 'web-n1', ServiceID: 'web-n1', ServiceName: 'web', Status: 'warning' }),
    )
    const changed = await pending
    expect(changed.index).toBeGreaterThan(first.index)
    expect(changed.body).toEqual([])
  })

  it('/health/state wakes when a failed agent node is deregistered (its serfHealth goes)', async () => {
    const h = await start()
    const lease = await h.store.leaseGrant({ ttlMs: 10_000 })
    await h.writer.register({ node: nodeRecord({ Node: 'm1', Address: '10.0.0.10', Agent: true }) })
    await h.writer.putMachine({ Node: 'm1', Lease: lease.id, SinceMs: h.now.ms })
    h.now.ms += 20_000
    h.store.expire()
    const first = await get(h, '/v1/health/state/critical')
    expect(checkIds(first.body)).toEqual(['serfHealth'])
    const pending = get(h, `/v1/health/state/critical?index=${first.index}&wait=5s`)
    await waitFor(() => h.catalog.waiterCount === 2, 'the query to wait (on checks and nodes)')
    await h.writer.deregisterNode('m1')
    const changed = await pending
    expect(changed.body).toEqual([])
    expect(changed.index).toBeGreaterThan(first.index)
  })
})
