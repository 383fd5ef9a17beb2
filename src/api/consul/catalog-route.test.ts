/**
 * Proves the Consul v1 catalog endpoints over real HTTP (fastify on a loopback port) against a
 * real in-process store (LocalKvStore), a real CatalogState fed by the catalog feed and a real
 * CatalogWriter:
 * - register / deregister: case-insensitive and snake_case keys, defaults, Agent kept as stored,
 *   SkipNodeUpdate, every check of the body, and a 4xx that changes nothing (also fuzzed);
 * - the read shapes with Consul's exact field names; tag (AND), node-meta and filter selection;
 *   an unknown node is 200 `null`; `?dc` of another datacenter is refused;
 * - blocking queries: a query waits through a write to another service and through a write to
 *   its own service that does not change its answer, returns on a change that does with a higher
 *   X-Consul-Index, and returns after `wait` with the same index;
 * - the `consul` npm client (2.0.1): register, health.service passing, service list, and a watch.
 */
import Consul from 'consul'
import fc from 'fast-check'
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, fetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { checkRecord, nodeRecord, serviceKey, serviceRecord } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { buildConsulApi } from './index.ts'
import { testDeps } from './test-support.ts'

interface Harness {
  base: string
  /** This test's connections, destroyed before the server closes (undici may open a spare one). */
  dispatcher: Agent
  store: LocalKvStore
  catalog: CatalogState
  writer: CatalogWriter
  app: FastifyInstance
}

const open: Harness[] = []

async function start(): Promise<Harness> {
  const store = new LocalKvStore()
  const catalog = new CatalogState()
  const feed = startCatalogFeed(store, catalog)
  await feed.ready
  const writer = new CatalogWriter(store)
  const deps = testDeps({
    store,
    catalog,
    writer,
    nodeName: 'agent-1',
    random: () => 0,
  })
  const app = Fastify()
  await app.register(buildConsulApi(deps))
  app.addHook('onClose', async () => feed.stop())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const dispatcher = new Agent()
  const harness = { base: `http://127.0.0.1:${address.port}`, dispatcher, store, catalog, writer, app }
  open.push(harness)
  return harness
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.dispatcher.destroy()
    await h.app.close()
  }
})

interface Answer {
  status: number
  index: number
  type: string
  text: string
  body: unknown
}

async function call(h: Harness, method: string, path: string, body?: unknown, signal?: AbortSignal) {
  const res = await fetch(h.base + path, {
    method,
    dispatcher: h.dispatcher,
    signal: signal ?? null,
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }),
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return {
    status: res.status,
    index: Number(res.headers.get('x-consul-index') ?? 0),
    type: res.headers.get('content-type') ?? '',
    text,
    body: parsed,
  } satisfies Answer
}

const settle = async (turns = 5): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

