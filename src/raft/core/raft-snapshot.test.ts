/**
 * Proves log compaction and recovery (Raft paper §7, §5.1 persistent state): compact() drops entries
 * behind the snapshot but keeps snapshotRetainedEntries; a follower behind the compaction point gets
 * the snapshot, restores it and catches up, while one within the retained entries gets appends; a
 * follower that already holds the snapshot's entries only advances its commit; a restart from the
 * disk recovers term, vote, log and commit, and re-delivers exactly the committed entries after the
 * snapshot.
 */
import { describe, expect, it } from 'vitest'
import { makeRaftConfig } from './config.ts'
import { Prng } from './prng.ts'
import { RaftCore } from './raft.ts'
import {
  bootstrapStateWithTail,
  drain,
  drainMessages,
  makeCore,
  TestCluster,
  titled,
} from './test-cluster.ts'
import type { Entry, NodeId, Snapshot } from './types.ts'

function proposeMany(c: TestCluster, leader: NodeId, count: number): void {
  for (let i = 0; i < count; i++) c.core(leader).propose(new Uint8Array([i % 256]))
  c.process()
}

function logTerms(c: TestCluster, id: NodeId, from: number): number[] {
  return c
    .core(id)
    .logEntries(from, c.core(id).status().lastIndex + 1)
    .map((e) => e.term)
}

describe('§7 compaction', () => {
  it.each(
    titled(
      [
        { retained: 0, logStart: 14 },
        { retained: 2, logStart: 12 },
        { retained: 100, logStart: 0 },
      ],
      (c) =>
        `§7 compact() at applied 14 with snapshotRetainedEntries ${c.retained} keeps the log from ${c.logStart + 1}`,
    ),
  )('%s', (_, { retained, logStart }) => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: retained })
    c.elect(1)
    proposeMany(c, 1, 10)
    const core = c.core(1)
    expect(core.status().applied).toBe(14)

    const snapshot = c.compact(1, new Uint8Array([42]))
    expect(snapshot.meta).toEqual({ index: 14, term: 2, confState: { voters: [1, 2, 3], learners: [] } })
    expect(c.node(1).disk.logStart.index).toBe(logStart)
    const kept = Array.from({ length: 14 - logStart }, (_, i) => logStart + 1 + i)
    expect(c.node(1).disk.entries.map((e) => e.index)).toEqual(kept)
    expect(core.logEntries(1, 15).map((e) => e.index)).toEqual(kept)
    if (logStart > 0) expect(core.logTerm(logStart - 1)).toBeUndefined()
    expect(core.logTerm(logStart)).toBeDefined()
    expect(core.status().lastIndex).toBe(14)
  })

  it('compact() is only taken at the applied index', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    expect(() => c.core(1).compact(3, new Uint8Array(0))).toThrow(/must be at applied/)
  })

  it('compactAt() takes a snapshot captured before later entries were applied, with the membership of then', () => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: 0 })
    c.elect(1)
    proposeMany(c, 1, 3)
    const core = c.core(1)
    const point = core.snapshotPoint()
    expect(point).toEqual({
      index: core.status().applied,
      term: 2,
      confState: { voters: [1, 2, 3], learners: [] },
    })
    core.proposeConfChange({ type: 'addLearner', nodeId: 4 })
    c.process()
    proposeMany(c, 1, 2)
    expect(core.snapshotPoint().confState).toEqual({ voters: [1, 2, 3], learners: [4] })
    expect(core.status().applied).toBeGreaterThan(point.index)
    const result = core.compactAt(point, new Uint8Array([5]))
    expect(result?.snapshot.meta).toEqual(point)
    expect(result?.logStart.index).toBe(point.index)
    // A point at or behind the newest snapshot is stale: nothing changes.
    expect(core.compactAt(point, new Uint8Array([6]))).toBeUndefined()
    expect(() => core.compactAt({ ...point, index: core.status().applied + 1 }, new Uint8Array(0))).toThrow(
      /beyond applied/,
    )
  })

  it('snapshotStored() swaps the bytes the log keeps for data read on demand, which a follower then gets', () => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: 0 })
    c.elect(1)
    c.cut(1, 3)
    proposeMany(c, 1, 5)
    const bytes = new Uint8Array([1, 2, 3, 4])
    const snapshot = c.compact(1, bytes)
    const reads: number[] = []
    const stored = {
      byteLength: bytes.byteLength,
      read: (offset: number, length: number) => {
        reads.push(offset)
        return bytes.slice(offset, offset + length)
      },
    }
    expect(() => c.core(1).snapshotStored(snapshot.meta.index, { ...stored, byteLength: 3 })).toThrow(
      /size differs/,
    )
    c.core(1).snapshotStored(snapshot.meta.index - 1, stored) // not the log's snapshot: ignored
    c.core(1).snapshotStored(snapshot.meta.index, stored)
    c.recordSent = true
    c.heal()
    c.tick(1)
    const snaps = c.sent.filter((m) => m.type === 'snap')
    expect(snaps.length).toBe(1)
    expect(snaps[0]?.type === 'snap' && snaps[0].snapshot.data).toBe(stored)
    expect(c.core(3).status().applied).toBe(c.core(1).status().commit)
  })
})

