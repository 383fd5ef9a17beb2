/**
 * Proves a cluster of real `cairn agent --server` processes (random loopback ports, real disks,
 * real TCP between members) does what an operator relies on:
 *   - three members started from the same --initial-cluster elect one leader they all agree on,
 *     and every member answers /health 200 and lists the three founders;
 *   - kill -9 of the leader under a steady write load loses no acknowledged write, and writes are
 *     acknowledged again within two election timeouts of the kill; the survivors learn of the
 *     death from their refused redials (raft.md, "A leader whose process is down");
 *   - kill -9 of every member at once, then a restart of all, keeps every acknowledged key.
 * Writes and linearizable reads use the etcd v2 API (PUT /v2/keys, GET ?quorum=true).
 * Timing: heartbeat 100 ms, election timeout 1,000 ms (etcd's defaults); every wait polls
 * with a deadline.
 */
import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentCluster, get, http, pollUntil, put, status } from './helpers/agent-processes.ts'
import { etcdctlAvailable } from './helpers/etcd.ts'

let cluster: AgentCluster | undefined

afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

/** Reads every key on every running member (bounded concurrency) and returns the mismatches. */
async function missing(c: AgentCluster, acked: Map<string, string>): Promise<string[]> {
  const wrong: string[] = []
  const keys = [...acked.keys()]
  for (const name of c.running.keys()) {
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map(async (key) => {
          const value = await get(c.clientUrl(name), key)
          if (value !== acked.get(key)) wrong.push(`${name}:${key}=${value} (acked ${acked.get(key)})`)
        }),
      )
    }
  }
  return wrong
}

interface Ack {
  key: string
  value: string
  startedAt: number
  ackedAt: number
}

/** An open-loop writer: starts a write every intervalMs on a random target, up to outstandingMax. */
class WriteLoad {
  readonly acks: Ack[] = []
  targets: string[]
  #seq = 0
  #outstanding = new Set<Promise<void>>()
  #timer: NodeJS.Timeout
  static readonly intervalMs = 20
  static readonly outstandingMax = 100

