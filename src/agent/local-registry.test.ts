/**
 * Proves LocalRegistry end to end against the real pieces: an in-process store (LocalKvStore), the
 * catalog view fed by the real feed (startCatalogFeed → CatalogState), the real CatalogWriter, a
 * temp data dir, and real probes (an HTTP server whose status is flipped, a TCP listener opened
 * and closed, TTL checks driven through updateTtlCheck). Every assertion reads what the catalog
 * shows (CatalogState), not the registry's own view, unless the registry's view is the point.
 *
 * Rules covered: check results reach the catalog, once per change; embedded check ids; replace-
 * existing-checks; identical re-registration keeps status; calls apply in call order, not answer
 * order; maintenance (service and node);
 * DeregisterCriticalServiceAfter (on a manual clock); persistence across a restart; anti-entropy
 * (a deleted service comes back, foreign services and checks go, EnableTagOverride keeps catalog
 * tags, the machine check is left alone, the periodic timer runs); writes retried while the store
 * is unavailable; a missing node waited for; every refusal changes nothing anywhere.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../catalog/feed.ts'
import { checkRecord, nodeRecord, serviceRecord } from '../catalog/records.ts'
import { CatalogState } from '../catalog/state.ts'
import { CatalogWriter } from '../catalog/writer.ts'
import { CairnError, type ErrorCode, isCairnError } from '../errors.ts'
import type { KvStore } from '../kv/kv-store.ts'
import { LocalKvStore } from '../kv/local-kv-store.ts'
import { eventually, ManualClock } from './checks/test-helpers.ts'
import {
  LocalRegistry,
  type LocalRegistryOptions,
  nodeMaintenanceNotesDefault,
  type RegistryLog,
  serviceMaintenanceNotesDefault,
} from './local-registry.ts'
import { localStatePath } from './local-state-file.ts'
import { ttlStatePath } from './ttl-check-state.ts'

const node = 'n1'

/** The store as the registry's writer sees it: writes can be switched off ("no leader") and counted. */
class FlakyStore implements KvStore {
  down = false
  /** Writes that went through. */
  writes = 0
  /** Writes tried, failed ones included. */
  attempts = 0
  constructor(readonly inner: LocalKvStore) {}
  #gate(): void {
    this.attempts++
    if (this.down) throw new CairnError('RAFT_NO_LEADER')
    this.writes++
  }
  range: KvStore['range'] = async (req, options) => {
    if (this.down) throw new CairnError('RAFT_NO_LEADER')
    return this.inner.range(req, options)
  }
  put: KvStore['put'] = async (req) => {
    this.#gate()
    return this.inner.put(req)
  }
  delete: KvStore['delete'] = async (req) => {
    this.#gate()
    return this.inner.delete(req)
  }
  txn: KvStore['txn'] = async (req) => {
    this.#gate()
    return this.inner.txn(req)
  }
  leaseGrant: KvStore['leaseGrant'] = (req) => this.inner.leaseGrant(req)
  leaseKeepAlive: KvStore['leaseKeepAlive'] = (id) => this.inner.leaseKeepAlive(id)
  leaseRevoke: KvStore['leaseRevoke'] = (id) => this.inner.leaseRevoke(id)
  leaseTimeToLive: KvStore['leaseTimeToLive'] = (id, options) => this.inner.leaseTimeToLive(id, options)
  lastChange: KvStore['lastChange'] = (spec, since, options) => this.inner.lastChange(spec, since, options)
  watch: KvStore['watch'] = (req) => this.inner.watch(req)
}

class LogRecorder implements RegistryLog {
  readonly lines: { level: string; obj: object; msg: string }[] = []
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg })
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg })
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg })
  }
  count(text: string): number {
    return this.lines.filter((l) => l.msg.includes(text)).length
  }
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** What the machine module does at agent start: the node record and the machine key on a lease. */
async function writeNode(inner: LocalKvStore, writer: CatalogWriter): Promise<void> {
  await writer.register({ node: nodeRecord({ Node: node, Address: '10.0.0.1', Agent: true }) })
  const lease = await inner.leaseGrant({ ttlMs: 3_600_000 })
  await writer.putMachine({ Node: node, Lease: lease.id, SinceMs: 0 })
}

async function setup(options: Partial<LocalRegistryOptions> & { withNode?: boolean } = {}) {
  const { withNode = true, ...extra } = options
  const inner = new LocalKvStore()
  const store = new FlakyStore(inner)
  const catalog = new CatalogState()
  const feed = startCatalogFeed(inner, catalog)
  cleanups.push(() => feed.stop())
  await feed.ready
  const writer = new CatalogWriter(store)
  if (withNode) await writeNode(inner, new CatalogWriter(inner))
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-registry-'))
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
  const log = new LogRecorder()
  const make = (more: Partial<LocalRegistryOptions> = {}): LocalRegistry => {
    const registry = new LocalRegistry({
      nodeName: node,
      datacenter: 'dc1',
      writer,
      catalog,
      dataDir,
      enableScriptChecks: false,
      role: 'client',
      log,
      nodeId: '11111111-2222-3333-4444-555555555555',
      address: '10.0.0.1',
      port: 4001,
      version: '0.1.0',
      fullSyncMs: 3_600_000, // tests call fullSync() unless the timer is the point
      retryDelayMsMin: 10,
      retryDelayMsMax: 50,
      checkIntervalMsMin: 10,
      checkFirstRunDelayMs: 0,
      ...extra,
      ...more,
    })
    cleanups.push(() => registry.stop())
    return registry
  }
  const registry = make()
  await registry.start()
  return { inner, store, catalog, writer, dataDir, log, registry, make }
}

