/**
 * Proves GET /v1/status/leader and /v1/status/peers: the leader's peer address as a JSON string
 * ("" when this member knows no leader), the voters' addresses as a JSON array, straight from the
 * member's view with no index header, and a 405 for other methods.
 */
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import type { ConsulApiDeps, LeaderView } from './deps.ts'
import { buildConsulApi } from './index.ts'
import type { LocalAgent } from './local-agent.ts'

const apps: ReturnType<typeof Fastify>[] = []
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close()
})

async function start(leader: LeaderView, peers: string[]) {
  const store = new LocalKvStore()
  const deps: ConsulApiDeps = {
    store,
    catalog: new CatalogState(),
    writer: new CatalogWriter(store),
    readBarrier: async () => {},
    leader: () => leader,
    peers: () => peers,
    datacenter: 'dc1',
    nodeName: 'n1',
    agent: {} as LocalAgent,
  }
  const app = Fastify()
  apps.push(app)
  await app.register(buildConsulApi(deps))
  return app
}

describe('GET /v1/status', () => {
  it('answers the leader as a JSON string and the peers as a JSON array', async () => {
    const app = await start({ known: true, address: '10.0.0.1:7001', lastContactMs: 12 }, [
      '10.0.0.1:7001',
      '10.0.0.2:7001',
    ])
    const leader = await app.inject({ method: 'GET', url: '/v1/status/leader' })
    expect([leader.statusCode, leader.headers['content-type'], leader.body]).toEqual([
      200,
      'application/json; charset=utf-8',
      '"10.0.0.1:7001"',
    ])
    expect(leader.headers['x-consul-index']).toBeUndefined()
    const peers = await app.inject({ method: 'GET', url: '/v1/status/peers' })
    expect([peers.statusCode, peers.json()]).toEqual([200, ['10.0.0.1:7001', '10.0.0.2:7001']])
  })

  it('answers "" when no leader is known, 400 for another datacenter, 405 for PUT', async () => {
    const app = await start({ known: false, address: '10.0.0.9:7001', lastContactMs: 0 }, [])
    expect((await app.inject({ method: 'GET', url: '/v1/status/leader' })).body).toBe('""')
    expect((await app.inject({ method: 'GET', url: '/v1/status/peers' })).json()).toEqual([])
    expect((await app.inject({ method: 'GET', url: '/v1/status/leader?dc=dc2' })).statusCode).toBe(400)
    const put = await app.inject({ method: 'PUT', url: '/v1/status/leader' })
    expect([put.statusCode, put.headers.allow]).toEqual([405, 'GET, HEAD'])
  })
})
