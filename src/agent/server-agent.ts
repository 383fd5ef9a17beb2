/**
 * ServerAgent: one server member composed from its parts, as `cairn agent --server` runs it.
 *
 *   FileStorage(<data-dir>/member) ─┐
 *   KvStateMachine ─────────────────┼─ RaftNode ── ReplicatedStore ── fastify on --client-addr
 *   TCP peer transport (--peer-addr)┘
 *
 * Start order: storage and Raft first (a new cluster's founders write the bootstrap log from
 * --initial-cluster on their first start; `existing` starts empty and waits for the leader), then
 * the HTTP listener, so a client never reaches a member whose store is not running. If any step
 * fails, what was started is stopped again before the error is rethrown.
 *
 * HTTP: the etcd v2 API (src/api/etcd-v2: /v2/keys, /v2/members, /v2/stats, /health, /version),
 * the Consul v1 API (src/api/consul), the store API client agents use (src/api/store),
 * the agent's /_cairn/status (local-routes.ts) and Prometheus /metrics (metrics.ts). The transport
 * RaftNode creates is kept here too, so /v2/stats and /metrics read its counters.
 *
 * Stop order (stop(), idempotent): the expiry sweeper and watchers stop, then the HTTP server
 * closes (open v2 watches end, no new requests, in-flight ones finish) while RaftNode.stop() hands
 * leadership to the most caught-up voter and settles every pending request, then storage closes.
 *
 * One agent per data directory: the lock (data-dir-lock.ts) is taken before anything is read and
 * released after storage closed.
 *
 * A Raft loop that stops on its own (storage failure, broken invariant) settles `failed`; the CLI
 * then stops the agent and exits 1, so a supervisor restarts it and replays the WAL.
 *
 * Identity: member id and cluster id derive from (--initial-cluster-token, --name,
 * --initial-cluster) as in cluster-config.ts, so a restart needs the same three flags.
 */
import path from 'node:path'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import { buildConsulApi, type LeaderView } from '../api/consul/index.ts'
import { buildEtcdV2Api, etcdV2FrameworkErrors, raftStatusOf } from '../api/etcd-v2/index.ts'
import type { StoreStatsView } from '../api/etcd-v2/store-stats.ts'
import { buildFleetApi } from '../api/fleet/index.ts'
import { HttpFront } from '../api/http-front.ts'
import { registerStoreRoutes } from '../api/store/index.ts'
import type { CatalogState } from '../catalog/state.ts'
import { DnsServer } from '../dns/server.ts'
import { ReplicatedKvStore } from '../kv/replicated-kv-store.ts'
import { ReplicatedStore } from '../kv/replicated-store.ts'
import { KvStateMachine } from '../kv/state-machine.ts'
import { bootstrapState } from '../raft/core/bootstrap.ts'
import type { NodeId } from '../raft/core/types.ts'
import { encodeMemberContext } from '../raft/member-context.ts'
import { RaftNode } from '../raft/node.ts'
import { FileStorage } from '../raft/storage/file-storage.ts'
import { createPeerTransport, type TcpPeerTransport } from '../raft/transport/tcp-transport.ts'
import { SchedulerEngine } from '../scheduler/engine.ts'
import { electionTicksOf, type ServerAgentConfig } from './agent-config.ts'
import { clusterId, memberId } from './cluster-config.ts'
import { type DataDirLock, startWithDataDirLock } from './data-dir-lock.ts'
import { readOrCreateClusterId, readOrCreateMemberId } from './id-files.ts'
import { idleGcCounts } from './idle-gc.ts'
import { lazyRequestLoggers } from './lazy-request-logger.ts'
import { composeLocalParts } from './local-parts.ts'
import { registerLocalRoutes } from './local-routes.ts'
import type { AgentLogger } from './logger.ts'
import type { MachineLease } from './machine.ts'
import { registerMetricsRoute } from './metrics.ts'
import { startPromoter } from './promoter.ts'
import { publishSelf } from './publish.ts'

