/**
 * ClientAgent: `cairn agent --join <servers>` on a machine that is not a server (docs/client-agents.md).
 * It serves the same local endpoint as a server, and holds no data of its own:
 *
 *   RemoteKvStore (--join servers: pooled undici connections, failover, shared upstream watches)
 *     ├─ CatalogState ← catalog feed (one range, then one watch)  → DNS, Consul catalog/health reads
 *     ├─ CatalogWriter, MachineLease (this machine, --metadata)   → the catalog on the servers
 *     ├─ LocalRegistry (this machine's services and checks; the checks run here)
 *     ├─ Consul v1 API (KV, sessions and txn go to the servers through the store interface)
 *     └─ etcd v2: forwarded as is (etcd-v2/forward.ts); watches served here from shared upstreams
 *
 * Consistency of catalog reads: default and `?consistent` reads pass a read barrier first. It asks
 * a server, linearizably, for the newest catalog change after the revision this agent's copy has
 * applied (KvStore.lastChange); if there is one, the read waits until the copy's watch has
 * delivered it (at most barrierWaitMsMax, then RAFT_REQUEST_TIMEOUT). So a read sees every catalog
 * write committed before it began, as on a server, at the cost of one small round trip. `?stale`
 * reads answer from the copy at once.
 *
 * Leader and peers (/v1/status/*, X-Consul-KnownLeader): asked of the servers every
 * statusRefreshMs; lastContact is the time since the last answer.
 *
 * Start order: the data-dir lock, the store client, then HTTP (so the agent's own writes have
 * somewhere to come from), the catalog's first load, the registry, DNS, and last the machine lease
 * (begin() retries until some server takes it). Stop order: the machine lease is revoked (a clean
 * leave is seen at once), the registry stops its checks, DNS and HTTP close, the store client
 * closes its connections, the lock is released.
 *
 * Invariants: nothing here writes outside the catalog records of this node and the keys apps
 * write; no request is answered from a guess (a read that cannot be checked fails); every timer
 * and connection is gone after stop().
 */
import { buildConsulApi, type LeaderView } from '../api/consul/index.ts'
import { buildEtcdV2Forwarder } from '../api/etcd-v2/forward.ts'
import { buildFleetApi } from '../api/fleet/index.ts'
import { catalogPrefix } from '../catalog/records.ts'
import type { CatalogState } from '../catalog/state.ts'
import { DnsServer } from '../dns/server.ts'
import { CairnError } from '../errors.ts'
import { isKvError } from '../kv/kv-error.ts'
import { RemoteKvStore } from '../kv/remote-kv-store.ts'
import type { ClientAgentConfig } from './agent-config.ts'
import { type DataDirLock, startWithDataDirLock } from './data-dir-lock.ts'
import { composeLocalParts } from './local-parts.ts'
import type { AgentLogger } from './logger.ts'
import type { MachineLease } from './machine.ts'
import { buildHttp, delay, machineRevokeWaitMs, urlHost } from './server-agent.ts'

/** Longest wait of a read barrier for this agent's catalog copy to catch up. */
export const barrierWaitMsMax = 5_000
/** How often a client agent asks the servers for the leader and the peers. */
export const statusRefreshMs = 2_000

/** The catalog watch's spec (the feed watches the same). */
const catalogSpec = { key: catalogPrefix.slice(0, -1), recursive: true, includeHidden: true }

export interface ClientAgent {
  readonly clientUrl: string
  readonly store: RemoteKvStore
  readonly catalog: CatalogState
  readonly machine: MachineLease
  readonly dnsPort: number | undefined
  stop(): Promise<void>
}

export async function startClientAgent(
  config: ClientAgentConfig,
  log: AgentLogger,
  cairnVersion: string,
): Promise<ClientAgent> {
  return startWithDataDirLock(config.dataDir, (lock) => startLocked(config, log, cairnVersion, lock))
}

