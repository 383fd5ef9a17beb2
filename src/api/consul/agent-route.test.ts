/**
 * Proves the route layer of the Consul v1 agent endpoints over real HTTP: which LocalAgent method
 * each endpoint calls with which arguments (bodies decoded, parameters read), how answers are
 * rendered (maps by id, ContentHash, aggregated health with 200/429/503/404 and `format=text`),
 * how the agent's errors map to Consul's statuses, and that writes are PUT-only (405 otherwise).
 *
 * The LocalAgent here is a small in-memory one that records calls: the real registry
 * (src/agent/local-registry.ts) has its own tests; this file tests the routes only. The catalog
 * underneath is real (LocalKvStore, CatalogState, feed), for the hash-based blocking of
 * /v1/agent/service/:id, which wakes on this node's catalog changes.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Agent, fetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { type CheckStatus, checkRecord, nodeRecord, serviceRecord } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { CairnError } from '../../errors.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { buildConsulApi } from './index.ts'
import type { AgentCheckView, AgentMemberView, AgentServiceView, LocalAgent } from './local-agent.ts'
import { testDeps } from './test-support.ts'

/** Records every call; answers from its lists; throws `failWith` when set. */
class RecordingAgent implements LocalAgent {
  readonly calls: unknown[][] = []
  services_: AgentServiceView[] = []
  checks_: AgentCheckView[] = []
  failWith: Error | undefined

  #record(...call: unknown[]): void {
    this.calls.push(call)
    if (this.failWith !== undefined) throw this.failWith
  }
  async registerService(body: unknown, options: { replaceExistingChecks: boolean }): Promise<void> {
    this.#record('registerService', body, options)
  }
  async deregisterService(id: string): Promise<boolean> {
    this.#record('deregisterService', id)
    return false
  }
  async setServiceMaintenance(id: string, enable: boolean, reason: string): Promise<void> {
    this.#record('setServiceMaintenance', id, enable, reason)
  }
  async setNodeMaintenance(enable: boolean, reason: string): Promise<void> {
    this.#record('setNodeMaintenance', enable, reason)
  }
  services(): AgentServiceView[] {
    return this.services_
  }
  checks(): AgentCheckView[] {
    return this.checks_
  }
  async registerCheck(body: unknown): Promise<void> {
    this.#record('registerCheck', body)
  }
  async deregisterCheck(id: string): Promise<boolean> {
    this.#record('deregisterCheck', id)
    return true
  }
  async updateTtlCheck(id: string, status: CheckStatus, output: string): Promise<void> {
    this.#record('updateTtlCheck', id, status, output)
  }
  members(): AgentMemberView[] {
    return [
      {
        Name: 'agent-1',
        Addr: '127.0.0.1',
        Port: 7001,
        Tags: { dc: 'dc1', role: 'node' },
        Status: 1,
        ProtocolMin: 1,
        ProtocolMax: 1,
        ProtocolCur: 1,
        DelegateMin: 1,
        DelegateMax: 1,
        DelegateCur: 1,
      },
    ]
  }
  self(): Record<string, unknown> {
    return { Config: { Datacenter: 'dc1', NodeName: 'agent-1' } }
  }
}

const service = (id: string, name: string, port = 80): AgentServiceView => ({
  ...serviceRecord({ ID: id, Service: name, Port: port, Tags: ['t'] }),
  Datacenter: 'dc1',
})
const check = (id: string, serviceId: string, status: CheckStatus): AgentCheckView => ({
  ...checkRecord({ CheckID: id, ServiceID: serviceId, Status: status }),
  Node: 'agent-1',
})

interface Harness {
  base: string
  dispatcher: Agent
  agent: RecordingAgent
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
  const agent = new RecordingAgent()
  const deps = testDeps({
    store,
    catalog,
    writer,
    nodeName: 'Agent-1',
    agent,
    random: () => 0,
  })
  const app = Fastify()
  await app.register(buildConsulApi(deps))
  app.addHook('onClose', async () => feed.stop())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const h = { base: `http://127.0.0.1:${address.port}`, dispatcher: new Agent(), agent, catalog, writer, app }
  open.push(h)
  return h
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.dispatcher.destroy()
    await h.app.close()
  }
})

async function call(
  h: Harness,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(h.base + path, {
    method,
    dispatcher: h.dispatcher,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body }),
  })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, type: res.headers.get('content-type') ?? '', text, json }
}

