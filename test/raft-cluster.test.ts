/**
 * Proves the durable node works with all its real parts together, in one process: RaftNode on the
 * file WAL (real files, fsync), the TCP peer transport (real sockets on random loopback ports) and
 * the kv state machine. A 3-member cluster elects a leader, replicates v2 writes proposed on any
 * member, answers linearizable reads, survives the restart of every member from its data
 * directory with every acknowledged write, and brings a member that was down past a compaction up
 * to date with a snapshot streamed over TCP.
 *
 * (Multi-process tests with kill -9 and real clients come with the agent; see test/ as they land.)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeCommand } from '../src/kv/commands.ts'
import { ReplicatedStore } from '../src/kv/replicated-store.ts'
import { KvStateMachine } from '../src/kv/state-machine.ts'
import { bootstrapState } from '../src/raft/core/bootstrap.ts'
import type { NodeId } from '../src/raft/core/types.ts'
import { encodeMemberContext } from '../src/raft/member-context.ts'
import { RaftNode } from '../src/raft/node.ts'
import { FileStorage } from '../src/raft/storage/file-storage.ts'
import { createPeerTransport } from '../src/raft/transport/tcp-transport.ts'
import { freePorts } from './helpers/ports.ts'

const quiet = { warn() {}, info() {}, debug() {} }

interface Member {
  id: NodeId
  node: RaftNode
  sm: KvStateMachine
  /** Snapshots restored into the state machine since this start (from disk or from the leader). */
  restores: number
  store: ReplicatedStore
}

class Cluster {
  readonly ids: NodeId[]
  readonly ports: Map<NodeId, number>
  readonly dir = mkdtempSync(join(tmpdir(), 'cairn-cluster-'))
  readonly members = new Map<NodeId, Member>()
  /** The members' wall clock for TTLs (stamps and expiry sweeps), driven by the test. */
  now = 1_000_000
  #seq = 0

  constructor(ids: NodeId[], ports: number[]) {
    this.ids = ids
    this.ports = new Map(ids.map((id, i) => [id, ports[i] as number]))
  }

  peerUrl(id: NodeId): string {
    return `http://127.0.0.1:${this.ports.get(id)}`
  }

  async start(id: NodeId, options: { snapshotCount?: number } = {}): Promise<Member> {
    const sm = new KvStateMachine()
    const counted = { restores: 0 }
    const restore = sm.restore.bind(sm)
    sm.restore = (data) => {
      counted.restores++
      restore(data)
    }
    const founders = this.ids.map((i) => ({ id: i, peerUrl: this.peerUrl(i) }))
    const node = await RaftNode.start({
      id,
      storage: new FileStorage(join(this.dir, `m${id}`)),
      stateMachine: sm,
      createTransport: (events) =>
        createPeerTransport({
          clusterId: 'test-cluster',
          memberId: id,
          listen: { host: '127.0.0.1', port: this.ports.get(id) as number },
          events,
          log: quiet,
        }),
      bootstrap: {
        voters: founders,
        state: bootstrapState(this.ids, (i) =>
          encodeMemberContext({ name: `m${i}`, peerUrls: [this.peerUrl(i)], clientUrls: [] }),
        ),
      },
      tickMs: 20,
      requestTimeoutMs: 5_000,
      snapshotCount: options.snapshotCount ?? 10_000,
      seed: id,
    })
    const member: Member = {
      id,
      node,
      sm,
      store: new ReplicatedStore({ node, stateMachine: sm, expirySweepMs: 20, clock: () => this.now }),
      get restores() {
        return counted.restores
      },
    }
    this.members.set(id, member)
    return member
  }

  async stop(id: NodeId): Promise<void> {
    const member = this.members.get(id)
    this.members.delete(id)
    member?.store.close()
    await member?.node.stop()
  }

  async leader(): Promise<Member> {
    return await waitFor(() => [...this.members.values()].find((m) => m.node.isLeader), 'a leader')
  }