/** An HTTP server answering `code`, counting requests. */
async function httpTarget() {
  const target = { code: 200, requests: 0, url: '' }
  const server: Server = createHttpServer((_req, res) => {
    target.requests++
    res.writeHead(target.code).end(`status ${target.code}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  target.url = `http://127.0.0.1:${address.port}/health`
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return target
}

/** The catalog's checks for the node as {id: status}, the machine check included. */
function catalogStatuses(catalog: CatalogState): Record<string, string> {
  return Object.fromEntries(catalog.nodeChecks(node).map((c) => [c.CheckID, c.Status]))
}

function catalogCheck(catalog: CatalogState, id: string) {
  return catalog.nodeChecks(node).find((c) => c.CheckID === id)
}

async function rejection(promise: Promise<unknown>, code: ErrorCode): Promise<string> {
  try {
    await promise
  } catch (error) {
    if (!isCairnError(error, code)) throw error
    return (error as Error).message
  }
  throw new Error(`expected ${code}, but it was accepted`)
}

describe('health checks reach the catalog', () => {
  it('an HTTP check follows the server: 200 passing, 429 warning, 500 critical', async () => {
    const { registry, catalog } = await setup()
    const target = await httpTarget()
    await registry.registerService(
      { Name: 'web', ID: 'web-1', Port: 8080, Tags: ['v1'], Check: { HTTP: target.url, Interval: '20ms' } },
      { replaceExistingChecks: false },
    )
    const status = () => catalog.serviceEntries('web')[0]?.status
    await eventually(() => status() === 'passing', 'web passing')
    target.code = 429
    await eventually(() => status() === 'warning', 'web warning on 429')
    target.code = 500
    await eventually(() => status() === 'critical', 'web critical on 500')
    target.code = 200
    await eventually(() => status() === 'passing', 'web passing again')
    const check = catalogCheck(catalog, 'service:web-1')
    expect(check).toMatchObject({
      Name: "Service 'web' check",
      ServiceID: 'web-1',
      ServiceName: 'web',
      ServiceTags: ['v1'],
      Type: 'http',
      Definition: { HTTP: target.url, Method: 'GET', Interval: '20ms', Timeout: '10s' },
    })
    expect(check?.Output).toContain('200 OK')
    expect(registry.checks().find((c) => c.CheckID === 'service:web-1')).toMatchObject({
      Node: node,
      Status: 'passing',
    })
  })

  it('results are written only when they change', async () => {
    const { registry, catalog, store } = await setup()
    const target = await httpTarget()
    await registry.registerService(
      { Name: 'web', Check: { HTTP: target.url, Interval: '10ms' } },
      { replaceExistingChecks: false },
    )
    await eventually(() => catalogCheck(catalog, 'service:web')?.Status === 'passing', 'passing')
    const writes = store.writes
    const requests = target.requests
    await eventually(() => target.requests >= requests + 5, 'five more probes')
    expect(store.writes).toBe(writes)
  })

  it('a TCP check follows the listener: open passing, closed critical', async () => {
    const { registry, catalog } = await setup()
    const listener: TcpServer = createTcpServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
    const address = listener.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    await registry.registerService(
      { Name: 'db', Check: { TCP: `127.0.0.1:${address.port}`, Interval: '20ms', Timeout: '1s' } },
      { replaceExistingChecks: false },
    )
    await eventually(() => catalogCheck(catalog, 'service:db')?.Status === 'passing', 'db passing')
    await new Promise<void>((resolve) => listener.close(() => resolve()))
    await eventually(() => catalogCheck(catalog, 'service:db')?.Status === 'critical', 'db critical')
    expect(catalogCheck(catalog, 'service:db')).toMatchObject({ Type: 'tcp' })
  })

  it('TTL checks: pass, warn, fail and update land in the catalog with their note', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService({ Name: 'api', Check: { TTL: '30s' } }, { replaceExistingChecks: false })
    expect(catalogCheck(catalog, 'service:api')).toMatchObject({ Status: 'critical', Type: 'ttl' })
    for (const [status, note] of [
      ['passing', 'all good'],
      ['warning', 'slow'],
      ['critical', 'down'],
      ['passing', ''],
    ] as const) {
      await registry.updateTtlCheck('service:api', status, note)
      // The update resolves once its write was made: the catalog shows it at once.
      expect(catalogCheck(catalog, 'service:api')).toMatchObject({ Status: status, Output: note })
    }
  })

  it('TTL updates: unknown id, a non-TTL check, a bad status', async () => {
    const { registry } = await setup()
    const target = await httpTarget()
    await registry.registerService(
      { Name: 'web', Checks: [{ HTTP: target.url, Interval: '1s' }, { TTL: '10s' }] },
      { replaceExistingChecks: false },
    )
    await rejection(registry.updateTtlCheck('nope', 'passing', ''), 'CATALOG_CHECK_NOT_FOUND')
    await rejection(registry.updateTtlCheck('service:web:1', 'passing', ''), 'CHECK_NOT_TTL')
    await rejection(registry.updateTtlCheck('service:web:2', 'fine' as 'passing', ''), 'CHECK_INVALID')
  })
})

describe('registration', () => {
  it('embedded checks get service:<id> ids, numbered when there are several', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService(
      { Name: 'web', Checks: [{ TTL: '10s' }, { TTL: '10s', Name: 'second' }] },
      { replaceExistingChecks: false },
    )
    await registry.registerService({ Name: 'api', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    expect(registry.checks().map((c) => [c.CheckID, c.Name])).toEqual([
      ['service:api', "Service 'api' check"],
      ['service:web:1', "Service 'web' check"],
      ['service:web:2', 'second'],
    ])
    expect(Object.keys(catalogStatuses(catalog)).sort()).toEqual([
      'serfHealth',
      'service:api',
      'service:web:1',
      'service:web:2',
    ])
    expect(registry.services().map((s) => [s.ID, s.Datacenter])).toEqual([
      ['api', 'dc1'],
      ['web', 'dc1'],
    ])
  })

  it('replace-existing-checks removes the checks the new body leaves out; without it they stay', async () => {
    const { registry, catalog } = await setup()
    const body = (checks: object[]) => ({ Name: 'web', Checks: checks })
    await registry.registerService(
      body([
        { ID: 'a', Name: 'a', TTL: '10s' },
        { ID: 'b', Name: 'b', TTL: '10s' },
      ]),
      { replaceExistingChecks: false },
    )
    await registry.registerService(body([{ ID: 'a', Name: 'a', TTL: '10s' }]), {
      replaceExistingChecks: false,
    })
    expect(Object.keys(catalogStatuses(catalog)).sort()).toEqual(['a', 'b', 'serfHealth'])
    await registry.registerService(body([{ ID: 'a', Name: 'a', TTL: '10s' }]), {
      replaceExistingChecks: true,
    })
    expect(Object.keys(catalogStatuses(catalog)).sort()).toEqual(['a', 'serfHealth'])
    expect(registry.checks().map((c) => c.CheckID)).toEqual(['a'])
  })

  it('an identical re-registration keeps check status and writes nothing', async () => {
    const { registry, catalog, store } = await setup()
    const body = { Name: 'web', Tags: ['v1'], Check: { TTL: '10s' } }
    await registry.registerService(body, { replaceExistingChecks: false })
    await registry.updateTtlCheck('service:web', 'passing', 'ok')
    const writes = store.writes
    await registry.registerService(structuredClone(body), { replaceExistingChecks: true })
    expect(store.writes).toBe(writes)
    expect(catalogCheck(catalog, 'service:web')?.Status).toBe('passing')
    expect(registry.checks()[0]?.Status).toBe('passing')
  })

  it('a changed registration rewrites the service and gives its checks the new tags', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService(
      { Name: 'web', Tags: ['v1'], Check: { TTL: '10s' } },
      { replaceExistingChecks: false },
    )
    await registry.updateTtlCheck('service:web', 'passing', 'ok')
    await registry.registerService(
      { Name: 'web', Tags: ['v2'], Check: { TTL: '10s' } },
      { replaceExistingChecks: false },
    )
    expect(catalog.serviceEntries('web')[0]?.service.record.Tags).toEqual(['v2'])
    expect(catalogCheck(catalog, 'service:web')).toMatchObject({ ServiceTags: ['v2'], Status: 'passing' })
  })

  it('deregistering a service removes it and its checks; an unknown id answers false', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService(
      { Name: 'web', Checks: [{ TTL: '1m' }, { TTL: '2m' }] },
      { replaceExistingChecks: false },
    )
    await registry.setServiceMaintenance('web', true, '')
    expect(await registry.deregisterService('web')).toBe(true)
    expect(catalog.serviceEntries('web')).toEqual([])
    expect(Object.keys(catalogStatuses(catalog))).toEqual(['serfHealth'])
    expect(registry.checks()).toEqual([])
    expect(await registry.deregisterService('web')).toBe(false)
  })

  it('calls take effect in the order they are made, not in the order they answer (the unit runner relies on it)', async () => {
    const { registry, catalog } = await setup()
    const body = { Name: 'web', Check: { TTL: '10s' } }
    // None awaited before the next is made: a registration answers only after its catalog write.
    const answers = await Promise.all([
      registry.registerService(body, { replaceExistingChecks: true }),
      registry.deregisterService('web'),
      registry.registerService(body, { replaceExistingChecks: true }),
    ])
    expect(answers).toEqual([undefined, true, undefined]) // the deregistration found the first one
    expect(registry.services().map((s) => s.ID)).toEqual(['web'])
    expect(catalog.serviceEntries('web').length).toBe(1)
  })

  it('node-level checks: registered, shown on every service, deregistered', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    expect(catalog.serviceEntries('web')[0]?.status).toBe('passing')
    await registry.registerCheck({ Name: 'disk', TTL: '1m' })
    expect(catalogCheck(catalog, 'disk')).toMatchObject({ ServiceID: '', Status: 'critical', Type: 'ttl' })
    expect(catalog.serviceEntries('web')[0]?.status).toBe('critical')
    await registry.updateTtlCheck('disk', 'passing', '')
    expect(catalog.serviceEntries('web')[0]?.status).toBe('passing')
    expect(await registry.deregisterCheck('disk')).toBe(true)
    expect(catalogCheck(catalog, 'disk')).toBeUndefined()
    expect(await registry.deregisterCheck('disk')).toBe(false)
  })

  it('a check registered for a service carries its name and tags', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService(
      { Name: 'web', ID: 'web-1', Tags: ['t'] },
      { replaceExistingChecks: false },
    )
    await registry.registerCheck({ Name: 'extra', service_id: 'web-1', ttl: '1m', status: 'warning' })
    expect(catalogCheck(catalog, 'extra')).toMatchObject({
      ServiceID: 'web-1',
      ServiceName: 'web',
      ServiceTags: ['t'],
      Status: 'warning',
    })
  })
})