describe('§7 InstallSnapshot', () => {
  it.each(
    titled(
      [
        { behind: 20, retained: 2, snapshotSent: true },
        { behind: 3, retained: 5, snapshotSent: false },
      ],
      (c) =>
        c.snapshotSent
          ? `§7 a follower ${c.behind} entries behind a compaction keeping ${c.retained} gets the snapshot, restores it and catches up`
          : `a follower ${c.behind} entries behind a compaction keeping ${c.retained} catches up by appends alone`,
    ),
  )('%s', (_, { behind, retained, snapshotSent }) => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: retained })
    c.elect(1)
    c.cut(1, 3)
    proposeMany(c, 1, behind)
    const snapshot = c.compact(1, new Uint8Array([7]))
    c.recordSent = true
    c.heal()
    c.tick(1)
    proposeMany(c, 1, 2) // and it keeps up afterwards

    const leader = c.core(1).status()
    expect(c.core(3).status()).toMatchObject({ lastIndex: leader.lastIndex, commit: leader.commit })
    expect(c.core(3).status().applied).toBe(leader.commit)
    const snaps = c.sent.filter((m) => m.type === 'snap')
    if (snapshotSent) {
      expect(snaps.map((m) => m.to)).toEqual([3])
      expect(c.node(3).snapshotsApplied).toEqual([snapshot])
      // After the snapshot the application got exactly the entries that followed it.
      expect(c.node(3).applied.map((e) => e.index)).toEqual(
        Array.from({ length: leader.commit - snapshot.meta.index }, (_, i) => snapshot.meta.index + 1 + i),
      )
      expect(c.core(3).status().confState).toEqual({ voters: [1, 2, 3], learners: [] })
    } else {
      expect(snaps).toEqual([])
      expect(c.node(3).snapshotsApplied).toEqual([])
    }
    expect(logTerms(c, 3, snapshot.meta.index + 1)).toEqual(logTerms(c, 1, snapshot.meta.index + 1))
  })

  it.each(
    titled(
      [
        { snapshotIndex: 5, restored: false, commit: 5 },
        { snapshotIndex: 9, restored: true, commit: 9 },
      ],
      (c) =>
        c.restored
          ? '§7 a snapshot beyond the follower’s log replaces the log'
          : '§7 a snapshot of entries the follower already holds only advances its commit',
    ),
  )('%s', (_, { snapshotIndex, restored, commit }) => {
    // The follower holds entries 4 and 5 of term 2, committed up to 3.
    const follower = makeCore(2, bootstrapStateWithTail([1, 2, 3], [2, 2]))
    const snapshot: Snapshot = {
      meta: { index: snapshotIndex, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
      data: new Uint8Array([1]),
    }
    follower.step({ type: 'snap', from: 1, to: 2, term: 2, snapshot })
    const rd = follower.ready()
    expect(rd.snapshot).toBe(restored ? snapshot : undefined)
    expect(rd.messages).toEqual([
      { type: 'appResp', from: 2, to: 1, term: 2, index: commit, reject: false, rejectHint: 0, logTerm: 0 },
    ])
    follower.advance(rd)
    drainMessages(follower)
    expect(follower.status()).toMatchObject({ commit, applied: commit, lastIndex: restored ? 9 : 5 })
  })
})

describe('snapshots and the transport', () => {
  it('a snapshot the transport lost leaves the follower waiting until reportSnapshot(…, false); then it is sent again', () => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: 0 })
    c.elect(1)
    c.cut(1, 3)
    proposeMany(c, 1, 5)
    c.compact(1)
    c.heal()
    c.ignore('snap')
    c.tick(1)
    expect(c.core(1).status().progress?.get(3)?.state).toBe('snapshot')
    c.heal()
    c.tick(5)
    expect(c.core(1).status().progress?.get(3)?.state).toBe('snapshot') // nothing else is sent meanwhile
    expect(c.core(3).status().commit).toBeLessThan(c.core(1).status().commit)

    c.core(1).reportSnapshot(3, false)
    expect(c.core(1).status().progress?.get(3)?.state).toBe('probe')
    c.tick(1)
    expect(c.node(3).snapshotsApplied).toHaveLength(1)
    expect(c.core(3).status().commit).toBe(c.core(1).status().commit)
  })

  it('reportUnreachable stops pipelining to a follower: replicate falls back to probe', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    expect(c.core(1).status().progress?.get(2)?.state).toBe('replicate')
    c.core(1).reportUnreachable(2)
    expect(c.core(1).status().progress?.get(2)?.state).toBe('probe')
  })

  it('a snapshot restored between ready() and advance() is not undone by the membership entries of that Ready', () => {
    // Entry 4 adds learner 5; the snapshot at 10 already reflects its later removal.
    const follower = makeCore(2)
    const addLearner: Entry = {
      index: 4,
      term: 2,
      type: 'conf',
      data: new Uint8Array(0),
      change: { type: 'addLearner', nodeId: 5 },
    }
    follower.step({
      type: 'app',
      from: 1,
      to: 2,
      term: 2,
      index: 3,
      logTerm: 1,
      entries: [addLearner],
      commit: 4,
    })
    const rd = follower.ready()
    expect(rd.committedEntries).toEqual([addLearner])
    const snapshot: Snapshot = {
      meta: { index: 10, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
      data: new Uint8Array(0),
    }
    follower.step({ type: 'snap', from: 1, to: 2, term: 2, snapshot })
    follower.advance(rd)
    drain(follower)
    expect(follower.status()).toMatchObject({
      applied: 10,
      commit: 10,
      confState: { voters: [1, 2, 3], learners: [] },
    })
  })
})