/** Largest HTTP request body (DESIGN.md: 1.5 MiB). */
export const requestBodyBytesMax = 1.5 * 1024 * 1024
/** The etcd release whose v2 API shapes the agent answers with (/version). */
export const etcdVersion = { server: '2.3.8', cluster: '2.3.0' } as const
/** How long a stopping agent waits for its machine lease's revoke to commit. */
export const machineRevokeWaitMs = 1_000
/** Subdirectory of --data-dir holding the Raft WAL and snapshots. */
export const memberDirName = 'member'

export interface ServerAgent {
  readonly id: NodeId
  readonly clusterId: string
  /** Where the HTTP server listens (resolved). */
  readonly clientUrl: string
  readonly store: ReplicatedStore
  /** This agent's catalog copy (fed by a watch), as DNS and the Consul API read it. */
  readonly catalog: CatalogState
  readonly machine: MachineLease
  /** The DNS port bound (undefined with --dns-addr off). */
  readonly dnsPort: number | undefined
  stop(): Promise<void>
  /**
   * Settles when the member's Raft loop stopped on its own (a storage failure or a broken
   * invariant): the agent can no longer acknowledge anything and must exit.
   */
  readonly failed: Promise<Error>
}

export async function startServerAgent(
  config: ServerAgentConfig,
  log: AgentLogger,
  cairnVersion: string,
): Promise<ServerAgent> {
  return startWithDataDirLock(config.dataDir, (lock) => startLocked(config, log, cairnVersion, lock))
}

