/**
 * Proves the node driver's promises: a proposal resolves with its result only after it is applied
 * (on the leader and, forwarded, on a follower); a linearizable read resolves only once the member
 * applied every write acknowledged before it, and is asked again of a new leader when the old one
 * is lost; requests time out with RAFT_REQUEST_TIMEOUT when no
 * quorum answers; proposals made before a leader exists wait for one; a stopping leader hands
 * leadership over; a restarted member recovers its state from its storage.
 *
 * Storage and transport here are in-memory stand-ins for the collaborators (an in-memory disk that
 * follows the storage contract and an in-process message bus); the thing under test is the driver.
 * Multi-process tests with the real storage and TCP transport live in test/.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import { bootstrapState, emptyState } from './core/bootstrap.ts'
import { persist, persistCompaction } from './core/test-cluster.ts'
import type { Entry, Message, NodeId, PersistedState, Ready, SnapshotMeta } from './core/types.ts'
import { envelopeBytes, RaftNode } from './node.ts'
import type { SnapshotCapture, StateMachine } from './state-machine.ts'
import type { RaftStorage, SaveBatch, StagedSnapshot } from './storage/storage.ts'
import type { PeerTransport, PeerTransportEvents } from './transport/transport.ts'

/** An append-only list of strings: the result of a command is its position in the list. */
class ListMachine implements StateMachine {
  appliedIndex = 0
  items: string[] = []

  apply(entry: Entry): unknown {
    this.appliedIndex = entry.index
    if (entry.type !== 'normal' || entry.data.byteLength === 0) return undefined
    this.items.push(new TextDecoder().decode(entry.data))
    return this.items.length
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ appliedIndex: this.appliedIndex, items: this.items }))
  }

  captureSnapshot(): SnapshotCapture {
    const appliedIndex = this.appliedIndex
    const items = [...this.items]
    const encode = async () => {
      await new Promise((resolve) => setImmediate(resolve))
      return new TextEncoder().encode(JSON.stringify({ appliedIndex, items }))
    }
    return {
      appliedIndex,
      encode,
      async *pieces() {
        yield await encode()
      },
    }
  }

  restore(data: Uint8Array): void {
    const state = JSON.parse(new TextDecoder().decode(data)) as { appliedIndex: number; items: string[] }
    this.appliedIndex = state.appliedIndex
    this.items = state.items
  }

  memberPeerUrls(): ReadonlyMap<NodeId, readonly string[]> {
    return new Map()
  }
}

class MemoryStorage implements RaftStorage {
  disk: PersistedState = emptyState()
  saves = 0

  async load(): Promise<PersistedState> {
    return structuredClone(this.disk)
  }

  async save(batch: SaveBatch): Promise<void> {
    this.saves++
    persist(this.disk, { ...batch, mustSync: batch.sync } as unknown as Ready)
  }

  async saveCompaction(
    snapshot: PersistedState['snapshot'] & object,
    logStart: { index: number; term: number },
  ) {
    persistCompaction(this.disk, { snapshot, logStart })
  }

  async stageSnapshot(_meta: SnapshotMeta, pieces: AsyncIterable<Uint8Array>): Promise<StagedSnapshot> {
    const chunks: Uint8Array[] = []
    for await (const piece of pieces) chunks.push(Uint8Array.from(piece))
    return { data: Buffer.concat(chunks), discard: async () => {} }
  }

  async storedSnapshot(): Promise<undefined> {
    return undefined
  }

  sizeBytes(): number {
    return 0
  }

  async close(): Promise<void> {}
}

/** Delivers messages between members in the same process, asynchronously; links can be cut. */
class Bus {
  members = new Map<NodeId, PeerTransportEvents>()
  cut = new Set<NodeId>()
  /** Messages handed to send(), by sender and type ("2 readIndex"), delivered or not. */
  sent = new Map<string, number>()

  transport(id: NodeId, events: PeerTransportEvents): PeerTransport {
    return {
      start: async () => {
        this.members.set(id, events)
        return { host: '127.0.0.1', port: 0 }
      },
      send: (messages: readonly Message[]) => {
        for (const m of messages) {
          const kind = `${m.from} ${m.type}`
          this.sent.set(kind, (this.sent.get(kind) ?? 0) + 1)
          if (this.cut.has(m.from) || this.cut.has(m.to)) continue
          setImmediate(() => this.members.get(m.to)?.onMessage(structuredClone(m)))
        }
      },
      setPeer: () => {},
      removePeer: () => {},
      stop: async () => {
        this.members.delete(id)
      },
    }
  }
}

const started: RaftNode[] = []

afterEach(async () => {
  await Promise.allSettled(started.splice(0).map((n) => n.stop()))
})