describe('§5.1 recovery from the disk', () => {
  it('a driver that restarts with its applied index is handed only the entries after it, with membership up to it', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.core(1).proposeConfChange({ type: 'addLearner', nodeId: 4 })
    c.process()
    proposeMany(c, 1, 3)
    const disk = structuredClone(c.node(2).disk)
    expect(disk.hardState.commit).toBe(8)
    const restarted = new RaftCore(makeRaftConfig({ id: 2, prng: new Prng(2) }), disk, 6)
    expect(restarted.status()).toMatchObject({ applied: 6, confState: { voters: [1, 2, 3], learners: [4] } })
    const rd = restarted.ready()
    expect(rd.committedEntries.map((e) => e.index)).toEqual([7, 8])
    restarted.advance(rd)
  })

  it('restarting with an applied index behind the snapshot is a programmer error', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.compact(2)
    const disk = structuredClone(c.node(2).disk)
    expect(() => new RaftCore(makeRaftConfig({ id: 2, prng: new Prng(2) }), disk, 1)).toThrow(
      /behind the snapshot/,
    )
  })

  it.each(
    titled(
      [
        { id: 1, role: 'the leader' },
        { id: 2, role: 'a follower' },
      ],
      (c) => `§5.1 ${c.role}, restarted from its disk, recovers term, vote, log and commit`,
    ),
  )('%s', (_, { id }) => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    proposeMany(c, 1, 5)
    const before = c.core(id).status()
    const log = c.core(id).logEntries(1, before.lastIndex + 1)
    c.crash(id)
    c.restart(id)
    const after = c.core(id).status()
    expect(after).toMatchObject({
      term: before.term,
      vote: before.vote,
      commit: before.commit,
      lastIndex: before.lastIndex,
      applied: before.commit,
      confState: before.confState,
      role: 'follower',
    })
    expect(c.core(id).logEntries(1, after.lastIndex + 1)).toEqual(log)
  })

  it.each(
    titled([{ retained: 0 }, { retained: 3 }], (c) =>
      [
        '§7 a node restarted after a snapshot re-delivers exactly the committed entries after it',
        `(snapshotRetainedEntries ${c.retained})`,
      ].join(' '),
    ),
  )('%s', (_, { retained }) => {
    const c = new TestCluster([1, 2, 3], { snapshotRetainedEntries: retained })
    c.elect(1)
    proposeMany(c, 1, 5)
    const snapshot = c.compact(2)
    expect(snapshot.meta.index).toBe(9)
    proposeMany(c, 1, 3)
    c.crash(2)
    c.restart(2)
    // The driver keeps what it applied up to the snapshot; the core re-delivers 10..12 once each.
    expect(c.node(2).applied.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    expect(c.core(2).status()).toMatchObject({ applied: 12, commit: 12, lastIndex: 12 })
    expect(c.core(2).status().confState).toEqual({ voters: [1, 2, 3], learners: [] })
    // And it goes on replicating.
    proposeMany(c, 1, 1)
    expect(c.core(2).status().commit).toBe(13)
  })

  it('a crashed follower misses nothing committed meanwhile: it catches up after restart', () => {
    const c = new TestCluster([1, 2, 3])
    c.elect(1)
    c.crash(3)
    proposeMany(c, 1, 4)
    c.restart(3)
    c.tick(1)
    expect(c.core(3).status()).toMatchObject({ commit: 8, applied: 8 })
  })
})

describe('loading a snapshot whose hard state was not persisted with it', () => {
  it('a snapshot is committed by definition: a disk whose commit is behind it still loads, at the snapshot', () => {
    const snapshot: Snapshot = {
      meta: { index: 20, term: 3, confState: { voters: [1, 2, 3], learners: [] } },
      data: new Uint8Array([1]),
    }
    const core = new RaftCore(makeRaftConfig({ id: 1, prng: new Prng(1) }), {
      hardState: { term: 3, vote: 2, commit: 7 }, // crash after the snapshot, before its hard state
      snapshot,
      logStart: { index: 20, term: 3 },
      entries: [],
    })
    expect(core.status()).toMatchObject({ term: 3, vote: 2, commit: 20, applied: 20, lastIndex: 20 })
    expect(core.status().confState.voters).toEqual([1, 2, 3])
    const [rd] = drain(core)
    expect(rd?.hardState).toMatchObject({ commit: 20 }) // the lifted commit gets persisted
  })
})
