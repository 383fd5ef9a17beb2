/**
 * Proves, on three real `cairn agent --server` processes (random loopback ports, real TCP between
 * members), that the transport's counters reach the operator:
 *   - /v2/stats/self: the leader's sendAppendRequestCnt and send rates grow with writes, a
 *     follower's recvAppendRequestCnt and receive rates too;
 *   - /v2/stats/leader: each follower has counts.success > 0 and append round trips with
 *     0 < minimum <= average <= maximum; after a follower is killed, appends to it count as fail;
 *   - GET /metrics parses as Prometheus text (every sample under a # TYPE line) and carries the
 *     named metrics with plausible values: leadership, term, indexes, store revision and keys,
 *     store request counters, per-peer bytes and messages, storage size, process metrics.
 * Rates only exist while appends flow (etcd's rule: 0 after 1 s idle), so those probes write a key
 * and read the stats in the same poll. Every wait polls with a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentCluster, http, pollUntil, put, status } from './helpers/agent-processes.ts'

interface SelfStats {
  id: string
  state: string
  recvAppendRequestCnt: number
  recvPkgRate: number
  recvBandwidthRate: number
  sendAppendRequestCnt: number
  sendPkgRate: number
  sendBandwidthRate: number
}

interface FollowerStats {
  counts: { success: number; fail: number }
  latency: { current: number; average: number; standardDeviation: number; minimum: number; maximum: number }
}

interface LeaderStats {
  leader: string
  followers: Record<string, FollowerStats>
}

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Prometheus text format 0.0.4: # HELP / # TYPE lines, then `name{labels} value` samples. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) {
      types.set(type[1] as string, type[2] as string)
      continue
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (sample === null) throw new Error(`not a Prometheus line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string
    }
    const value = Number(sample[3])
    if (Number.isNaN(value) && sample[3] !== 'NaN') throw new Error(`bad value in: ${line}`)
    samples.push({ name: sample[1] as string, labels, value })
  }
  for (const s of samples) {
    const family = [...types.keys()].find(
      (t) => s.name === t || s.name === `${t}_bucket` || s.name === `${t}_sum` || s.name === `${t}_count`,
    )
    if (family === undefined) throw new Error(`sample ${s.name} has no # TYPE line`)
  }
  return { types, samples }
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value
}

let cluster: AgentCluster
let leaderUrl: string
let followerUrls: string[]
let ids: Map<string, string>
let seq = 0

async function getJson<T>(url: string): Promise<T | undefined> {
  const res = await http('GET', url)
  return res?.status === 200 ? (res.body as T) : undefined
}

async function write(url: string): Promise<void> {
  seq++
  expect(await put(url, `stats/k${seq}`, `v${seq}`)).toBe(true)
}

beforeAll(async () => {
  cluster = await AgentCluster.create(3)
  cluster.startAll()
  const leader = await cluster.leader()
  leaderUrl = cluster.clientUrl(leader)
  followerUrls = cluster.names.filter((n) => n !== leader).map((n) => cluster.clientUrl(n))
  ids = new Map()
  for (const name of cluster.names) ids.set(name, (await status(cluster.clientUrl(name)))?.id as string)
  for (let i = 0; i < 20; i++) await write(leaderUrl)
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

describe('/v2/stats from the transport', () => {
  it('the leader counts appends sent and reports send rates while writes flow', async () => {
    const self = await pollUntil(
      async () => {
        await write(leaderUrl)
        const s = await getJson<SelfStats>(`${leaderUrl}/v2/stats/self`)
        return s !== undefined && s.sendPkgRate > 0 ? s : undefined
      },
      'a send rate on the leader',
      20_000,
      () => cluster.outputs(),
    )
    expect(self.state).toBe('StateLeader')
    expect(self.sendAppendRequestCnt).toBeGreaterThanOrEqual(40) // 20 writes to each of 2 followers
    expect(self.sendBandwidthRate).toBeGreaterThan(self.sendPkgRate) // every append is > 1 byte
  })

  it('a follower counts appends received and reports receive rates while writes flow', async () => {
    const url = followerUrls[0] as string
    const self = await pollUntil(
      async () => {
        await write(leaderUrl)
        const s = await getJson<SelfStats>(`${url}/v2/stats/self`)
        return s !== undefined && s.recvPkgRate > 0 ? s : undefined
      },
      'a receive rate on a follower',
      20_000,
      () => cluster.outputs(),
    )
    expect(self.state).toBe('StateFollower')
    expect(self.recvAppendRequestCnt).toBeGreaterThanOrEqual(20)
    expect(self.recvBandwidthRate).toBeGreaterThan(0)
    expect(self.sendAppendRequestCnt).toBe(0) // a follower sends no appends
  })

  it('the leader reports each follower with successful appends and their round trips', async () => {
    const stats = await getJson<LeaderStats>(`${leaderUrl}/v2/stats/leader`)
    expect(stats).toBeDefined()
    const followerIds = cluster.names.map((n) => ids.get(n)).filter((id) => id !== stats?.leader)
    expect(Object.keys(stats?.followers ?? {}).sort()).toEqual(followerIds.sort())
    for (const id of followerIds) {
      const f = stats?.followers[id as string] as FollowerStats
      expect(f.counts.success).toBeGreaterThan(0)
      expect(f.latency.minimum).toBeGreaterThan(0)
      expect(f.latency.minimum).toBeLessThanOrEqual(f.latency.average)
      expect(f.latency.average).toBeLessThanOrEqual(f.latency.maximum)
      expect(f.latency.current).toBeGreaterThanOrEqual(f.latency.minimum)
      expect(f.latency.standardDeviation).toBeGreaterThanOrEqual(0)
    }
  })
})

describe('GET /metrics', () => {
  it('is Prometheus text with the named metrics and plausible values', async () => {
    const res = await fetch(`${leaderUrl}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
    const { types, samples } = parsePrometheus(await res.text())
    const names = new Set(samples.map((s) => s.name))
    for (const name of [
      'cairn_server_has_leader',
      'cairn_server_is_leader',
      'cairn_server_leader_changes_seen_total',
      'cairn_server_term',
      'cairn_server_proposals_committed_total',
      'cairn_server_proposals_applied_total',
      'cairn_store_current_revision',
      'cairn_store_keys_total',
      'cairn_store_watchers',
      'cairn_store_writes_total',
      'cairn_storage_size_bytes',
      'cairn_disk_wal_writes_total',
      'cairn_disk_wal_write_stalls_total',
      'cairn_idle_gc_compactions_total',
      'cairn_idle_gc_put_off_total',
      'cairn_idle_gc_pause_seconds_total',
      'cairn_network_peer_sent_bytes_total',
      'cairn_network_peer_received_bytes_total',
      'cairn_network_peer_connections_refused_total',
      'cairn_network_appends_sent_total',
      'cairn_process_resident_memory_bytes',
      'cairn_nodejs_eventloop_lag_seconds',
    ]) {
      expect(names, name).toContain(name)
    }
    expect(types.get('cairn_server_leader_changes_seen_total')).toBe('counter')
    expect(types.get('cairn_network_peer_sent_bytes_total')).toBe('counter')
    expect(types.get('cairn_server_is_leader')).toBe('gauge')
    expect(value(samples, 'cairn_server_has_leader')).toBe(1)
    expect(value(samples, 'cairn_server_is_leader')).toBe(1)
    expect(value(samples, 'cairn_server_leader_changes_seen_total')).toBeGreaterThanOrEqual(1)
    expect(value(samples, 'cairn_server_term')).toBeGreaterThanOrEqual(1)
    const committed = value(samples, 'cairn_server_proposals_committed_total') as number
    const applied = value(samples, 'cairn_server_proposals_applied_total') as number
    expect(applied).toBeGreaterThan(20)
    expect(committed).toBeGreaterThanOrEqual(applied)
    expect(value(samples, 'cairn_store_current_revision')).toBeGreaterThanOrEqual(seq)
    // The agents' own records (catalog nodes and machine keys) are keys too.
    expect(value(samples, 'cairn_store_keys_total')).toBe(seq + (await hiddenKeys(leaderUrl)))
    expect(value(samples, 'cairn_store_writes_total', { action: 'set' })).toBe(seq) // all through the leader
    expect(value(samples, 'cairn_storage_size_bytes')).toBeGreaterThan(0)
    // Small appends go in place while the disk is fast, and the first ones always do (the average
    // of write times starts at 0).
    expect(value(samples, 'cairn_disk_wal_writes_total', { path: 'in_place' })).toBeGreaterThan(0)
    expect(types.get('cairn_disk_wal_writes_total')).toBe('counter')
    expect(value(samples, 'cairn_process_resident_memory_bytes')).toBeGreaterThan(1_000_000)
    for (const name of cluster.names.filter((n) => cluster.clientUrl(n) !== leaderUrl)) {
      const id = ids.get(name) as string
      expect(value(samples, 'cairn_network_peer_sent_bytes_total', { To: id })).toBeGreaterThan(0)
      expect(value(samples, 'cairn_network_peer_received_bytes_total', { From: id })).toBeGreaterThan(0)
      expect(value(samples, 'cairn_network_peer_appends_sent_total', { To: id })).toBeGreaterThan(0)
    }
    expect(value(samples, 'cairn_network_appends_sent_total')).toBeGreaterThanOrEqual(2 * seq)
  })

  it('a follower says it is not the leader but knows one', async () => {
    const res = await fetch(`${followerUrls[0]}/metrics`)
    const { samples } = parsePrometheus(await res.text())
    expect(value(samples, 'cairn_server_is_leader')).toBe(0)
    expect(value(samples, 'cairn_server_has_leader')).toBe(1)
    expect(value(samples, 'cairn_network_appends_received_total')).toBeGreaterThanOrEqual(20)
  })
})

describe('a follower killed', () => {
  it('turns appends to it into counts.fail on the leader', async () => {
    const victimUrl = followerUrls[1] as string
    const victim = cluster.names.find((n) => cluster.clientUrl(n) === victimUrl) as string
    await cluster.kill(victim, 'SIGKILL')
    const victimId = ids.get(victim) as string
    const f = await pollUntil(
      async () => {
        await write(leaderUrl)
        const s = await getJson<LeaderStats>(`${leaderUrl}/v2/stats/leader`)
        const counts = s?.followers[victimId]?.counts
        return counts !== undefined && counts.fail > 0 ? counts : undefined
      },
      'appends to the killed follower counted as fail',
      20_000,
      () => cluster.outputs(),
    )
    expect(f.success).toBeGreaterThan(0)
    const { samples } = parsePrometheus(await (await fetch(`${leaderUrl}/metrics`)).text())
    expect(value(samples, 'cairn_network_peer_appends_failed_total', { To: victimId })).toBeGreaterThan(0)
    expect(value(samples, 'cairn_network_peer_sent_failures_total', { To: victimId })).toBeGreaterThan(0)
  })
})

/** Files under /_cairn (the catalog records agents write for themselves). */
async function hiddenKeys(url: string): Promise<number> {
  const res = await http('GET', `${url}/v2/keys/_cairn?recursive=true`)
  interface Node {
    dir?: boolean
    nodes?: Node[]
  }
  const count = (node: Node | undefined): number =>
    node === undefined ? 0 : node.dir === true ? (node.nodes ?? []).reduce((n, c) => n + count(c), 0) : 1
  return count((res?.body as { node?: Node } | undefined)?.node)
}