  set(member: Member, key: string, value: string): Promise<unknown> {
    const command = encodeCommand({
      op: 'v2.set',
      id: `t${++this.#seq}`,
      now: Date.now(),
      key,
      value,
      dir: false,
    })
    return member.node.propose(command)
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([...this.members.keys()].map((id) => this.stop(id)))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function readValue(member: Member, key: string): string | undefined {
  try {
    return member.sm.v2Get(key).node.value
  } catch {
    return undefined
  }
}

let cluster: Cluster | undefined

afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

describe('a 3-member cluster with real storage, TCP transport and the kv state machine', () => {
  it('replicates writes from any member, answers linearizable reads, and keeps every write across a full restart', async () => {
    cluster = new Cluster([11, 12, 13], await freePorts(3))
    for (const id of cluster.ids) await cluster.start(id)
    const leader = await cluster.leader()
    const follower = [...cluster.members.values()].find((m) => m !== leader) as Member
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => cluster!.set(i % 2 === 0 ? leader : follower, `/k${i}`, `v${i}`)),
    )
    expect(results.every((r) => (r as { ok?: boolean }).ok === true)).toBe(true)
    for (const member of cluster.members.values()) {
      await member.node.readIndex()
      for (let i = 0; i < 60; i++) expect(readValue(member, `/k${i}`)).toBe(`v${i}`)
    }
    for (const id of cluster.ids) await cluster.stop(id)
    for (const id of cluster.ids) await cluster.start(id)
    await cluster.leader()
    for (const member of cluster.members.values()) {
      await member.node.readIndex()
      for (let i = 0; i < 60; i++) expect(readValue(member, `/k${i}`)).toBe(`v${i}`)
    }
  })

  it('a member that was down while the others compacted catches up from a snapshot streamed over TCP', async () => {
    cluster = new Cluster([21, 22, 23], await freePorts(3))
    for (const id of cluster.ids) await cluster.start(id, { snapshotCount: 50 })
    await cluster.leader()
    const lagging = [...cluster.members.values()].find((m) => !m.node.isLeader) as Member
    await cluster.stop(lagging.id)
    const leader = await cluster.leader()
    for (let i = 0; i < 6_000; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, j) => cluster!.set(leader, `/s${i + j}`, `x${i + j}`)),
      )
    }
    // Compaction kept snapshotRetainedEntries (5,000) behind the snapshot; 6,000 writes go past it.
    const back = await cluster.start(lagging.id, { snapshotCount: 50 })
    expect(back.restores).toBe(0) // it stopped before its first snapshot: nothing on its disk
    await waitFor(() => (readValue(back, '/s5999') === 'x5999' ? true : undefined), 'catch-up', 20_000)
    expect(readValue(back, '/s0')).toBe('x0')
    expect(back.restores).toBe(1) // caught up through the leader's snapshot, not from appends
  })

  it('TTL keys expire on every member, proposed by the leader, and a leader change does not restart the TTL', async () => {
    const c = new Cluster([31, 32, 33], await freePorts(3))
    cluster = c
    for (const id of c.ids) await c.start(id)
    const leader = await c.leader()
    const result = await leader.store.write({
      op: 'v2.set',
      key: '/ttl',
      value: 'x',
      dir: false,
      ttlMs: 1_500,
    })
    expect(result).toMatchObject({ type: 'command', ok: true }) // deadline: stamped now + 1,500 ms
    await c.stop(leader.id) // hands leadership over; the deadline is replicated state
    const next = await c.leader()
    c.now += 1_400 // a restarted TTL would now have 1,500 ms to go; the replicated one has 100
    const probe = await next.store.write({ op: 'v2.set', key: '/probe', value: 'p', dir: false })
    expect(probe).toMatchObject({ ok: true })
    await next.node.readIndex()
    expect(readValue(next, '/ttl')).toBe('x')
    c.now += 200 // past the original deadline, well before a restarted one
    for (const member of c.members.values()) {
      await waitFor(
        () => (readValue(member, '/ttl') === undefined ? true : undefined),
        'expiry on every member',
      )
    }
  })
})