describe('agent writes', () => {
  it('service register passes the decoded body and ?replace-existing-checks; answers 200 empty', async () => {
    const h = await start()
    const body = { Name: 'web', Port: 80, check: { TTL: '10s' } }
    const plain = await call(h, 'PUT', '/v1/agent/service/register', JSON.stringify(body))
    expect([plain.status, plain.text]).toEqual([200, ''])
    await call(h, 'PUT', '/v1/agent/service/register?replace-existing-checks', JSON.stringify(body))
    await call(h, 'PUT', '/v1/agent/service/register?replace-existing-checks=false', JSON.stringify(body))
    expect(h.agent.calls).toEqual([
      ['registerService', body, { replaceExistingChecks: false }],
      ['registerService', body, { replaceExistingChecks: true }],
      ['registerService', body, { replaceExistingChecks: false }],
    ])
    const bad = await call(h, 'PUT', '/v1/agent/service/register?replace-existing-checks=maybe', '{}')
    expect(bad.status).toBe(400)
    const malformed = await call(h, 'PUT', '/v1/agent/service/register', '{"Name": "web"')
    expect([malformed.status, malformed.type]).toEqual([400, 'text/plain; charset=utf-8'])
    expect(h.agent.calls).toHaveLength(3)
  })

  it('maps the agent errors: invalid 400, unknown service 404, anything else 500', async () => {
    const h = await start()
    h.agent.failWith = new CairnError('CATALOG_INVALID', 'Name is required')
    const invalid = await call(h, 'PUT', '/v1/agent/service/register', '{}')
    expect([invalid.status, invalid.type, invalid.text]).toEqual([
      400,
      'text/plain; charset=utf-8',
      expect.stringContaining('Name is required'),
    ])
    h.agent.failWith = new CairnError('CATALOG_SERVICE_NOT_FOUND', 'web')
    expect((await call(h, 'PUT', '/v1/agent/service/maintenance/web?enable=true')).status).toBe(404)
    h.agent.failWith = new CairnError('CHECK_NOT_TTL', 'http-check')
    expect((await call(h, 'PUT', '/v1/agent/check/pass/http-check')).status).toBe(400)
    h.agent.failWith = new Error('disk on fire')
    const broken = await call(h, 'PUT', '/v1/agent/check/register', '{"Name": "x", "TTL": "5s"}')
    expect([broken.status, broken.text]).toEqual([500, 'internal error: disk on fire'])
  })

  it('deregisters, sets maintenance (enable required), registers and updates checks', async () => {
    const h = await start()
    const ok = async (method: string, path: string, body?: string) =>
      expect((await call(h, method, path, body)).status).toBe(200)
    await ok('PUT', '/v1/agent/service/deregister/web%2F1')
    await ok('PUT', '/v1/agent/service/maintenance/web?enable=true&reason=upgrade')
    await ok('PUT', '/v1/agent/service/maintenance/web?enable=false')
    await ok('PUT', '/v1/agent/maintenance?enable=1&reason=kernel')
    await ok('PUT', '/v1/agent/check/register', '{"Name": "mem", "TTL": "15s"}')
    await ok('PUT', '/v1/agent/check/deregister/mem')
    await ok('PUT', '/v1/agent/check/pass/ttl?note=all%20good')
    await ok('PUT', '/v1/agent/check/warn/ttl')
    await ok('PUT', '/v1/agent/check/fail/ttl?note=down')
    await ok('PUT', '/v1/agent/check/update/ttl', '{"status": "warning", "output": "slow"}')
    expect(h.agent.calls).toEqual([
      ['deregisterService', 'web/1'],
      ['setServiceMaintenance', 'web', true, 'upgrade'],
      ['setServiceMaintenance', 'web', false, ''],
      ['setNodeMaintenance', true, 'kernel'],
      ['registerCheck', { Name: 'mem', TTL: '15s' }],
      ['deregisterCheck', 'mem'],
      ['updateTtlCheck', 'ttl', 'passing', 'all good'],
      ['updateTtlCheck', 'ttl', 'warning', ''],
      ['updateTtlCheck', 'ttl', 'critical', 'down'],
      ['updateTtlCheck', 'ttl', 'warning', 'slow'],
    ])
    for (const [path, body, message] of [
      ['/v1/agent/maintenance', undefined, 'Missing value for enable'],
      ['/v1/agent/maintenance?enable', undefined, 'Invalid value for enable'],
      ['/v1/agent/service/maintenance/web?enable=yes', undefined, 'Invalid value for enable'],
      ['/v1/agent/check/update/ttl', '{"Status": "ok"}', "Invalid check status: 'ok'"],
      ['/v1/agent/check/update/ttl', '{"Status": 1}', 'Status'],
      ['/v1/agent/check/update/ttl', '[1]', 'JSON object'],
      ['/v1/agent/check/pass/', undefined, 'Missing check id'],
    ] as const) {
      const res = await call(h, 'PUT', path, body)
      expect([path, res.status, res.text]).toEqual([path, 400, expect.stringContaining(message)])
    }
    expect(h.agent.calls).toHaveLength(10)
  })

  it('answers 405 with Allow for the wrong method, as Consul', async () => {
    const h = await start()
    for (const [method, path, allow] of [
      ['GET', '/v1/agent/service/register', 'PUT'],
      ['GET', '/v1/agent/check/pass/ttl', 'PUT'],
      ['POST', '/v1/agent/check/update/ttl', 'PUT'],
      ['DELETE', '/v1/agent/service/deregister/web', 'PUT'],
      ['PUT', '/v1/agent/services', 'GET, HEAD'],
      ['PUT', '/v1/agent/service/web', 'GET, HEAD'],
    ] as const) {
      const res = await call(h, method, path)
      expect([method, path, res.status, res.headers.get('allow'), res.text]).toEqual([
        method,
        path,
        405,
        allow,
        `method ${method} not allowed`,
      ])
    }
    expect(h.agent.calls).toEqual([])
  })
})