describe('maintenance', () => {
  it('service maintenance adds a critical _service_maintenance:<id> check; disabling removes it', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await registry.setServiceMaintenance('web', true, '')
    expect(catalogCheck(catalog, '_service_maintenance:web')).toMatchObject({
      Name: 'Service Maintenance Mode',
      Notes: serviceMaintenanceNotesDefault,
      Status: 'critical',
      ServiceID: 'web',
      ServiceName: 'web',
    })
    expect(catalog.serviceEntries('web')[0]?.status).toBe('critical')
    await registry.setServiceMaintenance('web', true, 'a second reason is ignored, as in Consul')
    expect(catalogCheck(catalog, '_service_maintenance:web')?.Notes).toBe(serviceMaintenanceNotesDefault)
    await registry.setServiceMaintenance('web', false, '')
    expect(catalogCheck(catalog, '_service_maintenance:web')).toBeUndefined()
    expect(catalog.serviceEntries('web')[0]?.status).toBe('passing')
    await registry.setServiceMaintenance('web', true, 'deploying v2')
    expect(catalogCheck(catalog, '_service_maintenance:web')?.Notes).toBe('deploying v2')
  })

  it('node maintenance adds _node_maintenance, which makes every service critical', async () => {
    const { registry, catalog } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await registry.registerService({ Name: 'api' }, { replaceExistingChecks: false })
    await registry.setNodeMaintenance(true, '')
    expect(catalogCheck(catalog, '_node_maintenance')).toMatchObject({
      Name: 'Node Maintenance Mode',
      Notes: nodeMaintenanceNotesDefault,
      Status: 'critical',
      ServiceID: '',
    })
    expect(['web', 'api'].map((s) => catalog.serviceEntries(s)[0]?.status)).toEqual(['critical', 'critical'])
    await rejection(registry.updateTtlCheck('_node_maintenance', 'passing', ''), 'CHECK_NOT_TTL')
    await registry.setNodeMaintenance(false, '')
    expect(catalogCheck(catalog, '_node_maintenance')).toBeUndefined()
  })
})

