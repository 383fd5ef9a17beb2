/**
 * GET /metrics on the client port: Prometheus text (format 0.0.4) from a registry of this agent's
 * own (never prom-client's global one).
 *
 *   - prom-client's default process and Node.js metrics, prefixed `cairn_`;
 *   - Cairn's gauges and counters, each read at scrape time by its collect() from the sources
 *     /_cairn/status and /v2/stats already read: RaftNode.status(), the kv state machine, the
 *     storage's sizeBytes(), the transport's counters and stats(), the v2 surface's store counters.
 *     Nothing is counted twice and the hot paths know nothing of Prometheus.
 *
 * Names follow etcd's where etcd has the metric (`etcd_` becomes `cairn_`, etcd's `debugging_`
 * dropped); the peer labels are etcd's `To` and `From`, ids in hex. docs/metrics.md lists every
 * name with what it means and where it differs from etcd.
 */
import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { StoreStatsJson, StoreStatsView } from '../api/etcd-v2/store-stats.ts'
import type { ReplicatedStore } from '../kv/replicated-store.ts'
import type { NodeId } from '../raft/core/types.ts'
import type { SyncWriteCounts } from '../raft/storage/sync-writes.ts'
import type { TransportStats } from '../raft/transport/stats.ts'
import type { PeerCountersView, TransportCountersView } from '../raft/transport/transport-stats.ts'
import type { IdleGcCounts } from './idle-gc.ts'

export const metricsPrefix = 'cairn_'

/** Where the metrics are read from; a source that is absent is not exported. */
export interface MetricsSources {
  id: NodeId
  store: ReplicatedStore
  storageSizeBytes(): number
  walWriteCounts(): Readonly<SyncWriteCounts>
  transport(): { readonly counters: TransportCountersView; stats(): TransportStats } | undefined
  storeStats(): StoreStatsView | undefined
  leaderChanges(): number
  /** The idle GC's counts (idle-gc.ts); all 0 with `--no-idle-gc`. */
  idleGc(): Readonly<IdleGcCounts>
}

export function registerMetricsRoute(app: FastifyInstance, sources: MetricsSources): Registry {
  const registry = createMetricsRegistry(sources)
  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics()
    return reply.code(200).type(registry.contentType).send(text)
  })
  return registry
}

export function createMetricsRegistry(sources: MetricsSources): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: metricsPrefix })
  const def = defining(registry)
  serverMetrics(def, sources)
  storeMetrics(def, sources)
  networkMetrics(def, sources)
  return registry
}

function serverMetrics(def: Define, sources: MetricsSources): void {
  const { node, stateMachine } = sources.store
  def.gauge('server_id', 'Always 1; the label server_id is this member id in hex.', ['server_id'], () => [
    [{ server_id: hex(sources.id) }, 1],
  ])
  def.gauge('server_has_leader', '1 while this member knows a leader, else 0.', [], () =>
    one(node.status().leader !== 0 ? 1 : 0),
  )
  def.gauge('server_is_leader', '1 while this member is the leader, else 0.', [], () =>
    one(node.status().role === 'leader' ? 1 : 0),
  )
  def.counter(
    'server_leader_changes_seen_total',
    'Changes to a known leader other than the last one seen, since this process started.',
    [],
    () => one(sources.leaderChanges()),
  )
  def.gauge('server_term', 'The Raft term this member is in.', [], () => one(node.status().term))
  def.gauge('server_proposals_committed_total', 'The Raft commit index (a gauge, as etcd).', [], () =>
    one(node.status().commit),
  )
  def.gauge('server_proposals_applied_total', 'The Raft applied index (a gauge, as etcd).', [], () =>
    one(node.status().applied),
  )
  def.counter(
    'server_snapshots_received_total',
    "Leader's snapshots this member restored since it started.",
    [],
    () => one(node.snapshotsReceived),
  )
  def.gauge(
    'storage_size_bytes',
    "Bytes on disk of this member's Raft storage: WAL segments plus snapshot files.",
    [],
    () => one(sources.storageSizeBytes()),
  )
  def.counter(
    'disk_wal_writes_total',
    'WAL appends by path: in_place (a blocking write on the event loop: one-entry appends while the disk is fast) or thread_pool.',
    ['path'],
    () => {
      const counts = sources.walWriteCounts()
      return [
        [{ path: 'in_place' }, counts.inPlace],
        [{ path: 'thread_pool' }, counts.pool],
      ]
    },
  )
  def.counter(
    'disk_wal_write_stalls_total',
    'WAL writes in place that took longer than walSyncWriteStallMs; each sends writes through the thread pool for a while.',
    [],
    () => one(sources.walWriteCounts().stalls),
  )
  def.counter(
    'idle_gc_compactions_total',
    'Compacting garbage collections the agent ran after going quiet with a grown heap (memory back at rest).',
    [],
    () => one(sources.idleGc().compactions),
  )
  def.counter(
    'idle_gc_put_off_total',
    'Idle compactions put off because load came back while the young generation was being collected first.',
    [],
    () => one(sources.idleGc().putOff),
  )
  def.counter(
    'idle_gc_pause_seconds_total',
    "Seconds the idle GC's collections (compacting and young) stopped the event loop.",
    [],
    () => one(sources.idleGc().pauseSeconds),
  )
  def.gauge('store_current_revision', "The store revision (etcd v2's X-Etcd-Index).", [], () =>
    one(stateMachine.revision),
  )
  def.gauge('store_keys_total', 'Keys (not directories) in the store (a gauge, as etcd).', [], () =>
    one(stateMachine.stats().keys),
  )
  def.gauge('store_watchers', 'Watchers open on this member.', [], () => one(stateMachine.watcherCount))
}