async function waitFor(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const web1 = {
  Datacenter: 'dc1',
  ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
  Node: 'n1',
  Address: '10.0.0.1',
  TaggedAddresses: { lan: '10.0.0.1', wan: '198.51.100.1' },
  NodeMeta: { zone: 'a' },
  Service: {
    ID: 'web-1',
    Service: 'web',
    Tags: ['v1', 'primary'],
    Address: '',
    Port: 8080,
    Meta: { ver: '1' },
  },
  Check: { Node: 'n1', CheckID: 'web-1-http', Name: 'HTTP', Status: 'passing', ServiceID: 'web-1' },
}

describe('PUT /v1/catalog/register and /deregister', () => {
  it('registers a node, its service and its check; the reads show them in Consul shapes', async () => {
    const h = await start()
    const put = await call(h, 'PUT', '/v1/catalog/register', web1)
    expect([put.status, put.body, put.type]).toEqual([200, true, 'application/json; charset=utf-8'])

    const nodes = await call(h, 'GET', '/v1/catalog/nodes')
    expect(nodes.status).toBe(200)
    expect(nodes.index).toBe(h.catalog.revision)
    expect(nodes.body).toEqual([
      {
        ID: web1.ID,
        Node: 'n1',
        Address: '10.0.0.1',
        Datacenter: 'dc1',
        TaggedAddresses: { lan: '10.0.0.1', wan: '198.51.100.1' },
        Meta: { zone: 'a' },
        CreateIndex: expect.any(Number),
        ModifyIndex: expect.any(Number),
      },
    ])
    const services = await call(h, 'GET', '/v1/catalog/services')
    expect(services.body).toEqual({ web: ['primary', 'v1'] })

    const instances = await call(h, 'GET', '/v1/catalog/service/web')
    expect(instances.body).toEqual([
      {
        ID: web1.ID,
        Node: 'n1',
        Address: '10.0.0.1',
        Datacenter: 'dc1',
        TaggedAddresses: { lan: '10.0.0.1', wan: '198.51.100.1' },
        NodeMeta: { zone: 'a' },
        ServiceKind: '',
        ServiceID: 'web-1',
        ServiceName: 'web',
        ServiceTags: ['v1', 'primary'],
        ServiceAddress: '',
        ServiceTaggedAddresses: {},
        ServiceWeights: { Passing: 1, Warning: 1 },
        ServiceMeta: { ver: '1' },
        ServicePort: 8080,
        ServiceEnableTagOverride: false,
        CreateIndex: expect.any(Number),
        ModifyIndex: expect.any(Number),
      },
    ])
    const node = await call(h, 'GET', '/v1/catalog/node/N1')
    expect(node.body).toMatchObject({
      Node: { Node: 'n1', Address: '10.0.0.1' },
      Services: { 'web-1': { ID: 'web-1', Service: 'web', Tags: ['v1', 'primary'], Port: 8080 } },
    })
    const list = await call(h, 'GET', '/v1/catalog/node-services/n1')
    expect(list.body).toMatchObject({ Node: { Node: 'n1' }, Services: [{ ID: 'web-1' }] })
    const check = h.catalog.serviceEntries('web')[0]?.checks[0]
    expect(check).toMatchObject({ CheckID: 'web-1-http', ServiceName: 'web', ServiceTags: ['v1', 'primary'] })
    expect(h.catalog.nodeEntry('n1')?.record.Agent).toBe(false)
    expect((await call(h, 'GET', '/v1/catalog/datacenters')).body).toEqual(['dc1'])
  })

  it('an unknown node is 200 null (node) and {Node: null, Services: null} (node-services), as Consul', async () => {
    const h = await start()
    const node = await call(h, 'GET', '/v1/catalog/node/nope')
    expect([node.status, node.text]).toEqual([200, 'null'])
    const list = await call(h, 'GET', '/v1/catalog/node-services/nope')
    expect([list.status, list.body]).toEqual([200, { Node: null, Services: null }])
    expect((await call(h, 'GET', '/v1/catalog/service/nope')).body).toEqual([])
  })

  it('reads keys case-insensitively and in snake_case; fills Consul defaults', async () => {
    const h = await start()
    const put = await call(h, 'PUT', '/v1/catalog/register', {
      node: 'n2',
      ADDRESS: '10.0.0.2',
      node_meta: { rack: 'r1' },
      service: { service: 'db', port: 5432, enable_tag_override: true },
      checks: [{ name: 'disk', status: 'warning', definition: { tcp: '10.0.0.2:22', interval: '10s' } }],
    })
    expect(put.status).toBe(200)
    const stored = h.catalog.nodeServices('n2')[0]?.record
    expect(stored).toMatchObject({ ID: 'db', Service: 'db', Port: 5432, EnableTagOverride: true, Tags: [] })
    expect(h.catalog.nodeEntry('n2')?.record.Meta).toEqual({ rack: 'r1' })
    const checks = await call(h, 'GET', '/v1/health/node/n2')
    expect(checks.body).toEqual([
      {
        Node: 'n2',
        CheckID: 'disk',
        Name: 'disk',
        Status: 'warning',
        Notes: '',
        Output: '',
        ServiceID: '',
        ServiceName: '',
        ServiceTags: [],
        Type: 'tcp',
        Definition: { TCP: '10.0.0.2:22', Interval: '10s' },
        CreateIndex: expect.any(Number),
        ModifyIndex: expect.any(Number),
      },
    ])
  })

  it('keeps client-chosen keys such as __proto__ as ordinary entries (meta, tagged addresses, names)', async () => {
    const h = await start()
    const body =
      '{"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"__proto__": "x"}, "Service": {"ID": "__proto__", ' +
      '"Service": "__proto__", "TaggedAddresses": {"__proto__": {"Address": "10.0.0.2", "Port": 1}}}}'
    expect((await call(h, 'PUT', '/v1/catalog/register', body)).status).toBe(200)
    const services = (await call(h, 'GET', '/v1/catalog/services')).text
    expect(services).toBe('{"__proto__":[]}')
    const node = (await call(h, 'GET', '/v1/catalog/node/n1')).text
    expect(node).toContain('"Meta":{"__proto__":"x"}')
    expect(node).toContain('"Services":{"__proto__":{"ID":"__proto__"')
    expect(node).toContain('"TaggedAddresses":{"__proto__":{"Address":"10.0.0.2","Port":1}}')
  })

  it('renders a hand-written record whose tagged addresses are malformed without them, not a 500', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', { Node: 'n1', Address: '10.0.0.1' })
    const record = {
      ...serviceRecord({ ID: 's1', Service: 's' }),
      TaggedAddresses: { lan: null, x: 'y', wan: { Address: '1.2.3.4', Port: 1 } },
    }
    await h.store.put({ key: serviceKey('n1', 's1'), value: JSON.stringify(record) })
    const res = await call(h, 'GET', '/v1/catalog/service/s')
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject([{ ServiceTaggedAddresses: { wan: { Address: '1.2.3.4', Port: 1 } } }])
    expect(
      Object.keys((res.body as { ServiceTaggedAddresses: object }[])[0]!.ServiceTaggedAddresses),
    ).toEqual(['wan'])
  })

  it('keeps Agent as stored: re-registering an agent node through the catalog keeps its machine check', async () => {
    const h = await start()
    await h.writer.register({ node: nodeRecord({ Node: 'm1', Address: '10.0.0.9', Agent: true }) })
    expect((await call(h, 'PUT', '/v1/catalog/register', { Node: 'm1', Address: '10.0.0.10' })).status).toBe(
      200,
    )
    expect(h.catalog.nodeEntry('m1')?.record).toMatchObject({ Address: '10.0.0.10', Agent: true })
    expect(h.catalog.nodeChecks('m1').map((c) => c.CheckID)).toEqual(['serfHealth'])
  })

  it('SkipNodeUpdate leaves an existing node as it is, and creates a missing one', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', { Node: 'n1', Address: '10.0.0.1', NodeMeta: { a: 'b' } })
    const skip = await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n1',
      SkipNodeUpdate: true,
      Service: { Service: 'api' },
    })
    expect(skip.status).toBe(200)
    expect(h.catalog.nodeEntry('n1')?.record).toMatchObject({ Address: '10.0.0.1', Meta: { a: 'b' } })
    expect(h.catalog.nodeServices('n1').map((s) => s.record.ID)).toEqual(['api'])
    const missing = await call(h, 'PUT', '/v1/catalog/register', { Node: 'n9', SkipNodeUpdate: true })
    expect(missing.status).toBe(400)
    const created = await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n9',
      Address: '10.0.0.99',
      SkipNodeUpdate: true,
    })
    expect(created.status).toBe(200)
    expect(h.catalog.nodeEntry('n9')?.record.Address).toBe('10.0.0.99')
  })

  it('deregisters a check, a service with its checks, and a whole node', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n1',
      Address: '10.0.0.1',
      Checks: [{ CheckID: 'mem', Status: 'passing' }],
    })
    expect((await call(h, 'PUT', '/v1/catalog/deregister', { Node: 'n1', CheckID: 'mem' })).body).toBe(true)
    expect(h.catalog.nodeChecks('n1').map((c) => c.CheckID)).toEqual(['web-1-http'])
    expect((await call(h, 'PUT', '/v1/catalog/deregister', { Node: 'n1', ServiceID: 'web-1' })).body).toBe(
      true,
    )
    expect(h.catalog.nodeChecks('n1')).toEqual([])
    expect(h.catalog.nodeServices('n1')).toEqual([])
    expect((await call(h, 'PUT', '/v1/catalog/deregister', { node: 'N1' })).body).toBe(true)
    expect(h.catalog.nodes()).toEqual([])
    expect((await call(h, 'PUT', '/v1/catalog/deregister', { Node: 'gone' })).body).toBe(true)
    expect((await call(h, 'PUT', '/v1/catalog/deregister', {})).status).toBe(400)
  })

  it.each([
    ['no body', undefined, 'Must provide node'],
    ['malformed JSON', '{"Node": ', 'request decode failed'],
    ['an array', '[]', 'must be a JSON object'],
    ['no address', { Node: 'n1' }, 'Must provide address'],
    ['a port that is a string', { Node: 'n1', Address: 'a', Service: { Service: 's', Port: '80' } }, 'Port'],
    ['a port out of range', { Node: 'n1', Address: 'a', Service: { Service: 's', Port: 70000 } }, 'Port'],
    ['a service without a name', { Node: 'n1', Address: 'a', Service: { ID: 'x' } }, 'service name'],
    ['a meta key with a dot', { Node: 'n1', Address: 'a', NodeMeta: { 'a.b': 'c' } }, 'invalid characters'],
    ['a reserved meta key', { Node: 'n1', Address: 'a', NodeMeta: { 'consul-x': 'c' } }, 'reserved'],
    ['tags that are not strings', { Node: 'n1', Address: 'a', Service: { Service: 's', Tags: [1] } }, 'Tags'],
    ['a check status', { Node: 'n1', Address: 'a', Check: { CheckID: 'c', Status: 'ok' } }, 'status'],
    [
      'a check of an unknown service',
      { Node: 'n1', Address: 'a', Check: { CheckID: 'c', ServiceID: 'x' } },
      'x',
    ],
    ['a check of another node', { Node: 'n1', Address: 'a', Check: { Node: 'n2', CheckID: 'c' } }, 'match'],
    ['a check with neither id nor name', { Node: 'n1', Address: 'a', Check: { Status: 'passing' } }, 'ID'],
    [
      'a bad check interval',
      { Node: 'n1', Address: 'a', Check: { CheckID: 'c', Definition: { Interval: 'x' } } },
      'Interval',
    ],
    ['a node id that is not a UUID', { Node: 'n1', Address: 'a', ID: 'abc' }, 'UUID'],
    ['another datacenter', { Node: 'n1', Address: 'a', Datacenter: 'dc9' }, 'datacenter'],
    ['a node named ..', { Node: '..', Address: 'a' }, 'Node'],
  ])('answers 400 with text for %s, and changes nothing', async (_what, body, message) => {
    const h = await start()
    const before = h.store.stateMachine.revision
    const res = await call(h, 'PUT', '/v1/catalog/register', body)
    expect(res.status).toBe(400)
    expect(res.type).toContain('text/plain')
    expect(res.text).toContain(message)
    expect(h.store.stateMachine.revision).toBe(before)
  })

  it('answers 405 for a GET on register and a PUT on a read, with Allow', async () => {
    const h = await start()
    const get = await fetch(`${h.base}/v1/catalog/register`, { dispatcher: h.dispatcher })
    expect([get.status, get.headers.get('allow'), await get.text()]).toEqual([
      405,
      'PUT',
      'method GET not allowed',
    ])
    const put = await fetch(`${h.base}/v1/catalog/nodes`, { method: 'PUT', dispatcher: h.dispatcher })
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, HEAD'])
  })

  it('fuzz: any register body is a 200 or a 4xx with text, never a 500; a 4xx changes nothing', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    const key = fc.constantFrom(
      'Node',
      'node',
      'Address',
      'ID',
      'Datacenter',
      'TaggedAddresses',
      'NodeMeta',
      'Service',
      'Check',
      'Checks',
      'SkipNodeUpdate',
      'Tags',
      'Port',
      'Meta',
      'Weights',
      'Passing',
      'CheckID',
      'Status',
      'ServiceID',
      'Definition',
      'Interval',
      'Name',
      '__proto__',
      'constructor',
    )
    const value = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('', 'n1', 'web', '10s', 'passing', 'web-1', '..', 'x'.repeat(300), 'dc1', 'dc2'),
        fc.string(),
        fc.integer({ min: -5, max: 70_000 }),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(key, tie('value'), { maxKeys: 5 }),
      ),
    })).value
    const body = fc.oneof(
      fc.dictionary(key, value, { maxKeys: 8 }).map((o) => JSON.stringify(o)),
      fc
        .record({
          Node: fc.constantFrom('n1', 'n2'),
          Address: fc.constant('10.0.0.5'),
          Service: value,
          Check: value,
        })
        .map((o) => JSON.stringify(o)),
      fc.string().map((s) => s),
      fc.jsonValue().map((v) => JSON.stringify(v)),
    )
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const before = h.store.stateMachine.revision
        const res = await call(h, 'PUT', '/v1/catalog/register', text)
        expect(res.status === 200 || (res.status >= 400 && res.status < 500)).toBe(true)
        if (res.status !== 200) {
          expect(res.type).toContain('text/plain')
          expect(res.text.length).toBeGreaterThan(0)
          expect(h.store.stateMachine.revision).toBe(before)
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('GET /v1/catalog selection', () => {
  async function twoWebs(h: Harness) {
    await call(h, 'PUT', '/v1/catalog/register', web1)
    await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n2',
      Address: '10.0.0.2',
      NodeMeta: { zone: 'b' },
      Service: { ID: 'web-2', Service: 'web', Tags: ['v2', 'primary'], Port: 8080 },
    })
    await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n3',
      Address: '10.0.0.3',
      Service: { ID: 'db-1', Service: 'db', Tags: ['pg'] },
    })
  }
  const ids = (res: Answer) => (res.body as { ServiceID: string }[]).map((e) => e.ServiceID)

  it('?tag is repeatable and ANDs, case-insensitively; ?node-meta ANDs too; ?filter runs on the entries', async () => {
    const h = await start()
    await twoWebs(h)
    expect(ids(await call(h, 'GET', '/v1/catalog/service/web?tag=primary'))).toEqual(['web-1', 'web-2'])
    expect(ids(await call(h, 'GET', '/v1/catalog/service/web?tag=PRIMARY&tag=v2'))).toEqual(['web-2'])
    expect(ids(await call(h, 'GET', '/v1/catalog/service/web?node-meta=zone:a'))).toEqual(['web-1'])
    expect(ids(await call(h, 'GET', '/v1/catalog/service/web?node-meta=zone:a&node-meta=zone:b'))).toEqual([])
    const filtered = await call(
      h,
      'GET',
      `/v1/catalog/service/web?filter=${encodeURIComponent('NodeMeta.zone == "b"')}`,
    )
    expect(ids(filtered)).toEqual(['web-2'])
    const names = await call(
      h,
      'GET',
      `/v1/catalog/services?filter=${encodeURIComponent('"pg" in ServiceTags')}`,
    )
    expect(names.body).toEqual({ db: ['pg'] })
    expect((await call(h, 'GET', '/v1/catalog/services?node-meta=zone:b')).body).toEqual({
      web: ['primary', 'v2'],
    })
    const nodes = await call(h, 'GET', `/v1/catalog/nodes?filter=${encodeURIComponent('Meta.zone == "a"')}`)
    expect((nodes.body as { Node: string }[]).map((n) => n.Node)).toEqual(['n1'])
    const node = await call(h, 'GET', `/v1/catalog/node/n1?filter=${encodeURIComponent('Port == 1')}`)
    expect(node.body).toMatchObject({ Node: { Node: 'n1' }, Services: {} })
  })

  it('answers 400 with text for a bad filter, a bad index, a bad wait, stale+consistent, another dc', async () => {
    const h = await start()
    for (const query of [
      `filter=${encodeURIComponent('ServiceName ==')}`,
      `filter=${encodeURIComponent('Nope == "x"')}`,
      'index=abc',
      'wait=5parsecs',
      'stale&consistent',
      'dc=dc9',
    ]) {
      const res = await call(h, 'GET', `/v1/catalog/service/web?${query}`)
      expect([query, res.status, res.type]).toEqual([query, 400, 'text/plain; charset=utf-8'])
    }
    const missing = await call(h, 'GET', '/v1/catalog/service/')
    expect([missing.status, missing.text]).toEqual([400, expect.stringContaining('Missing service name')])
  })
})