  constructor(c: AgentCluster, targets: string[]) {
    this.targets = targets
    this.#timer = setInterval(() => {
      if (this.#outstanding.size >= WriteLoad.outstandingMax || this.targets.length === 0) return
      const seq = ++this.#seq
      const target = this.targets[seq % this.targets.length] as string
      const key = `load/k${seq}`
      const value = `v${seq}`
      const startedAt = Date.now()
      const write: Promise<void> = put(c.clientUrl(target), key, value).then((ok) => {
        this.#outstanding.delete(write)
        if (ok) this.acks.push({ key, value, startedAt, ackedAt: Date.now() })
      })
      this.#outstanding.add(write)
    }, WriteLoad.intervalMs)
  }

  async stop(): Promise<Map<string, string>> {
    clearInterval(this.#timer)
    await Promise.all([...this.#outstanding])
    return new Map(this.acks.map((a) => [a.key, a.value]))
  }
}

describe('a 3-member cluster of cairn agent processes', () => {
  it('elects one leader that every member agrees on; every member is healthy and lists the founders', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    c.startAll()
    const leader = await c.leader()
    const statuses = await Promise.all(c.names.map((n) => status(c.clientUrl(n))))
    expect(statuses.filter((s) => s?.role === 'leader').map((s) => s?.name)).toEqual([leader])
    for (const name of c.names) {
      const health = await pollUntil(
        async () => ((await http('GET', `${c.clientUrl(name)}/health`))?.status === 200 ? true : undefined),
        `/health on ${name}`,
        10_000,
      )
      expect(health).toBe(true)
      const s = (await http('GET', `${c.clientUrl(name)}/_cairn/status`))?.body as {
        voters: string[]
        members: { name: string }[]
      }
      expect(s.voters).toHaveLength(3)
      expect(s.members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3'])
    }

    // Leadership transfer, asked of a follower (it forwards to the leader).
    const follower = c.names.find((n) => n !== leader)!
    const target = c.names.find((n) => n !== leader && n !== follower)!
    const targetId = (await status(c.clientUrl(target)))!.id
    const bad = await http('POST', `${c.clientUrl(follower)}/_cairn/transfer-leader?to=zz`)
    expect(bad?.status).toBe(400)
    const asked = await http('POST', `${c.clientUrl(follower)}/_cairn/transfer-leader?to=${targetId}`)
    expect(asked).toEqual({ status: 202, body: { to: targetId } })
    await pollUntil(
      async () => ((await c.leader()) === target ? true : undefined),
      `${target} to lead`,
      10_000,
      () => c.outputs(),
    )
  })

  it('every member publishes its client URL through the log, so etcdctl can sync the member list', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    c.startAll()
    await c.leader()
    const first = c.clientUrl(c.names[0] as string)
    const members = await pollUntil(
      async () => {
        const body = (await http('GET', `${first}/v2/members`))?.body as
          | { members: { name: string; clientURLs: string[] }[] }
          | undefined
        const all = body?.members ?? []
        return all.length === 3 && all.every((m) => m.clientURLs.length === 1) ? all : undefined
      },
      'published client URLs',
      10_000,
    )
    expect(members.map((m) => m.clientURLs[0]).sort()).toEqual(c.names.map((n) => c.clientUrl(n)).sort())
    if (!etcdctlAvailable()) {
      console.log('etcdctl not installed: skipping the etcdctl member-sync check (CI installs etcd-client)')
      return
    }
    // Without --no-sync, etcdctl first reads /v2/members and talks to the client URLs it finds.
    const env = { ...process.env, ETCDCTL_API: '2' }
    const set = spawnSync('etcdctl', ['--endpoints', first, 'set', '/synced', 'yes'], {
      env,
      encoding: 'utf8',
    })
    expect(set.stderr).toBe('')
    expect(set.stdout.trim()).toBe('yes')
    const got = spawnSync('etcdctl', ['--endpoints', first, 'get', '/synced'], { env, encoding: 'utf8' })
    expect(got.stdout.trim()).toBe('yes')
  })

  it('kill -9 of the leader under write load loses no acknowledged write; writes succeed again within 2 election timeouts', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    c.startAll()
    const leader = await c.leader()
    const load = new WriteLoad(c, [...c.names])
    await pollUntil(
      async () => (load.acks.length >= 50 ? true : undefined),
      '50 writes before the kill',
      30_000,
    )
    load.targets = c.names.filter((n) => n !== leader) // clients of the dead member move on
    const killedAt = Date.now()
    await c.kill(leader, 'SIGKILL')
    const firstAfter = await pollUntil(
      async () => load.acks.find((a) => a.startedAt >= killedAt),
      'a write started after the kill to be acknowledged',
      30_000,
      () => c.outputs(),
    )
    await pollUntil(
      async () => (load.acks.filter((a) => a.startedAt >= killedAt).length >= 50 ? true : undefined),
      '50 writes after the kill',
      30_000,
    )
    const acked = await load.stop()
    const recoveryMs = firstAfter.ackedAt - killedAt
    console.info(`leader ${leader} killed: writes acknowledged again after ${recoveryMs} ms`)
    if (recoveryMs > 2 * c.timing.electionMs) {
      // Say which elections it took (a split vote? a starved member?) before failing.
      const elections = c
        .outputs()
        .split('\n')
        .filter((line) => line.startsWith('---') || line.includes('leader changed'))
      console.info(`killed at ${new Date(killedAt).toISOString()}; leader changes:\n${elections.join('\n')}`)
    }
    expect(recoveryMs).toBeLessThanOrEqual(2 * c.timing.electionMs)
    // The survivors learned of the death from refused redials, not from the election timeout.
    expect(c.outputs()).toContain("the leader's process is down")

    c.start(leader) // the killed member comes back from its own disk and catches up
    await c.leader()
    expect(await missing(c, acked)).toEqual([])
  })

  it('kill -9 of every member, then a restart of all, keeps every acknowledged key', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    c.startAll()
    await c.leader()
    const acked = new Map<string, string>()
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const name = c.names[i % 3] as string
        if (await put(c.clientUrl(name), `crash/k${i}`, `v${i}`)) acked.set(`crash/k${i}`, `v${i}`)
      }),
    )
    expect(acked.size).toBeGreaterThan(0)
    await Promise.all(c.names.map((n) => c.kill(n, 'SIGKILL')))
    c.startAll()
    await c.leader()
    expect(await missing(c, acked)).toEqual([])
  })
})
