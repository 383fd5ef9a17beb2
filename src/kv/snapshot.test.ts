/**
 * Proves determinism and snapshots: the same random entries applied to two state machines give the
 * same results and byte-identical snapshots; a machine restored from a snapshot taken after N
 * random entries is byte-identical and then answers M more entries (commands, expiries, membership)
 * and watches from past revisions exactly as the original; a corrupt snapshot is refused with
 * KV_SNAPSHOT_INVALID and leaves the state as it was. A capture encoded later (off the Ready loop)
 * gives the bytes of the state at capture time; values an event shares with its key are stored
 * once; format-1 snapshots still decode.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { runSteps, stepArbitrary } from './kv-arbitrary.ts'
import { packValue, unpackValue } from './msgpack.ts'
import { decodeSnapshot, snapshotChunkBytes, snapshotChunkRows } from './snapshot-codec.ts'
import { KvStateMachine } from './state-machine.ts'
import { errorOf, newTestStore, testEpochMs } from './test-support.ts'

const steps = (max: number) => fc.array(stepArbitrary, { minLength: 1, maxLength: max })

describe('determinism', () => {
  it('two machines fed the same random entries give the same results and byte-identical snapshots', () => {
    fc.assert(
      fc.property(steps(120), (workload) => {
        const a = new KvStateMachine({ historyRevisionsMax: 25 })
        const b = new KvStateMachine({ historyRevisionsMax: 25 })
        const [ra, rb] = runSteps([a, b], workload, { nowMs: testEpochMs })
        expect(rb).toEqual(ra)
        expect(Buffer.from(b.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true)
      }),
      { numRuns: 150 },
    )
  })
})

describe('snapshot round trip', () => {
  it('restore after N random entries, then M more on both: identical results, state and watches', () => {
    fc.assert(
      fc.property(steps(80), steps(80), (before, after) => {
        const clock = { nowMs: testEpochMs }
        const original = new KvStateMachine({ historyRevisionsMax: 40 })
        runSteps([original], before, clock)
        const restored = new KvStateMachine({ historyRevisionsMax: 40 })
        const snapshot = original.snapshot()
        restored.restore(snapshot)
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(snapshot))).toBe(true)
        expect(restored.appliedIndex).toBe(original.appliedIndex)
        const [ro, rr] = runSteps([original, restored], after, clock)
        expect(rr).toEqual(ro)
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true)
        expect(restored.v2Get('/', { recursive: true })).toEqual(original.v2Get('/', { recursive: true }))
        expect(restored.expiredAt(clock.nowMs + 10_000)).toEqual(original.expiredAt(clock.nowMs + 10_000))
        expect(restored.members()).toEqual(original.members())
        const since = original.history.compactedRevision + 1
        const replay = (sm: KvStateMachine) =>
          sm
            .watch({ key: '/', recursive: true, includeHidden: true, stream: true, sinceRevision: since })
            .take()
            .map((e) => e.json())
        expect(replay(restored)).toEqual(replay(original))
      }),
      { numRuns: 100 },
    )
  })

  it('a snapshot carries deadlines, leases, members and the history window', async () => {
    const { store, sm } = newTestStore()
    await store.leaseGrant({ lease: 5, ttlMs: 9000 })
    await store.put({ key: '/l', value: 'leased', lease: 5 })
    store.apply({ op: 'v2.set', key: '/t', value: 'ttl', dir: false, ttlMs: 3000 })
    sm.apply({
      index: sm.appliedIndex + 1,
      term: 1,
      type: 'conf',
      data: new Uint8Array(0),
      change: { type: 'addVoter', nodeId: 3 },
    })
    const copy = new KvStateMachine()
    copy.restore(sm.snapshot())
    expect(copy.lease(5)).toEqual({ id: 5, ttlMs: 9000, deadlineMs: testEpochMs + 9000, keys: ['/l'] })
    expect(copy.v2Get('/t').node.expiresAtMs).toBe(testEpochMs + 3000)
    expect(copy.members()).toEqual([{ id: 3, name: '', peerUrls: [], clientUrls: [], isLearner: false }])
    expect(copy.history.all().map((e) => e.key)).toEqual(['/l', '/t'])
    expect(copy.revision).toBe(2)
  })

  it('a corrupt or truncated snapshot is refused and changes nothing', () => {
    const { store, sm } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false })
    const good = sm.snapshot()
    const target = new KvStateMachine()
    target.restore(good)
    const before = Buffer.from(target.snapshot())
    for (const bad of [good.subarray(0, good.length - 3), new Uint8Array([0xc1]), new Uint8Array(0)]) {
      expect(errorOf(() => target.restore(bad)).code).toBe('KV_SNAPSHOT_INVALID')
    }
    expect(Buffer.from(target.snapshot()).equals(before)).toBe(true)
  })

  it('random byte flips never crash restore: it succeeds or raises KV_SNAPSHOT_INVALID', () => {
    const { store, sm } = newTestStore()
    store.apply({ op: 'v2.set', key: '/a/b', value: 'v', dir: false, ttlMs: 100 })
    store.apply({ op: 'lease.grant', ttlMs: 100 })
    store.apply({ op: 'put', key: '/l', value: 'x', lease: 1 })
    const good = sm.snapshot()
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, xor) => {
          const bad = Uint8Array.from(good)
          bad[at] = (bad[at] as number) ^ xor
          try {
            new KvStateMachine().restore(bad)
          } catch (error) {
            expect(error).toMatchObject({ code: 'KV_SNAPSHOT_INVALID' })
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('capture, then encode later', () => {
  it('a capture encodes the state at capture time however far the machine has moved on', async () => {
    await fc.assert(
      fc.asyncProperty(steps(80), steps(80), async (before, after) => {
        const clock = { nowMs: testEpochMs }
        const sm = new KvStateMachine({ historyRevisionsMax: 40 })
        runSteps([sm], before, clock)
        const expected = Buffer.from(sm.snapshot())
        const appliedAtCapture = sm.appliedIndex
        const capture = sm.captureSnapshot()
        runSteps([sm], after, clock)
        expect(capture.appliedIndex).toBe(appliedAtCapture)
        expect(Buffer.from(await capture.encode()).equals(expected)).toBe(true)
      }),
      { numRuns: 100 },
    )
  })

  it('encodes in chunks of snapshotChunkRows and restores every node and event of a large state', async () => {
    const { store, sm } = newTestStore()
    const keys = snapshotChunkRows * 2 + 17
    const value = 'v'.repeat(200)
    for (let i = 0; i < keys; i++) await store.put({ key: `/big/k${i}`, value: `${value}${i}` })
    for (let i = 0; i < 10; i++) await store.put({ key: `/big/k${i}`, value: `changed${i}` })
    const data = await sm.captureSnapshot().encode()
    // Values still held by their key are stored once (the events that wrote them share them):
    // written twice they would take keys * value.length * 2 bytes on their own.
    expect(data.byteLength).toBeLessThan(keys * (value.length + 100))
    const copy = new KvStateMachine()
    copy.restore(data)
    expect(copy.v2Get('/big', { recursive: true })).toEqual(sm.v2Get('/big', { recursive: true }))
    expect(copy.history.all().map((e) => e.json())).toEqual(sm.history.all().map((e) => e.json()))
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(data))).toBe(true)
  })

  it('the streamed pieces (one reused buffer) equal the encoding, and values encoded meanwhile stay intact', async () => {
    const { store, sm } = newTestStore()
    for (let i = 0; i < snapshotChunkRows * 2 + 5; i++)
      await store.put({ key: `/s/k${i}`, value: `value ${i}` })
    const expected = Buffer.from(sm.snapshot())
    const copies: Buffer[] = []
    const meanwhile: { bytes: Uint8Array; value: unknown }[] = []
    for await (const piece of sm.captureSnapshot().pieces()) {
      copies.push(Buffer.from(piece))
      // Other encodings between two pieces (commands, transport frames) must never land in the
      // snapshot's buffer, nor be overwritten by its next piece.
      const value = { op: 'put', key: `/between/${copies.length}`, value: 'x'.repeat(copies.length * 10) }
      meanwhile.push({ bytes: packValue(value), value })
    }
    expect(Buffer.concat(copies).equals(expected)).toBe(true)
    for (const m of meanwhile) expect(unpackValue(m.bytes)).toEqual(m.value)
  })

  it('large values end a chunk by size, not row count: every piece stays near snapshotChunkBytes, and it restores', async () => {
    const { store, sm } = newTestStore({ historyRevisionsMax: 1000 })
    const big = 'b'.repeat(40 * 1024)
    for (let i = 0; i < 60; i++) await store.put({ key: `/large/k${i}`, value: `${big}${i}` })
    for (let i = 0; i < 60; i++) await store.put({ key: `/large/k${i}`, value: `${big}again${i}` })
    const pieces: number[] = []
    for await (const piece of sm.captureSnapshot().pieces()) pieces.push(piece.byteLength)
    // 60 nodes and 120 events (each with a 40 KiB prevNode or value): far more than one chunk each.
    expect(pieces.length).toBeGreaterThan(1 + 2 + 4)
    const rowMax = 2 * (big.length + 200)
    for (const bytes of pieces) expect(bytes).toBeLessThanOrEqual(snapshotChunkBytes + rowMax)
    const data = await sm.captureSnapshot().encode()
    const copy = new KvStateMachine({ historyRevisionsMax: 1000 })
    copy.restore(data)
    expect(copy.v2Get('/large', { recursive: true })).toEqual(sm.v2Get('/large', { recursive: true }))
    expect(copy.history.all().map((e) => e.json())).toEqual(sm.history.all().map((e) => e.json()))
  })

  it('a shared value that its key does not hold is refused', () => {
    const { store, sm } = newTestStore()
    store.apply({ op: 'v2.set', key: '/k', value: 'v', dir: false })
    const good = Buffer.from(sm.snapshot())
    // The node row ['/k', false, 'v', 1, 1, 1, ...]: move its modRevision so the event's shared
    // value (true) points at a node written at another revision.
    const nodeRevisionAt = good.lastIndexOf(Buffer.from([0xa2, 0x2f, 0x6b, 0xc2, 0xa1, 0x76, 0x01, 0x01]))
    expect(nodeRevisionAt).toBeGreaterThan(0)
    const moved = Uint8Array.from(good)
    moved[nodeRevisionAt + 7] = 0x02 // the node's modRevision 1 -> 2 (and so no longer the event's)
    expect(errorOf(() => new KvStateMachine().restore(moved)).message).toMatch(/shares the value/)
  })

  it('a format-1 snapshot (one map, values written out) still restores', () => {
    const format1 = packValue({
      format: 1,
      appliedIndex: 3,
      revision: 2,
      nextLeaseId: 1,
      nodes: [
        ['/a', true, '', 1, 1, 1, null, 0],
        ['/a/b', false, 'v', 1, 2, 2, null, 0],
      ],
      leases: [],
      members: [[7, 'm', ['http://127.0.0.1:1'], [], false]],
      history: {
        compactedRevision: 0,
        events: [
          [1, 'set', testEpochMs, false, ['/a/b', false, 'u', 1, 1, null], null],
          [2, 'set', testEpochMs, false, ['/a/b', false, 'v', 1, 2, null], ['/a/b', false, 'u', 1, 1, null]],
        ],
      },
    })
    const state = decodeSnapshot(format1)
    expect(state.events.map((e) => [e.revision, e.node.value, e.prevNode?.value])).toEqual([
      [1, 'u', undefined],
      [2, 'v', 'u'],
    ])
    const sm = new KvStateMachine()
    sm.restore(format1)
    expect(sm.v2Get('/a/b').node.value).toBe('v')
    expect(sm.members()).toEqual([
      { id: 7, name: 'm', peerUrls: ['http://127.0.0.1:1'], clientUrls: [], isLearner: false },
    ])
  })
})
