/**
 * The parts every agent runs over its store, server or client alike: the catalog copy and its
 * feed, the catalog writer, this machine's lease, the registry of this machine's services and
 * checks, and the unit runner (the units the scheduler assigned to this machine). server-agent.ts hands it the Raft-backed store, client-agent.ts the RemoteKvStore; the
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
import { UnitRunner } from './units/runner.ts'

export interface LocalParts {
  catalog: CatalogState
  feed: CatalogFeed
  writer: CatalogWriter
  machine: MachineLease
  registry: LocalRegistry
  /** Start after registry and machine (it waits for the machine lease); stop before them. */
  runner: UnitRunner
}

/** The agent's client URL for other agents (MachineRecord.Api): `http://host:port`. */
export function clientUrl(addr: { host: string; port: number }): string {
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host
  return `http://${host}:${addr.port}`
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
    api: clientUrl(config.clientAddr),
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
  const runner = new UnitRunner({
    store,
    node: config.name,
    dataDir: config.dataDir,
    machine,
    registry,
    log: log.child({ component: 'units' }),
  })
  return { catalog, feed, writer, machine, registry, runner }
}
