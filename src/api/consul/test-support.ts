/**
 * Test support for the Consul routes: the ConsulApiDeps every route test builds around a real
 * in-process store, with the fixed leader and peer answers a one-member cluster gives. Each test
 * names only what it varies (catalog, writer, node name, agent, clocks).
 */
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import type { LocalKvStore } from '../../kv/local-kv-store.ts'
import type { ConsulApiDeps } from './deps.ts'
import type { LocalAgent } from './local-agent.ts'

/** For tests whose routes must not reach the agent: every call fails loudly. */
export const agentNotUnderTest: LocalAgent = new Proxy({} as LocalAgent, {
  get: (_target, name) => () => {
    throw new Error(`agent.${String(name)} is not under test`)
  },
})

export function testDeps(
  fields: Pick<ConsulApiDeps, 'store'> & Partial<ConsulApiDeps> & { store: LocalKvStore },
): ConsulApiDeps {
  return {
    catalog: new CatalogState(),
    writer: new CatalogWriter(fields.store),
    readBarrier: async () => {},
    leader: () => ({ known: true, address: '127.0.0.1:7001', lastContactMs: 0 }),
    peers: () => ['127.0.0.1:7001'],
    datacenter: 'dc1',
    nodeName: 'n1',
    agent: agentNotUnderTest,
    ...fields,
  }
}