describe('blocking queries on the catalog', () => {
  it('waits through unrelated writes and writes that do not change its answer; returns on a change', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    const first = await call(h, 'GET', '/v1/catalog/service/web?tag=v1')
    expect(first.index).toBe(h.catalog.revision)
    let settled = false
    const pending = call(h, 'GET', `/v1/catalog/service/web?tag=v1&index=${first.index}`)
    void pending.then(() => (settled = true))
    await waitFor(() => h.catalog.waiterCount === 1, 'the query to wait')

    // Another service: its topic is not this query's, so the query is not even woken.
    await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n3',
      Address: '10.0.0.3',
      Service: { ID: 'db-1', Service: 'db' },
    })
    await settle()
    expect([settled, h.catalog.waiterCount]).toEqual([false, 1])

    // The same service, an instance the tag excludes: woken, same answer, waits again.
    await call(h, 'PUT', '/v1/catalog/register', {
      Node: 'n2',
      Address: '10.0.0.2',
      Service: { ID: 'web-2', Service: 'web', Tags: ['v2'] },
    })
    expect(h.catalog.topicRevision('service:web')).toBeGreaterThan(first.index)
    await settle()
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect([settled, h.catalog.waiterCount]).toEqual([false, 1])

    // A change to an instance it shows: it returns with the new answer and a higher index.
    await call(h, 'PUT', '/v1/catalog/register', { ...web1, Service: { ...web1.Service, Port: 9090 } })
    const changed = await pending
    expect(changed.status).toBe(200)
    expect(changed.index).toBeGreaterThan(first.index)
    expect(changed.index).toBe(h.catalog.topicRevision('service:web'))
    expect((changed.body as { ServicePort: number }[]).map((e) => e.ServicePort)).toEqual([9090])
    expect(h.catalog.waiterCount).toBe(0)
  })

  it('?wait ends the wait with the same index and answer', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    const first = await call(h, 'GET', '/v1/catalog/nodes')
    const started = Date.now()
    const again = await call(h, 'GET', `/v1/catalog/nodes?index=${first.index}&wait=100ms`)
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    expect([again.status, again.index, again.text]).toEqual([200, first.index, first.text])
  })

  it('an index ahead of this agent answers at once; a client that goes away stops waiting', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    const ahead = await call(h, 'GET', '/v1/catalog/services?index=999999&wait=10s')
    expect(ahead.status).toBe(200)
    const first = await call(h, 'GET', '/v1/catalog/services')
    const controller = new AbortController()
    const pending = call(h, 'GET', `/v1/catalog/services?index=${first.index}`, undefined, controller.signal)
    await waitFor(() => h.catalog.waiterCount === 1, 'the query to wait')
    controller.abort()
    await expect(pending).rejects.toThrow()
    console.log('aborted')
    await waitFor(() => h.catalog.waiterCount === 0, 'the waiter to go')
    console.log('gone')
  })

  it('closing the server ends a waiting query with its answer', async () => {
    const h = await start()
    await call(h, 'PUT', '/v1/catalog/register', web1)
    const first = await call(h, 'GET', '/v1/catalog/nodes')
    const pending = call(h, 'GET', `/v1/catalog/nodes?index=${first.index}`)
    await waitFor(() => h.catalog.waiterCount === 1, 'the query to wait')
    const closed = h.app.close()
    const answer = await pending
    await closed
    expect([answer.status, answer.index]).toEqual([200, first.index])
  })
})