describe('DeregisterCriticalServiceAfter', () => {
  it('the reaper deregisters a service whose check stayed critical that long (manual clock)', async () => {
    const clock = new ManualClock()
    const { registry, catalog, log } = await setup({ clock })
    await registry.registerService(
      { Name: 'web', Check: { TTL: '10s', DeregisterCriticalServiceAfter: '1m' } },
      { replaceExistingChecks: false },
    )
    await registry.registerService({ Name: 'keep', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    await clock.advance(30_000) // first reap: critical for 30 s only
    expect(registry.services().map((s) => s.ID)).toEqual(['keep', 'web'])
    await clock.advance(30_000) // second reap: critical for 60 s
    await eventually(() => catalog.serviceEntries('web').length === 0, 'web reaped from the catalog')
    expect(registry.services().map((s) => s.ID)).toEqual(['keep'])
    expect(log.count('DeregisterCriticalServiceAfter')).toBe(1)
  })

  it('a check that recovers in time is not reaped', async () => {
    const clock = new ManualClock()
    const { registry } = await setup({ clock })
    await registry.registerService(
      { Name: 'web', Check: { TTL: '50s', DeregisterCriticalServiceAfter: '1m' } },
      { replaceExistingChecks: false },
    )
    await clock.advance(45_000)
    await registry.updateTtlCheck('service:web', 'passing', '')
    await clock.advance(45_000) // critical again after the TTL, but only for 40 s
    expect(registry.services().map((s) => s.ID)).toEqual(['web'])
  })
})

describe('persistence', () => {
  it('a new registry on the same data dir restores services, checks and maintenance', async () => {
    const { registry, make, catalog } = await setup()
    const target = await httpTarget()
    await registry.registerService(
      {
        Name: 'web',
        Tags: ['v1'],
        Meta: { version: '1' },
        Checks: [{ HTTP: target.url, Interval: '20ms' }, { TTL: '10s' }],
      },
      { replaceExistingChecks: false },
    )
    await registry.registerCheck({ Name: 'disk', TTL: '1m', Notes: 'df' })
    await registry.setServiceMaintenance('web', true, 'deploy')
    await registry.setNodeMaintenance(true, '')
    const services = registry.services()
    const ids = registry.checks().map((c) => [c.CheckID, c.Name, c.Notes, c.Type])
    await registry.stop()
    // stop() deregisters nothing: the catalog still has the service.
    expect(catalog.serviceEntries('web')).toHaveLength(1)

    const restarted = make()
    await restarted.start()
    expect(restarted.services()).toEqual(services)
    expect(restarted.checks().map((c) => [c.CheckID, c.Name, c.Notes, c.Type])).toEqual(ids)
    await restarted.updateTtlCheck('service:web:2', 'passing', 'back')
    expect(catalogCheck(catalog, 'service:web:2')).toMatchObject({ Status: 'passing', Output: 'back' })
    await eventually(
      () => catalogCheck(catalog, 'service:web:1')?.Status === 'passing',
      'HTTP check runs again',
    )
    expect(catalogCheck(catalog, '_service_maintenance:web')?.Notes).toBe('deploy')
  })

  it('a restored agent without script checks drops its script checks, logging why', async () => {
    const { registry, make, log } = await setup({ enableScriptChecks: true })
    await registry.registerService(
      { Name: 'job', Checks: [{ Args: ['/bin/true'], Interval: '1h' }, { TTL: '10s' }] },
      { replaceExistingChecks: false },
    )
    await registry.stop()
    const restarted = make({ enableScriptChecks: false })
    await restarted.start()
    expect(restarted.checks().map((c) => c.CheckID)).toEqual(['service:job:2'])
    expect(log.count('a persisted check was not restored')).toBe(1)
  })

  it("a TTL check's last status comes back after a restart while its TTL has not run out", async () => {
    const wall = { nowMs: 1_700_000_000_000 }
    const { registry, make, catalog, log } = await setup({ wallClock: () => wall.nowMs })
    await registry.registerService(
      { Name: 'web', Checks: [{ TTL: '30s' }, { TTL: '30s' }, { TTL: '30s' }] },
      { replaceExistingChecks: false },
    )
    await registry.updateTtlCheck('service:web:1', 'passing', 'all good')
    await registry.updateTtlCheck('service:web:2', 'warning', 'slow')
    // The last update wins, whatever order the writes would end in.
    await Promise.all([
      registry.updateTtlCheck('service:web:3', 'critical', 'first'),
      registry.updateTtlCheck('service:web:3', 'passing', 'second'),
    ])
    await registry.stop()

    wall.nowMs += 29_000 // within the 30 s TTL of the updates
    const restarted = make({ wallClock: () => wall.nowMs })
    await restarted.start()
    const statuses = Object.fromEntries(restarted.checks().map((c) => [c.CheckID, [c.Status, c.Output]]))
    expect(statuses).toEqual({
      'service:web:1': ['passing', 'all good'],
      'service:web:2': ['warning', 'slow'],
      'service:web:3': ['passing', 'second'],
    })
    expect(log.count('TTL check status restored')).toBe(3)
    // The start's full sync puts the restored statuses in the catalog: the service stays healthy.
    expect(catalogCheck(catalog, 'service:web:1')).toMatchObject({ Status: 'passing', Output: 'all good' })
  })

  it('a saved TTL status that has run out, or is damaged, is not restored; one of a check that is gone is removed', async () => {
    const wall = { nowMs: 1_700_000_000_000 }
    const { registry, make, dataDir } = await setup({ wallClock: () => wall.nowMs })
    await registry.registerService(
      { Name: 'web', Checks: [{ TTL: '30s' }, { TTL: '30s' }] },
      { replaceExistingChecks: false },
    )
    await registry.updateTtlCheck('service:web:1', 'passing', 'old')
    await registry.updateTtlCheck('service:web:2', 'passing', 'fine')
    await registry.stop()
    const { writeFile } = await import('node:fs/promises')
    await writeFile(ttlStatePath(dataDir, 'service:web:2'), '{"version":1,"checkId":')
    // A file left by a check that is gone (a crash between its deregistration and the removal).
    const orphan = ttlStatePath(dataDir, 'gone-before-the-crash')
    await writeFile(
      orphan,
      JSON.stringify({
        version: 1,
        checkId: 'gone-before-the-crash',
        status: 'passing',
        output: '',
        expiresAtMs: wall.nowMs + 1e9,
      }),
    )

    wall.nowMs += 31_000 // past the TTL of service:web:1's update
    const restarted = make({ wallClock: () => wall.nowMs })
    await restarted.start()
    const statuses = Object.fromEntries(restarted.checks().map((c) => [c.CheckID, [c.Status, c.Output]]))
    expect(statuses).toEqual({ 'service:web:1': ['critical', ''], 'service:web:2': ['critical', ''] })
    expect(existsSync(orphan)).toBe(false)
  })

  it('a deregistered or redefined TTL check leaves no saved status behind', async () => {
    const { registry, dataDir } = await setup()
    await registry.registerCheck({ ID: 'gone', Name: 'gone', TTL: '1m' })
    await registry.registerCheck({ ID: 'changed', Name: 'changed', TTL: '1m' })
    await registry.updateTtlCheck('gone', 'passing', '')
    await registry.updateTtlCheck('changed', 'passing', '')
    const exists = (id: string) => existsSync(ttlStatePath(dataDir, id))
    expect([exists('gone'), exists('changed')]).toEqual([true, true])
    await registry.deregisterCheck('gone')
    await registry.registerCheck({ ID: 'changed', Name: 'changed', TTL: '2m' })
    await eventually(() => !exists('gone') && !exists('changed'), 'state files removed')
    // The redefined check saves its own status again.
    await registry.updateTtlCheck('changed', 'warning', 'new')
    expect(exists('changed')).toBe(true)
  })

  it('a damaged file stops the start with CONFIG_INVALID instead of dropping registrations', async () => {
    const { registry, make, dataDir } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await registry.stop()
    const { writeFile } = await import('node:fs/promises')
    await writeFile(localStatePath(dataDir), '{"version":1')
    await rejection(make().start(), 'CONFIG_INVALID')
  })
})

describe('anti-entropy', () => {
  it('a service deleted from the catalog behind the agent comes back at the next full sync', async () => {
    const { registry, catalog, writer } = await setup()
    await registry.registerService({ Name: 'web', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    await registry.updateTtlCheck('service:web', 'passing', 'ok')
    await writer.deregisterService(node, 'web')
    expect(catalog.serviceEntries('web')).toEqual([])
    await registry.fullSync()
    expect(catalog.serviceEntries('web')[0]?.status).toBe('passing')
    expect(catalogCheck(catalog, 'service:web')?.Output).toBe('ok')
  })

  it('services and checks written for this node that the agent does not know are removed; serfHealth stays', async () => {
    const { registry, catalog, writer, inner } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await writer.register({
      node: nodeRecord({ Node: node, Address: '' }),
      skipNodeUpdate: true,
      services: [serviceRecord({ ID: 'intruder', Service: 'intruder' })],
      checks: [
        checkRecord({ CheckID: 'intruder-check', ServiceID: 'intruder', ServiceName: 'intruder' }),
        checkRecord({ CheckID: 'stray', Status: 'passing' }),
        checkRecord({ CheckID: 'on-web', ServiceID: 'web', Status: 'passing' }),
      ],
    })
    expect(catalog.serviceEntries('intruder')).toHaveLength(1)
    await registry.fullSync()
    expect(catalog.nodeServices(node).map((s) => s.record.ID)).toEqual(['web'])
    expect(catalogStatuses(catalog)).toEqual({ serfHealth: 'passing' })
    // The node and its machine key were not touched.
    expect(catalog.machineAlive(node)).toBe(true)
    expect(catalog.nodeEntry(node)?.record.Address).toBe('10.0.0.1')
    expect((await inner.range({ key: '/_cairn/catalog/machines/n1' })).kvs).toHaveLength(1)
  })

  it('EnableTagOverride keeps tags changed in the catalog; other fields, and other services, are reverted', async () => {
    const { registry, catalog, writer } = await setup()
    await registry.registerService(
      { Name: 'web', Tags: ['a'], Port: 80, EnableTagOverride: true, Check: { TTL: '10s' } },
      { replaceExistingChecks: false },
    )
    await registry.registerService({ Name: 'api', Tags: ['a'], Port: 81 }, { replaceExistingChecks: false })
    const web = catalog.serviceEntries('web')[0]!.service.record
    const api = catalog.serviceEntries('api')[0]!.service.record
    await writer.putService(node, { ...web, Tags: ['b', 'canary'], Port: 9999 })
    await writer.putService(node, { ...api, Tags: ['b'] })
    await registry.fullSync()
    expect(catalog.serviceEntries('web')[0]?.service.record).toMatchObject({
      Tags: ['b', 'canary'],
      Port: 80,
    })
    expect(catalog.serviceEntries('api')[0]?.service.record.Tags).toEqual(['a'])
    expect(registry.services().find((s) => s.ID === 'web')?.Tags).toEqual(['b', 'canary'])
    expect(catalogCheck(catalog, 'service:web')?.ServiceTags).toEqual(['b', 'canary'])
  })

  it('a check status changed in the catalog is put back', async () => {
    const { registry, catalog, writer } = await setup()
    await registry.registerService({ Name: 'web', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    const stored = catalogCheck(catalog, 'service:web')!
    const { Node: _n, CreateIndex: _c, ModifyIndex: _m, ...record } = stored
    await writer.putCheck(node, { ...record, Status: 'passing', Output: 'forged' })
    await registry.fullSync()
    expect(catalogCheck(catalog, 'service:web')).toMatchObject({ Status: 'critical', Output: '' })
  })

  it('an agent in sync writes nothing at a full sync', async () => {
    const { registry, store } = await setup()
    await registry.registerService(
      { Name: 'web', Tags: ['x'], Check: { TTL: '10s' } },
      { replaceExistingChecks: false },
    )
    await registry.setNodeMaintenance(true, 'r')
    const writes = store.writes
    await registry.fullSync()
    expect(store.writes).toBe(writes)
  })

  it('the periodic full sync runs on its own timer', async () => {
    const { registry, catalog, writer } = await setup({ fullSyncMs: 20 })
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await writer.deregisterService(node, 'web')
    await eventually(() => catalog.serviceEntries('web').length === 1, 'web back through the timer')
  })

  it('writes that fail while the store is unavailable are retried with backoff', async () => {
    const { registry, catalog, store, log } = await setup()
    store.down = true
    await registry.registerService({ Name: 'web', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    expect(registry.services().map((s) => s.ID)).toEqual(['web'])
    expect(catalog.serviceEntries('web')).toEqual([])
    const attempts = store.attempts
    await eventually(() => store.attempts >= attempts + 2, 'two retries failed too')
    await registry.updateTtlCheck('service:web', 'passing', 'meanwhile')
    store.down = false
    await eventually(
      () => catalog.serviceEntries('web').length === 1,
      'web written after the store came back',
    )
    expect(catalogCheck(catalog, 'service:web')).toMatchObject({ Status: 'passing', Output: 'meanwhile' })
    // One line when the failures start and one when they end, not one per failed pass.
    expect(log.count('will retry')).toBe(1)
    expect(log.count('go through again')).toBe(1)
  })

  it('large records are split into transactions the store accepts', async () => {
    const { registry, catalog, writer, store } = await setup()
    const checks = Array.from({ length: 4 }, (_, i) => ({
      ID: `big${i}`,
      Name: 'big',
      TTL: '1m',
      OutputMaxSize: 1 << 20,
    }))
    await registry.registerService({ Name: 'web', Checks: checks }, { replaceExistingChecks: false })
    for (let i = 0; i < 4; i++) await registry.updateTtlCheck(`big${i}`, 'passing', String(i).repeat(700_000))
    await writer.deregisterService(node, 'web')
    const writes = store.writes
    await registry.fullSync() // the service and four 700 KB checks: 2.8 MB, over one command's 2 MiB
    expect(catalog.serviceEntries('web')[0]?.status).toBe('passing')
    expect(catalog.nodeChecks(node).filter((c) => c.Output.length === 700_000)).toHaveLength(4)
    expect(store.writes - writes).toBeGreaterThan(1)
  })

  it('gives up after retryAttemptsMax and leaves the rest to the next full sync', async () => {
    const { registry, catalog, store, log } = await setup({ retryAttemptsMax: 2 })
    store.down = true
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await eventually(() => log.count('keep failing') === 1, 'gave up')
    store.down = false
    expect(catalog.serviceEntries('web')).toEqual([])
    await registry.fullSync()
    expect(catalog.serviceEntries('web')).toHaveLength(1)
  })

  it('without a node in the catalog, registrations wait (logged once) and land when it appears', async () => {
    const { registry, catalog, inner, log } = await setup({ withNode: false })
    await registry.registerService({ Name: 'web', Check: { TTL: '10s' } }, { replaceExistingChecks: false })
    await registry.registerService({ Name: 'api' }, { replaceExistingChecks: false })
    expect(catalog.nodeServices(node)).toEqual([])
    expect(log.count('not in the catalog yet')).toBe(1)
    await writeNode(inner, new CatalogWriter(inner))
    await eventually(() => catalog.serviceEntries('web').length === 1, 'web once the node exists')
    await eventually(() => catalog.serviceEntries('api').length === 1, 'api once the node exists')
    expect(catalogCheck(catalog, 'service:web')).toBeDefined()
    // No node record was invented by the registry.
    expect(catalog.nodeEntry(node)?.record.Address).toBe('10.0.0.1')
  })
})

describe('refusals change nothing', () => {
  async function snapshot(s: Awaited<ReturnType<typeof setup>>) {
    return {
      file: await readFile(localStatePath(s.dataDir), 'utf8'),
      services: s.registry.services(),
      checks: s.registry.checks(),
      revision: s.inner.stateMachine.revision,
    }
  }

  it('bad bodies, unknown ids and limits are refused before anything is written', async () => {
    const s = await setup({ servicesMax: 2, checksMax: 3 })
    const { registry } = s
    await registry.registerService(
      { Name: 'web', Checks: [{ TTL: '1m' }, { TTL: '1m' }] },
      { replaceExistingChecks: false },
    )
    await registry.registerService({ Name: 'api', Check: { TTL: '1m' } }, { replaceExistingChecks: false })
    const before = await snapshot(s)
    const keep = { replaceExistingChecks: false }
    const cases: [Promise<unknown>, ErrorCode][] = [
      [registry.registerService({ ID: 'x' }, keep), 'CATALOG_INVALID'],
      [registry.registerService('not json object', keep), 'CATALOG_INVALID'],
      [registry.registerService({ Name: 'web', Tags: 'a' }, keep), 'CATALOG_INVALID'],
      [registry.registerService({ Name: 'web', Meta: { 'consul-x': '1' } }, keep), 'CATALOG_INVALID'],
      [registry.registerService({ Name: 'web', Check: { TTL: 'soon' } }, keep), 'CHECK_INVALID'],
      [
        registry.registerService({ Name: 'web', Check: { Args: ['/bin/true'], Interval: '1s' } }, keep),
        'CHECK_INVALID',
      ],
      [registry.registerService({ Name: 'third' }, keep), 'CATALOG_INVALID'], // servicesMax
      [
        registry.registerService({ Name: 'api', Checks: [{ TTL: '1m' }, { TTL: '1m' }] }, keep),
        'CATALOG_INVALID',
      ], // checksMax
      [registry.registerCheck({ Name: 'c', TTL: '1m', ServiceID: 'nope' }), 'CHECK_INVALID'],
      [registry.registerCheck({ Name: 'serfHealth', TTL: '1m' }), 'CHECK_INVALID'],
      [registry.registerCheck({ Name: 'c', ID: '_service_maintenance:web', TTL: '1m' }), 'CHECK_INVALID'],
      [registry.registerCheck({ Name: 'c', TTL: '1m' }), 'CATALOG_INVALID'], // checksMax
      [registry.setServiceMaintenance('nope', true, ''), 'CATALOG_SERVICE_NOT_FOUND'],
      [registry.setServiceMaintenance('nope', false, ''), 'CATALOG_SERVICE_NOT_FOUND'],
      [registry.setServiceMaintenance('web', true, 'x'.repeat(5000)), 'CATALOG_INVALID'],
      [registry.setNodeMaintenance(true, 'x'.repeat(5000)), 'CATALOG_INVALID'],
      [registry.updateTtlCheck('nope', 'passing', ''), 'CATALOG_CHECK_NOT_FOUND'],
      [registry.updateTtlCheck('service:api', 'fine' as 'passing', ''), 'CHECK_INVALID'],
    ]
    for (const [promise, code] of cases) await rejection(promise, code)
    expect(await snapshot(s)).toEqual(before)
    expect(await registry.deregisterService('nope')).toBe(false)
    expect(await registry.deregisterCheck('nope')).toBe(false)
    expect(await snapshot(s)).toEqual(before)
  })

  it('a service may not have more than serviceChecksMax checks in all', async () => {
    const { registry } = await setup()
    const checks = Array.from({ length: 40 }, (_, i) => ({ ID: `a${i}`, Name: 'a', TTL: '1m' }))
    await registry.registerService({ Name: 'web', Checks: checks }, { replaceExistingChecks: false })
    const more = Array.from({ length: 25 }, (_, i) => ({ ID: `b${i}`, Name: 'b', TTL: '1m' }))
    const message = await rejection(
      registry.registerService({ Name: 'web', Checks: more }, { replaceExistingChecks: false }),
      'CATALOG_INVALID',
    )
    expect(message).toContain('serviceChecksMax')
    await registry.registerService({ Name: 'web', Checks: more }, { replaceExistingChecks: true })
    expect(registry.checks()).toHaveLength(25)
  })

  it('a registration that cannot be persisted is refused and changes nothing', async () => {
    const { registry, catalog, dataDir } = await setup()
    await registry.registerService({ Name: 'web' }, { replaceExistingChecks: false })
    await rm(dataDir, { recursive: true, force: true })
    await expect(registry.registerService({ Name: 'api' }, { replaceExistingChecks: false })).rejects.toThrow(
      /ENOENT/,
    )
    expect(registry.services().map((s) => s.ID)).toEqual(['web'])
    expect(catalog.serviceEntries('api')).toEqual([])
  })
})

describe('members and self', () => {
  it('describe this agent from its options', async () => {
    const { registry } = await setup({ role: 'server', nodeMeta: { zone: 'a' }, revision: 'abc' })
    const [member] = registry.members()
    expect(member).toMatchObject({
      Name: node,
      Addr: '10.0.0.1',
      Port: 4001,
      Status: 1,
      Tags: { dc: 'dc1', role: 'consul', port: '4001', id: '11111111-2222-3333-4444-555555555555' },
    })
    expect(registry.self()).toEqual({
      Config: {
        Datacenter: 'dc1',
        NodeName: node,
        NodeID: '11111111-2222-3333-4444-555555555555',
        Server: true,
        Revision: 'abc',
        Version: '0.1.0',
      },
      Member: member,
      Meta: { zone: 'a' },
    })
  })

  it('a client agent has the role "node"', async () => {
    const { registry } = await setup()
    expect(registry.members()[0]?.Tags.role).toBe('node')
    expect((registry.self().Config as { Server: boolean }).Server).toBe(false)
  })
})

describe('stop', () => {
  it('stops every check: the HTTP target sees no request after stop() resolves', async () => {
    const { registry } = await setup()
    const target = await httpTarget()
    await registry.registerService(
      { Name: 'web', Check: { HTTP: target.url, Interval: '10ms' } },
      { replaceExistingChecks: false },
    )
    await eventually(() => target.requests >= 2, 'the check runs')
    await registry.stop()
    const requests = target.requests
    // A negative can only be observed over a window: ten intervals.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(target.requests).toBe(requests)
    await expect(registry.registerService({ Name: 'x' }, { replaceExistingChecks: false })).rejects.toThrow(
      /not running/,
    )
  })
})