async function startLocked(
  config: ServerAgentConfig,
  log: AgentLogger,
  cairnVersion: string,
  lock: DataDirLock,
): Promise<ServerAgent> {
  const founding = config.initialClusterState === 'new'
  const cid = await readOrCreateClusterId(
    config.dataDir,
    config.clusterId,
    founding ? () => clusterId(config.initialClusterToken, config.initialCluster) : undefined,
  )
  const id = await readOrCreateMemberId(config.dataDir, () =>
    memberId(config.initialClusterToken, config.peerUrl),
  )
  const storageLog = log.child({ component: 'storage' })
  const storage = new FileStorage(path.join(config.dataDir, memberDirName), {
    onWalStall: (stall) =>
      storageLog.warn(
        { durationMs: Math.round(stall.durationMs), bytes: stall.bytes, offMs: stall.offMs },
        'WAL: a write on the event loop stalled on the disk; WAL writes go through the thread pool for a while',
      ),
  })
  const stateMachine = new KvStateMachine({
    historyRevisionsMax: config.historyRevisions,
    historyBytesMax: config.historyBytes,
  })
  /** Filled in as the parts come up: the transport by RaftNode.start, storeStats by the v2 API. */
  const observed: { transport?: TcpPeerTransport; storeStats?: StoreStatsView } = {}
  const node = await RaftNode.start({
    id,
    storage,
    stateMachine,
    createTransport: (events) => {
      observed.transport = createPeerTransport({
        clusterId: cid,
        memberId: id,
        listen: config.peerAddr,
        events,
        log: log.child({ component: 'transport' }),
      })
      return observed.transport
    },
    bootstrap: config.initialClusterState === 'new' ? bootstrapOf(config) : undefined,
    peers: config.initialCluster
      .filter((m) => m.name !== config.name)
      .map((m) => ({ id: memberId(config.initialClusterToken, m.peerUrl), peerUrl: m.peerUrl })),
    tickMs: config.heartbeatIntervalMs,
    heartbeatTicks: 1,
    electionTicks: electionTicksOf(config),
    snapshotCount: config.snapshotCount,
    logger: log.child({ component: 'raft' }),
  })
  log.info(
    { id: id.toString(16), clusterId: cid, recovery: storage.recovery, state: config.initialClusterState },
    'raft member started',
  )
  const store = new ReplicatedStore({ node, stateMachine, leaderGraceMs: config.electionTimeoutMs })
  const kv = new ReplicatedKvStore(store)
  const { catalog, feed, writer, machine, registry, runner } = composeLocalParts(config, kv, {
    role: 'server',
    log,
    cairnVersion,
    onFeedError: (error) => log.error({ err: error }, 'catalog feed failed'),
  })
  let dns: DnsServer | undefined
  let dnsPort: number | undefined
  /** Ends the store API's watch streams first on stop, so client agents move to another server. */
  const storeClosing = new AbortController()
  const clientUrl = `http://${urlHost(config.clientAddr.host)}:${config.clientAddr.port}`
  const engine = new SchedulerEngine({ store: kv, id: config.name, log: log.child({ component: 'engine' }) })
  const front = new HttpFront(log.child({ component: 'http' }))
  const app = buildHttp(log, front)
  registerLocalRoutes(app, {
    name: config.name,
    id,
    clusterId: cid,
    peerUrl: config.peerUrl,
    clientUrl,
    cairnVersion,
    store,
    more: () => ({ engine: engine.status(), units: runner.status() }),
  })
  registerMetricsRoute(app, {
    id,
    store,
    storageSizeBytes: () => storage.sizeBytes(),
    walWriteCounts: () => storage.walWriteCounts,
    transport: () => observed.transport,
    storeStats: () => observed.storeStats,
    leaderChanges: () => node.leaderChanges,
    idleGc: idleGcCounts,
  })
  try {
    const etcdV2 = buildEtcdV2Api({
      store,
      clusterId: cid,
      memberId: id,
      memberName: config.name,
      peerUrls: [config.peerUrl],
      clientUrls: [clientUrl],
      version: etcdVersion,
      raftStatus: raftStatusOf(node, store),
      transportCounters: observed.transport?.counters,
      onStoreStats: (stats) => {
        observed.storeStats = stats
      },
      newMemberId: (peerUrls) => memberId(config.initialClusterToken, peerUrls[0] ?? ''),
      staleQuorumReads: config.plantedBugs.includes('stale-quorum-reads'),
    })
    // Key reads (plain, quorum) and key writes with a form body are answered before fastify
    // (api/etcd-v2/plain-reads.ts, plain-writes.ts).
    front.add(etcdV2.plainReads)
    front.add(etcdV2.plainWrites)
    await app.register(etcdV2)
    await app.register(
      buildConsulApi({
        store: kv,
        catalog,
        writer,
        readBarrier: () => store.readBarrier(),
        leader: () => leaderOf(node, stateMachine),
        peers: () =>
          stateMachine
            .members()
            .filter((m) => !m.isLearner)
            .map((m) => hostPortOf(m.peerUrls[0] ?? '')),
        datacenter: config.datacenter,
        nodeName: config.name,
        agent: registry,
      }),
    )
    await app.register(
      buildFleetApi({ store: kv, catalog, journals: runner.journals, nodeName: config.name }),
    )
    registerStoreRoutes(app, kv, storeClosing.signal)
    await app.listen({ host: config.clientAddr.host, port: config.clientAddr.port })
    await feed.ready
    await registry.start()
    if (config.dnsAddr !== undefined) {
      dns = new DnsServer(catalog, { domain: config.dnsDomain, onlyPassing: config.dnsOnlyPassing })
      dnsPort = await dns.listen(config.dnsAddr.host, config.dnsAddr.port)
      log.info({ dnsAddr: `${config.dnsAddr.host}:${dnsPort}`, domain: config.dnsDomain }, 'dns serving')
    }
  } catch (error) {
    await registry.stop().catch(() => {})
    feed.stop()
    await dns?.close().catch(() => {})
    await app.close().catch(() => {})
    store.close()
    await node.stop().catch(() => {})
    throw error
  }
  log.info({ clientUrl, peerAddr: config.peerAddr }, 'agent serving')
  if (config.machineTtlMs < machineTtlElectionsMin * config.electionTimeoutMs) {
    // Not refused (a test may want it): but a Raft election then outlasts the machine lease, and
    // every runner kills its units while the servers elect a leader.
    log.warn(
      { machineTtlMs: config.machineTtlMs, electionTimeoutMs: config.electionTimeoutMs },
      `--machine-ttl is under ${machineTtlElectionsMin} election timeouts: a Raft leader change may make every agent kill its units (unit-runner.md, fencing)`,
    )
  }
  if (config.plantedBugs.length > 0) {
    log.warn({ plantedBugs: config.plantedBugs }, 'TESTING ONLY: deliberate bugs are switched on')
  }
  const publisher = publishSelf(store, {
    id,
    name: config.name,
    peerUrls: [config.peerUrl],
    clientUrls: [clientUrl],
  })
  void publisher.done.then(() => log.info({ clientUrl }, 'member attributes published'))
  const stopPromoter = startPromoter(node, (learner) =>
    log.info({ member: learner.toString(16) }, 'learner caught up: promoted to voter'),
  )
  const machineStarted = machine.begin()
  void machineStarted.then(() => log.info({ node: config.name }, 'machine registered in the catalog'))
  const runnerStarted = runner
    .start()
    .catch((error: unknown) => log.error({ err: error }, 'unit runner failed to start'))
  engine.start()
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await engine.stop().catch(() => {})
      await runnerStarted
      await runner.stop().catch(() => {})
      storeClosing.abort()
      // A clean leave: revoke the machine lease so the catalog sees it at once (bounded: without
      // a quorum the revoke cannot commit, and the lease then expires on its own).
      await Promise.race([machine.stop({ revoke: true }), delay(machineRevokeWaitMs)])
      await registry.stop().catch(() => {})
      feed.stop()
      await dns?.close().catch(() => {})
      publisher.stop()
      stopPromoter()
      store.close()
      stateMachine.closeWatchers()
      try {
        await Promise.all([app.close(), node.stop()])
      } finally {
        await lock.release()
      }
    })()
    return stopped
  }
  return {
    id,
    clusterId: cid,
    clientUrl,
    store,
    catalog,
    machine,
    dnsPort,
    stop,
    failed: node.failed,
  }
}