const readActions = [['get', 'gets']] as const
const writeActions = [
  ['set', 'sets'],
  ['create', 'create'],
  ['update', 'update'],
  ['delete', 'delete'],
  ['compareAndSwap', 'compareAndSwap'],
  ['compareAndDelete', 'compareAndDelete'],
] as const

function storeMetrics(def: Define, sources: MetricsSources): void {
  const by = (actions: readonly (readonly [string, string])[], outcome: 'Success' | 'Fail') => () => {
    const json = sources.storeStats()?.json(0)
    if (json === undefined) return []
    return actions.map(([action, field]): Sample => {
      const key = `${field}${outcome}` as keyof StoreStatsJson
      return [{ action }, json[key]]
    })
  }
  const rows: [string, string, Read][] = [
    ['store_reads_total', 'Successful v2 reads', by(readActions, 'Success')],
    ['store_reads_failed_total', 'Failed v2 reads', by(readActions, 'Fail')],
    ['store_writes_total', 'Successful v2 writes', by(writeActions, 'Success')],
    ['store_writes_failed_total', 'Failed v2 writes', by(writeActions, 'Fail')],
  ]
  for (const [name, what, read] of rows) {
    def.counter(name, `${what} answered by this member, by action.`, ['action'], read)
  }
}

type PeerRead = (peer: PeerCountersView) => number

/** Per-peer counters: name, label (etcd's To for outbound, From for inbound), help, source. */
const peerCounterRows: readonly [string, 'To' | 'From', string, PeerRead][] = [
  ['network_peer_sent_bytes_total', 'To', 'Frame bytes written to the peer.', (p) => p.bytesSent],
  [
    'network_peer_received_bytes_total',
    'From',
    'Frame bytes received from the peer.',
    (p) => p.bytesReceived,
  ],
  ['network_peer_sent_messages_total', 'To', 'Raft messages written to the peer.', (p) => p.messagesSent],
  [
    'network_peer_received_messages_total',
    'From',
    'Raft messages from the peer delivered to Raft.',
    (p) => p.messagesReceived,
  ],
  [
    'network_peer_sent_failures_total',
    'To',
    'Messages to the peer dropped (backoff, full queue, broken connection, oversized).',
    (p) => p.messagesDropped,
  ],
  [
    'network_peer_connection_failures_total',
    'To',
    'Connections to the peer that failed to open, were refused, or broke.',
    (p) => p.connectionFailures,
  ],
  [
    'network_peer_connections_refused_total',
    'To',
    'Dials to the peer refused because nothing listened at its address: its process was down.',
    (p) => p.connectionsRefused,
  ],
  [
    'network_peer_appends_sent_total',
    'To',
    'Appends written to the peer (/v2/stats/leader counts.success).',
    (p) => p.appendsSent,
  ],
  [
    'network_peer_appends_failed_total',
    'To',
    'Appends to the peer dropped (/v2/stats/leader counts.fail).',
    (p) => p.appendsDropped,
  ],
  [
    'network_peer_append_round_trips_total',
    'To',
    'Append round trips to the peer measured.',
    (p) => p.latency.count,
  ],
  [
    'network_peer_append_round_trip_seconds_total',
    'To',
    'Sum of the measured append round trips to the peer, in seconds.',
    (p) => p.latency.sumMs / 1000,
  ],
]