describe('the consul npm client (2.0.1)', () => {
  it('registers, reads passing instances and the service list, and watches health.service', async () => {
    const h = await start()
    const consul = new Consul({ host: '127.0.0.1', port: Number(new URL(h.base).port) })
    await consul.catalog.register({
      node: 'n1',
      address: '10.0.0.1',
      service: { id: 'web-1', service: 'web', tags: ['v1'], port: 8080 },
      check: { checkid: 'web-1-ttl', name: 'ttl', status: 'passing', serviceid: 'web-1' },
    } as never)
    await consul.catalog.register({
      node: 'n2',
      address: '10.0.0.2',
      service: { id: 'web-2', service: 'web', port: 8080 },
      check: { checkid: 'web-2-ttl', name: 'ttl', status: 'critical', serviceid: 'web-2' },
    } as never)
    const passing = (await consul.health.service({ service: 'web', passing: true })) as {
      Service: { ID: string }
    }[]
    expect(passing.map((e) => e.Service.ID)).toEqual(['web-1'])
    expect(await consul.catalog.service.list()).toEqual({ web: ['v1'] })

    const watch = consul.watch({
      method: consul.health.service,
      options: { service: 'web', passing: 'true', wait: '5s' } as never,
    })
    const changes: unknown[] = []
    const errors: unknown[] = []
    watch.on('error', (error: unknown) => errors.push(error))
    watch.on('change', (data: unknown) => changes.push(data))
    try {
      await waitFor(() => changes.length === 1 && h.catalog.waiterCount === 1, 'the first answer and a wait')
      await h.writer.putCheck(
        'n2',
        checkRecord({ CheckID: 'web-2-ttl', ServiceID: 'web-2', ServiceName: 'web', Status: 'passing' }),
      )
      await waitFor(() => changes.length === 2, 'the watch to see the change')
      expect((changes[1] as { Service: { ID: string } }[]).map((e) => e.Service.ID)).toEqual([
        'web-1',
        'web-2',
      ])
      expect(errors).toEqual([])
    } finally {
      watch.end()
    }
  })
})