async function startLocked(
  config: ClientAgentConfig,
  log: AgentLogger,
  cairnVersion: string,
  lock: DataDirLock,
): Promise<ClientAgent> {
  const remote = new RemoteKvStore({ servers: config.join })
  const { catalog, feed, writer, machine, registry, runner } = composeLocalParts(config, remote, {
    role: 'client',
    log,
    cairnVersion,
    onFeedError: (error) => log.warn({ err: error }, 'catalog not read from the servers; trying again'),
  })
  const status = new ServerStatus(remote, (error) => log.debug({ err: error }, 'server status not read'))
  const stopping = new AbortController()
  const barrier = async (): Promise<void> => {
    const applied = catalog.revision
    let target: number
    try {
      const change = await remote.lastChange(catalogSpec, applied + 1)
      target = change.lastRevision
    } catch (error) {
      // Compacted past this copy: its watch is being cancelled and the feed reloads at or past the
      // server's revision, which the error carries.
      if (!isKvError(error, 'KV_EVENT_INDEX_CLEARED')) throw error
      target = error.index
    }
    if (catalog.revision >= target) return
    const wait = AbortSignal.any([stopping.signal, AbortSignal.timeout(barrierWaitMsMax)])
    await catalog.reached(target, wait)
    if (catalog.revision < target) {
      const why = `this agent's catalog copy did not reach revision ${target} within ${barrierWaitMsMax} ms`
      throw new CairnError('RAFT_REQUEST_TIMEOUT', why)
    }
  }
  let dns: DnsServer | undefined
  let dnsPort: number | undefined
  const clientUrl = `http://${urlHost(config.clientAddr.host)}:${config.clientAddr.port}`
  const app = buildHttp(log)
  app.get('/_cairn/status', async () => ({
    name: config.name,
    role: 'client',
    clientUrl,
    cairnVersion,
    servers: config.join,
    currentServer: remote.currentServer,
    knownRevision: remote.knownRevision,
    catalogRevision: catalog.revision,
    watchers: remote.watcherCount,
    upstreamWatches: remote.upstreamCount,
    leader: status.leader(),
    units: runner.status(),
  }))
  try {
    await app.register(buildEtcdV2Forwarder({ upstream: remote }))
    await app.register(
      buildConsulApi({
        store: remote,
        catalog,
        writer,
        readBarrier: barrier,
        leader: () => status.leader(),
        peers: () => status.peers(),
        datacenter: config.datacenter,
        nodeName: config.name,
        agent: registry,
      }),
    )
    await app.register(
      buildFleetApi({ store: remote, catalog, journals: runner.journals, nodeName: config.name }),
    )
    await app.listen({ host: config.clientAddr.host, port: config.clientAddr.port })
    status.start()
    await feed.ready
    await registry.start()
    if (config.dnsAddr !== undefined) {
      dns = new DnsServer(catalog, { domain: config.dnsDomain, onlyPassing: config.dnsOnlyPassing })
      dnsPort = await dns.listen(config.dnsAddr.host, config.dnsAddr.port)
      log.info({ dnsAddr: `${config.dnsAddr.host}:${dnsPort}`, domain: config.dnsDomain }, 'dns serving')
    }
  } catch (error) {
    stopping.abort()
    status.stop()
    await registry.stop().catch(() => {})
    feed.stop()
    await dns?.close().catch(() => {})
    await app.close().catch(() => {})
    await remote.close()
    throw error
  }
  log.info({ clientUrl, servers: config.join }, 'client agent serving')
  const machineStarted = machine.begin()
  void machineStarted.then(() => log.info({ node: config.name }, 'machine registered in the catalog'))
  const runnerStarted = runner
    .start()
    .catch((error: unknown) => log.error({ err: error }, 'unit runner failed to start'))
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await runnerStarted
      await runner.stop().catch(() => {})
      stopping.abort()
      await Promise.race([machine.stop({ revoke: true }), delay(machineRevokeWaitMs)])
      await registry.stop().catch(() => {})
      status.stop()
      feed.stop()
      await dns?.close().catch(() => {})
      try {
        await app.close()
        await remote.close()
      } finally {
        await lock.release()
      }
    })()
    return stopped
  }
  return { clientUrl, store: remote, catalog, machine, dnsPort, stop }
}

/**
 * The servers' view of the leader and the voters, refreshed every statusRefreshMs from their
 * Consul status endpoints (the same answers a server gives).
 */
class ServerStatus {
  readonly #remote: RemoteKvStore
  readonly #onError: (error: unknown) => void
  #leader = ''
  #peers: string[] = []
  #heardMs: number | undefined
  #timer: NodeJS.Timeout | undefined
  #busy = false

  constructor(remote: RemoteKvStore, onError: (error: unknown) => void) {
    this.#remote = remote
    this.#onError = onError
  }

  start(): void {
    void this.#refresh()
    this.#timer = setInterval(() => void this.#refresh(), statusRefreshMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  leader(): LeaderView {
    const known = this.#leader !== '' && this.#heardMs !== undefined
    return {
      known,
      address: this.#leader,
      lastContactMs:
        this.#heardMs === undefined ? 0 : Math.max(0, Math.round(performance.now() - this.#heardMs)),
    }
  }

  peers(): string[] {
    return [...this.#peers]
  }

  async #refresh(): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      const leader = await this.#get('/v1/status/leader')
      const peers = await this.#get('/v1/status/peers')
      this.#leader = typeof leader === 'string' ? leader : ''
      this.#peers = Array.isArray(peers) ? peers.filter((p): p is string => typeof p === 'string') : []
      this.#heardMs = performance.now()
    } catch (error) {
      this.#onError(error)
    } finally {
      this.#busy = false
    }
  }

  async #get(path: string): Promise<unknown> {
    const answer = await this.#remote.forward({ method: 'GET', path: `${path}?stale`, idempotent: true })
    if (answer.statusCode !== 200) throw new Error(`${answer.server}${path}: status ${answer.statusCode}`)
    return JSON.parse(answer.body.toString('utf8'))
  }
}