function bootstrapOf(
  config: ServerAgentConfig,
): NonNullable<Parameters<typeof RaftNode.start>[0]['bootstrap']> {
  const founders = config.initialCluster.map((m) => ({
    id: memberId(config.initialClusterToken, m.peerUrl),
    name: m.name,
    peerUrl: m.peerUrl,
  }))
  const byId = new Map(founders.map((f) => [f.id, f]))
  const state = bootstrapState(
    founders.map((f) => f.id),
    (fid) => {
      const f = byId.get(fid)
      return f === undefined
        ? undefined
        : encodeMemberContext({ name: f.name, peerUrls: [f.peerUrl], clientUrls: [] })
    },
  )
  return { voters: founders.map((f) => ({ id: f.id, peerUrl: f.peerUrl })), state }
}

/** The agent's HTTP server (server and client agents alike). */
/** The machine TTL a server agent advises: at least this many election timeouts. */
export const machineTtlElectionsMin = 2

export function buildHttp(log: AgentLogger, front?: HttpFront): FastifyInstance {
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLoggers,
    bodyLimit: requestBodyBytesMax,
    forceCloseConnections: 'idle',
    // Malformed URLs and content types get etcd's error body, like every other v2 error.
    frameworkErrors: etcdV2FrameworkErrors,
    ...(front !== undefined ? { serverFactory: front.serverFactory } : {}),
  })
  // Stopping: every request goes to fastify, which answers 503 while it closes.
  if (front !== undefined) app.addHook('preClose', async () => front.close())
  return app
}

/** The Consul API's view of the leader: its peer address, from the member table. */
function leaderOf(node: RaftNode, stateMachine: KvStateMachine): LeaderView {
  const leader = node.leader
  if (leader === 0) return { known: false, address: '', lastContactMs: 0 }
  const url = stateMachine.memberPeerUrls().get(leader)?.[0] ?? ''
  return { known: true, address: hostPortOf(url), lastContactMs: 0 }
}

/** `http://10.0.0.1:7001` → `10.0.0.1:7001` (Consul shows server addresses as host:port). */
function hostPortOf(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '')
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** A listen host as a URL host (a wildcard is reached on loopback). */
export function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}