describe('agent reads', () => {
  it('services and checks are maps by id; ?filter selects', async () => {
    const h = await start()
    h.agent.services_ = [service('web-1', 'web', 8080), service('db', 'db', 5432)]
    h.agent.checks_ = [check('web-1-ttl', 'web-1', 'passing'), check('db-ttl', 'db', 'critical')]
    const services = await call(h, 'GET', '/v1/agent/services')
    expect(services.json).toEqual({
      'web-1': {
        ID: 'web-1',
        Service: 'web',
        Tags: ['t'],
        Meta: {},
        Port: 8080,
        Address: '',
        TaggedAddresses: {},
        Weights: { Passing: 1, Warning: 1 },
        EnableTagOverride: false,
        Kind: '',
        Datacenter: 'dc1',
      },
      db: expect.objectContaining({ ID: 'db', Port: 5432 }),
    })
    const filtered = await call(h, 'GET', `/v1/agent/services?filter=${encodeURIComponent('Port > 1')}`)
    expect(filtered.status).toBe(400)
    const byName = await call(h, 'GET', `/v1/agent/services?filter=${encodeURIComponent('Service == "db"')}`)
    expect(Object.keys(byName.json as object)).toEqual(['db'])
    const checks = await call(
      h,
      'GET',
      `/v1/agent/checks?filter=${encodeURIComponent('Status == "critical"')}`,
    )
    expect(checks.json).toEqual({
      'db-ttl': {
        Node: 'agent-1',
        CheckID: 'db-ttl',
        Name: 'db-ttl',
        Status: 'critical',
        Notes: '',
        Output: '',
        ServiceID: 'db',
        ServiceName: '',
        ServiceTags: [],
        Type: '',
        Definition: {},
      },
    })
    expect((await call(h, 'GET', '/v1/agent/members')).json).toMatchObject([{ Name: 'agent-1', Status: 1 }])
    expect((await call(h, 'GET', '/v1/agent/self')).json).toEqual({
      Config: { Datacenter: 'dc1', NodeName: 'agent-1' },
    })
  })

  it('service/:id answers the service with its ContentHash, 404 when unknown', async () => {
    const h = await start()
    h.agent.services_ = [service('web-1', 'web')]
    const res = await call(h, 'GET', '/v1/agent/service/web-1')
    const hash = res.headers.get('x-consul-contenthash')
    expect(hash).toMatch(/^[0-9a-f]{16}$/)
    expect(res.json).toMatchObject({ ID: 'web-1', Service: 'web', ContentHash: hash })
    const missing = await call(h, 'GET', '/v1/agent/service/nope')
    expect([missing.status, missing.text]).toEqual([404, 'unknown service ID: nope'])
  })

  it('service/:id?hash= waits while the hash is the same; wakes on a catalog change of this node', async () => {
    const h = await start()
    h.agent.services_ = [service('web-1', 'web')]
    const first = await call(h, 'GET', '/v1/agent/service/web-1')
    const hash = first.headers.get('x-consul-contenthash') ?? ''
    const timedOut = await call(h, 'GET', `/v1/agent/service/web-1?hash=${hash}&wait=50ms`)
    expect([timedOut.status, timedOut.headers.get('x-consul-contenthash')]).toEqual([200, hash])

    let settled = false
    const pending = call(h, 'GET', `/v1/agent/service/web-1?hash=${hash}&wait=5s`)
    void pending.then(() => (settled = true))
    await waitFor(() => h.catalog.waiterCount === 1, 'the query to wait')
    // Another node's change does not wake it; this node's change with the same service does not end it.
    await h.writer.register({ node: nodeRecord({ Node: 'other', Address: '10.0.0.2' }) })
    await h.writer.register({ node: nodeRecord({ Node: 'agent-1', Address: '10.0.0.1' }) })
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect([settled, h.catalog.waiterCount]).toEqual([false, 1])
    h.agent.services_ = [service('web-1', 'web', 9090)]
    await h.writer.putService('agent-1', serviceRecord({ ID: 'web-1', Service: 'web', Port: 9090 }))
    const changed = await pending
    expect(changed.json).toMatchObject({ Port: 9090 })
    expect(changed.headers.get('x-consul-contenthash')).not.toBe(hash)
  })

  it('health by name and by id: 200 passing, 429 warning, 503 critical or maintenance, 404 unknown', async () => {
    const h = await start()
    h.agent.services_ = [service('web-1', 'web'), service('web-2', 'web'), service('db', 'db')]
    h.agent.checks_ = [check('web-1-ttl', 'web-1', 'passing'), check('db-ttl', 'db', 'passing')]
    const byName = await call(h, 'GET', '/v1/agent/health/service/name/web')
    expect(byName.status).toBe(200)
    expect(byName.json).toMatchObject([
      { AggregatedStatus: 'passing', Service: { ID: 'web-1' }, Checks: [{ CheckID: 'web-1-ttl' }] },
      { AggregatedStatus: 'passing', Service: { ID: 'web-2' }, Checks: [] },
    ])
    h.agent.checks_.push(check('web-2-ttl', 'web-2', 'warning'))
    const text = await call(h, 'GET', '/v1/agent/health/service/name/web?format=text')
    expect([text.status, text.type, text.text]).toEqual([429, 'text/plain; charset=utf-8', 'warning'])
    const accept = await call(h, 'GET', '/v1/agent/health/service/id/web-1', undefined, {
      accept: 'text/plain',
    })
    expect([accept.status, accept.text]).toEqual([200, 'passing'])
    h.agent.checks_.push(check('node-disk', '', 'critical'))
    expect((await call(h, 'GET', '/v1/agent/health/service/id/db')).status).toBe(503)
    expect((await call(h, 'GET', '/v1/agent/health/service/id/db')).json).toMatchObject({
      AggregatedStatus: 'critical',
      Service: { ID: 'db' },
      Checks: [{ CheckID: 'db-ttl' }, { CheckID: 'node-disk' }],
    })
    h.agent.checks_ = [{ ...check('_service_maintenance:db', 'db', 'critical') }]
    const maintenance = await call(h, 'GET', '/v1/agent/health/service/id/db?format=text')
    expect([maintenance.status, maintenance.text]).toEqual([503, 'maintenance'])
    const unknownName = await call(h, 'GET', '/v1/agent/health/service/name/nope')
    expect([unknownName.status, unknownName.json]).toEqual([404, []])
    const unknownText = await call(h, 'GET', '/v1/agent/health/service/name/nope?format=text')
    expect([unknownText.status, unknownText.text]).toEqual([404, 'ServiceName nope Not Found'])
    const unknownId = await call(h, 'GET', '/v1/agent/health/service/id/nope')
    expect([unknownId.status, unknownId.text]).toEqual([404, 'ServiceId nope not found'])
  })
})

async function waitFor(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
