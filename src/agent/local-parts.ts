/**
 * The parts every agent runs over its store, server or client alike: the catalog copy and its
 * feed, the catalog writer, this machine's lease, and the registry of this machine's services and
 * checks. server-agent.ts hands it the Raft-backed store, client-agent.ts the RemoteKvStore; the
 * caller starts and stops the parts in its own order.
 */
import { type CatalogFeed, startCatalogFeed } from '../catalog/feed.ts'
import { CatalogState } from '../catalog/state.ts'
import { CatalogWriter } from '../catalog/writer.ts'
import type { KvStore } from '../kv/kv-store.ts'
import type { LocalAgentConfig } from './agent-config.ts'
import { LocalRegistry } from './local-registry.ts'
import type { AgentLogger } from './logger.ts'
import { MachineLease, nodeIdOf } from './machine.ts'

export interface LocalParts {
  catalog: CatalogState
  feed: CatalogFeed
  writer: CatalogWriter
  machine: MachineLease
  registry: LocalRegistry
}

export function composeLocalParts(
  config: LocalAgentConfig,
  store: KvStore,
  options: {
    role: 'server' | 'client'
    log: AgentLogger
    cairnVersion: string
    onFeedError: (error: unknown) => void
  },
): LocalParts {
  const { log } = options
  const catalog = new CatalogState()
  const feed = startCatalogFeed(store, catalog, options.onFeedError)
  const writer = new CatalogWriter(store)
  const machine = new MachineLease({
    store,
    writer,
    node: config.name,
    address: config.advertiseAddr,
    datacenter: config.datacenter,
    meta: config.metadata,
    ttlMs: config.machineTtlMs,
    registered: () => catalog.machineAlive(config.name) === true,
    log: log.child({ component: 'machine' }),
  })
  const registry = new LocalRegistry({
    nodeName: config.name,
    datacenter: config.datacenter,
    writer,
    catalog,
    dataDir: config.dataDir,
    enableScriptChecks: config.enableScriptChecks,
    role: options.role,
    log: log.child({ component: 'registry' }),
    nodeId: nodeIdOf(config.name),
    address: config.advertiseAddr,
    port: config.clientAddr.port,
    version: options.cairnVersion,
    nodeMeta: config.metadata,
  })
  return { catalog, feed, writer, machine, registry }
}