function networkMetrics(def: Define, sources: MetricsSources): void {
  const perPeer = (label: 'To' | 'From', read: PeerRead) => (): Sample[] => {
    const transport = sources.transport()
    if (transport === undefined) return []
    return [...transport.counters.peers()].map((peer) => [{ [label]: hex(peer.peer) }, read(peer)])
  }
  for (const [name, label, help, read] of peerCounterRows) {
    def.counter(name, help, [label], perPeer(label, read))
  }
  def.gauge(
    'network_peer_append_round_trip_last_seconds',
    'The most recent append round trip to the peer, in seconds.',
    ['To'],
    perPeer('To', (p) => p.latency.current / 1000),
  )
  networkTotals(def, sources)
}

function networkTotals(def: Define, sources: MetricsSources): void {
  const total = (read: (counters: TransportCountersView) => number) => () => {
    const transport = sources.transport()
    return transport === undefined ? [] : one(read(transport.counters))
  }
  const byStat = (rows: readonly [Record<string, string>, keyof TransportStats][]) => () => {
    const transport = sources.transport()
    if (transport === undefined) return []
    const stats = transport.stats()
    return rows.map(([labels, key]): Sample => [labels, stats[key]])
  }
  def.counter(
    'network_appends_sent_total',
    'Append messages written to any peer (/v2/stats/self sendAppendRequestCnt).',
    [],
    total((c) => c.appendsSent),
  )
  def.counter(
    'network_appends_received_total',
    'Append messages delivered to Raft from any peer (/v2/stats/self recvAppendRequestCnt).',
    [],
    total((c) => c.appendsReceived),
  )
  def.counter(
    'network_sent_dropped_total',
    'Messages dropped by the transport before the wire, by reason.',
    ['reason'],
    byStat([
      [{ reason: 'unreachable' }, 'messagesDroppedUnreachable'],
      [{ reason: 'queue_full' }, 'messagesDroppedQueueFull'],
      [{ reason: 'oversized' }, 'messagesDroppedOversized'],
    ]),
  )
  def.counter(
    'network_received_rejected_total',
    'Inbound frames or messages the transport refused, by reason.',
    ['reason'],
    byStat([
      [{ reason: 'undecodable_frame' }, 'framesUndecodable'],
      [{ reason: 'invalid_message' }, 'messagesInvalid'],
      [{ reason: 'misaddressed_message' }, 'messagesMisaddressed'],
      [{ reason: 'protocol_violation' }, 'connectionsClosedProtocol'],
      [{ reason: 'handshake_rejected' }, 'handshakesRejected'],
    ]),
  )
  def.counter(
    'network_snapshots_total',
    'Snapshot streams, by direction and outcome.',
    ['direction', 'outcome'],
    byStat([
      [{ direction: 'sent', outcome: 'ok' }, 'snapshotsSent'],
      [{ direction: 'sent', outcome: 'failed' }, 'snapshotsSendFailed'],
      [{ direction: 'received', outcome: 'ok' }, 'snapshotsReceived'],
      [{ direction: 'received', outcome: 'failed' }, 'snapshotsReceiveFailed'],
    ]),
  )
}

type Sample = [Record<string, string>, number]
type Read = () => Sample[]

interface Define {
  gauge(name: string, help: string, labelNames: string[], read: Read): void
  counter(name: string, help: string, labelNames: string[], read: Read): void
}

/**
 * Metrics whose values are read at scrape time: collect() clears the label sets and sets every
 * sample afresh, so a peer that was removed disappears. A counter's value is its source's, which
 * only grows while the process lives.
 */
function defining(registry: Registry): Define {
  return {
    gauge(name, help, labelNames, read) {
      new Gauge({
        name: metricsPrefix + name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          for (const [labels, value] of read()) this.set(labels, value)
        },
      })
    },
    counter(name, help, labelNames, read) {
      new Counter({
        name: metricsPrefix + name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          for (const [labels, value] of read()) this.inc(labels, value)
        },
      })
    },
  }
}

function one(value: number): Sample[] {
  return [[{}, value]]
}

function hex(id: NodeId): string {
  return id.toString(16)
}