async function startCluster(
  ids: NodeId[],
  bus = new Bus(),
  storages = new Map<NodeId, MemoryStorage>(),
  limits: { readsPendingMax?: number; requestTimeoutMs?: number } = {},
) {
  const nodes = new Map<NodeId, { node: RaftNode; sm: ListMachine; storage: MemoryStorage }>()
  for (const id of ids) {
    const storage = storages.get(id) ?? new MemoryStorage()
    storages.set(id, storage)
    const sm = new ListMachine()
    const node = await RaftNode.start({
      id,
      storage,
      stateMachine: sm,
      createTransport: (events) => bus.transport(id, events),
      bootstrap: { voters: [], state: bootstrapState(ids) },
      tickMs: 5,
      requestTimeoutMs: limits.requestTimeoutMs ?? 2_000,
      readsPendingMax: limits.readsPendingMax,
      seed: id,
    })
    started.push(node)
    nodes.set(id, { node, sm, storage })
  }
  return { nodes, bus, storages }
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const text = (s: string) => new TextEncoder().encode(s)

describe('RaftNode', () => {
  it('a proposal resolves with its result after it is applied, on the leader and forwarded from a follower', async () => {
    const { nodes } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    const leader = nodes.get(leaderId)!
    expect(await leader.node.propose(text('a'))).toBe(1)
    expect(leader.sm.items).toEqual(['a'])
    const follower = [...nodes.values()].find((n) => n.node.id !== leaderId)!
    expect(await follower.node.propose(text('b'))).toBe(2)
    expect(follower.sm.items).toEqual(['a', 'b'])
  })

  it('a linearizable read on a follower resolves only after it applied every write acknowledged before it', async () => {
    const { nodes } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    const follower = [...nodes.values()].find((n) => n.node.id !== leaderId)!
    for (let i = 0; i < 20; i++) await nodes.get(leaderId)!.node.propose(text(`w${i}`))
    await follower.node.readIndex()
    expect(follower.sm.items).toHaveLength(20)
  })

  it('a read asked of a leader that is then lost is asked again of the next leader, not left to time out', async () => {
    const { nodes, bus } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    await nodes.get(leaderId)!.node.propose(text('before'))
    const follower = [...nodes.values()].find((n) => n.node.id !== leaderId)!
    await follower.node.readIndex() // the follower knows the leader
    bus.cut.add(leaderId) // the leader is gone: the read below is forwarded to it and lost
    const read = follower.node.readIndex().then(
      () => 'read',
      (e: unknown) => (isCairnError(e) ? e.code : String(e)),
    )
    expect(await read).toBe('read') // the request timeout is 2 s; an election here takes ~50 ms
    expect(follower.node.leader).not.toBe(leaderId)
    expect(follower.sm.items).toEqual(['before'])
  })

  it('reads made in one event-loop turn share one ReadIndex request, and each sees every write acknowledged before it', async () => {
    const { nodes, bus } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    const follower = [...nodes.values()].find((n) => n.node.id !== leaderId)!
    await follower.node.readIndex() // the follower knows the leader
    for (let i = 0; i < 20; i++) await nodes.get(leaderId)!.node.propose(text(`w${i}`))
    const kind = `${follower.node.id} readIndex`
    const before = bus.sent.get(kind) ?? 0
    const seen = await Promise.all(
      Array.from({ length: 100 }, () => follower.node.readIndex().then(() => follower.sm.items.length)),
    )
    expect(seen).toEqual(Array(100).fill(20))
    expect((bus.sent.get(kind) ?? 0) - before).toBe(1)
  })

  it('a read made after the batch of its turn went to the core gets a batch of its own and sees writes acknowledged before it', async () => {
    const { nodes, bus } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    const leader = nodes.get(leaderId)!
    const follower = [...nodes.values()].find((n) => n.node.id !== leaderId)!
    await follower.node.readIndex()
    const kind = `${follower.node.id} readIndex`
    const before = bus.sent.get(kind) ?? 0
    const first = follower.node.readIndex()
    // The first batch went to the core at the end of the turn, and the loop sends it a turn later.
    await waitFor(() => ((bus.sent.get(kind) ?? 0) - before === 1 ? true : undefined), 'the first batch sent')
    const write = leader.node.propose(text('after the first read'))
    await write
    // The first read may still be unconfirmed; joining it would fix this read's index before the write.
    const second = follower.node.readIndex().then(() => follower.sm.items.includes('after the first read'))
    await first
    expect(await second).toBe(true)
    expect((bus.sent.get(kind) ?? 0) - before).toBe(2)
  })

  it('reads count one by one against readsPendingMax, and a batch without a quorum times out as a whole', async () => {
    const { nodes, bus } = await startCluster([1, 2, 3], undefined, undefined, {
      readsPendingMax: 5,
      requestTimeoutMs: 300,
    })
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    for (const id of nodes.keys()) if (id !== leaderId) bus.cut.add(id)
    const leader = nodes.get(leaderId)!.node
    const code = (p: Promise<void>) =>
      p.then(
        () => 'read',
        (e: unknown) => (isCairnError(e) ? e.code : String(e)),
      )
    const reads = Array.from({ length: 6 }, () => code(leader.readIndex()))
    expect(await Promise.all(reads)).toEqual([
      ...Array(5).fill('RAFT_REQUEST_TIMEOUT'),
      'RAFT_READS_PENDING_MAX',
    ])
    // Every read was counted off when its batch timed out: the limit admits new ones again.
    expect(await code(leader.readIndex())).toBe('RAFT_REQUEST_TIMEOUT')
  })

  it('many concurrent proposals are group-committed: far fewer saves than proposals', async () => {
    const { nodes } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    const leader = nodes.get(leaderId)!
    const before = leader.storage.saves
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => leader.node.propose(text(`p${i}`))),
    )
    expect(new Set(results).size).toBe(200)
    expect(leader.storage.saves - before).toBeLessThan(100)
  })

  it('proposals made by separate callbacks of one event-loop turn go to the disk in one save', async () => {
    const first = await startCluster([1])
    const only = first.nodes.get(1)!
    await waitFor(() => only.node.isLeader, 'leadership')
    await only.node.propose(text('settled'))
    const before = only.storage.saves
    // Five callbacks of one check phase, as requests read from five sockets in one poll would be.
    const writes = await new Promise<Promise<unknown>[]>((resolve) => {
      const proposed: Promise<unknown>[] = []
      for (let i = 0; i < 5; i++) {
        setImmediate(() => {
          proposed.push(only.node.propose(text(`same turn ${i}`)))
          if (proposed.length === 5) resolve(proposed)
        })
      }
    })
    expect(await Promise.all(writes)).toEqual([2, 3, 4, 5, 6])
    expect(only.storage.saves - before).toBe(1)
  })

  it('without a quorum a proposal times out with RAFT_REQUEST_TIMEOUT', async () => {
    const { nodes, bus } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    for (const id of nodes.keys()) if (id !== leaderId) bus.cut.add(id)
    const error = await nodes
      .get(leaderId)!
      .node.propose(text('lost'))
      .catch((e: unknown) => e)
    expect(isCairnError(error, 'RAFT_REQUEST_TIMEOUT')).toBe(true)
  })

  it('a stopping leader hands leadership to another member, which then serves writes', async () => {
    const { nodes } = await startCluster([1, 2, 3])
    const leaderId = await waitFor(
      () => [...nodes.values()].find((n) => n.node.isLeader)?.node.id,
      'a leader',
    )
    await nodes.get(leaderId)!.node.propose(text('x'))
    await nodes.get(leaderId)!.node.stop()
    const next = await waitFor(
      () => [...nodes.values()].find((n) => n.node.id !== leaderId && n.node.isLeader)?.node.id,
      'a new leader',
      1_000,
    )
    expect(await nodes.get(next)!.node.propose(text('y'))).toBe(2)
  })

  it('a single-voter member saves each entry before acknowledging it, and a restart recovers every acknowledged write', async () => {
    const storages = new Map<NodeId, MemoryStorage>()
    const first = await startCluster([1], new Bus(), storages)
    const only = first.nodes.get(1)!
    await waitFor(() => only.node.isLeader, 'leadership')
    for (let i = 0; i < 30; i++) {
      await only.node.propose(text(`k${i}`))
      const persisted = only.storage.disk.entries.map((e) =>
        new TextDecoder().decode(e.data.subarray(envelopeBytes)),
      )
      expect(persisted).toContain(`k${i}`)
    }
    await only.node.stop()
    started.length = 0
    const again = await startCluster([1], new Bus(), storages)
    const restarted = again.nodes.get(1)!
    await waitFor(() => restarted.sm.items.length === 30, 'replay of 30 writes')
    expect(restarted.sm.items).toEqual(Array.from({ length: 30 }, (_, i) => `k${i}`))
  })

  it('compacts after snapshotCount applied entries and restarts from the snapshot plus the log', async () => {
    const storages = new Map<NodeId, MemoryStorage>()
    const bus = new Bus()
    const storage = new MemoryStorage()
    storages.set(1, storage)
    const sm = new ListMachine()
    const node = await RaftNode.start({
      id: 1,
      storage,
      stateMachine: sm,
      createTransport: (events) => bus.transport(1, events),
      bootstrap: { voters: [], state: bootstrapState([1]) },
      tickMs: 5,
      snapshotCount: 10,
      raft: { snapshotRetainedEntries: 0 },
      seed: 1,
    })
    await waitFor(() => node.isLeader, 'leadership')
    for (let i = 0; i < 25; i++) await node.propose(text(`s${i}`))
    // Snapshots are encoded off the loop, then installed between two Readies.
    await waitFor(() => (storage.disk.snapshot?.meta.index ?? 0) >= 20, 'a snapshot at 20 or later')
    expect(storage.disk.logStart.index).toBe(storage.disk.snapshot?.meta.index)
    await node.stop()
    const sm2 = new ListMachine()
    const node2 = await RaftNode.start({
      id: 1,
      storage,
      stateMachine: sm2,
      createTransport: (events) => bus.transport(1, events),
      tickMs: 5,
      seed: 1,
    })
    started.push(node2)
    await waitFor(() => sm2.items.length === 25, 'snapshot plus replay')
    expect(sm2.items.at(-1)).toBe('s24')
  })
})
