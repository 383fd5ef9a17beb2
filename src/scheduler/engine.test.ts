import { afterEach, describe, expect, it } from 'vitest'
import { machineKey, nodeKey, nodeRecord } from '../catalog/records.ts'
import { LocalKvStore } from '../kv/local-kv-store.ts'
import { prefixRange } from '../kv/prefix-feed.ts'
import { SchedulerEngine } from './engine.ts'
import {
  type Assignment,
  assignPrefix,
  decodeAssignment,
  decodeEngine,
  decodeRollout,
  decodeUnit,
  decodeUnplaced,
  engineKey,
  rolloutKey,
  stateKey,
  type UnitRecord,
  type UnitStateRecord,
  unitKey,
  unitVersion,
  unplacedKey,
} from './records.ts'

const engines: SchedulerEngine[] = []
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()))
})

function cluster() {
  const store = new LocalKvStore()
  const leases = new Map<string, number>()
  return {
    store,
    async machine(name: string, meta: Record<string, string> = {}) {
      await store.put({
        key: nodeKey(name),
        value: JSON.stringify(nodeRecord({ Node: name, Address: '127.0.0.1', Meta: meta, Agent: true })),
      })
      const lease = await store.leaseGrant({ ttlMs: 60_000 })
      leases.set(name, lease.id)
      await store.put({
        key: machineKey(name),
        value: JSON.stringify({ Node: name, Lease: lease.id, SinceMs: Date.now() }),
        lease: lease.id,
      })
    },
    /** The machine's lease ends (it died): its machine key goes, as on a real expiry. */
    async kill(name: string) {
      await store.leaseRevoke(leases.get(name) as number)
    },
    engine(id: string) {
      const engine = new SchedulerEngine({ store, id, leaseTtlMs: 600 })
      engine.start()
      engines.push(engine)
      return engine
    },
    async submit(name: string, text: string, desiredState: UnitRecord['desiredState'] = 'inactive') {
      const previous = await store.range({ key: unitKey(name) })
      const before = previous.kvs[0] === undefined ? undefined : decodeUnit(previous.kvs[0].value)
      const record: UnitRecord = { name, desiredState, version: unitVersion(text), submittedMs: Date.now() }
      if (before?.version !== undefined && before.version.hash !== record.version?.hash)
        record.previous = before.version
      await store.put({ key: unitKey(name), value: JSON.stringify(record) })
    },
    async instance(name: string, template: string, desiredState: UnitRecord['desiredState'] = 'launched') {
      const record: UnitRecord = { name, desiredState, template, submittedMs: Date.now() }
      await store.put({ key: unitKey(name), value: JSON.stringify(record) })
    },
    async assignments(): Promise<Assignment[]> {
      const r = await store.range(prefixRange(assignPrefix))
      return r.kvs.map((kv) => decodeAssignment(kv.value)).filter((a): a is Assignment => a !== undefined)
    },
    /** Reports a unit's state as its machine's runner would. */
    async report(a: Assignment, state: Partial<UnitStateRecord>) {
      const record: UnitStateRecord = {
        unit: a.unit,
        machine: a.machine,
        hash: a.hash,
        loadState: 'loaded',
        activeState: 'active',
        subState: 'running',
        restarts: 0,
        sinceMs: Date.now(),
        ...state,
      }
      await store.put({ key: stateKey(a.machine, a.unit), value: JSON.stringify(record) })
    },
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const web = (extra = '') => `[Service]\nExecStart=/bin/sleep 1000\n${extra}`

describe('SchedulerEngine', () => {
  it("spreads 9 instances over 3 zones 3/3/3, one per machine, and moves a dead machine's units", async () => {
    const c = cluster()
    for (const zone of ['a', 'b', 'c'])
      for (const n of [1, 2, 3]) await c.machine(`m-${zone}${n}`, { region: 'r1', zone })
    await c.submit('web@.service', web('[X-Cairn]\nMaxSkew=zone:1:hard\n'))
    for (let i = 1; i <= 9; i++) await c.instance(`web@${i}.service`, 'web@.service')
    c.engine('s1')
    const placed = await until('9 placements', async () => {
      const all = await c.assignments()
      return all.length === 9 && all
    })
    const perZone = new Map<string, number>()
    for (const a of placed)
      perZone.set(a.machine[2] as string, (perZone.get(a.machine[2] as string) ?? 0) + 1)
    expect([...perZone.values()]).toEqual([3, 3, 3])
    expect(new Set(placed.map((a) => a.machine)).size).toBe(9)

    const victim = placed[0] as Assignment
    await c.kill(victim.machine)
    const moved = await until("the dead machine's unit placed elsewhere", async () => {
      const all = await c.assignments()
      const mine = all.filter((a) => a.unit === victim.unit)
      return all.length === 9 && mine.length === 1 && mine[0]?.machine !== victim.machine && all
    })
    expect(moved.some((a) => a.machine === victim.machine)).toBe(false)
    // Zone of the dead machine still has 2 live machines: skew keeps zones at 3/3/3.
    const zones = new Map<string, number>()
    for (const a of moved) zones.set(a.machine[2] as string, (zones.get(a.machine[2] as string) ?? 0) + 1)
    expect([...zones.values()].sort()).toEqual([3, 3, 3])
  })

  it('says why a unit cannot be placed, and places it when a machine fits', async () => {
    const c = cluster()
    await c.machine('m1', { disk: 'hdd' })
    await c.submit('db.service', web('[X-Fleet]\nMachineMetadata=disk=ssd\n'), 'launched')
    c.engine('s1')
    const unplaced = await until('an unplaced record', async () => {
      const r = await c.store.range({ key: unplacedKey('db.service') })
      return r.kvs[0] !== undefined && decodeUnplaced(r.kvs[0].value)
    })
    expect(unplaced.reason).toMatch(/MachineMetadata/)
    await c.machine('m2', { disk: 'ssd' })
    const [a] = await until('db placed on m2', async () => {
      const all = await c.assignments()
      return all.length === 1 && all
    })
    expect(a?.machine).toBe('m2')
    await until('the unplaced record deleted', async () => {
      const r = await c.store.range({ key: unplacedKey('db.service') })
      return r.kvs.length === 0
    })
  })

  it('runs a Global unit on every matching machine, new machines included; destroy removes it', async () => {
    const c = cluster()
    await c.machine('m1', { role: 'web' })
    await c.machine('m2', { role: 'db' })
    await c.submit('agent.service', web('[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n'), 'launched')
    c.engine('s1')
    await until('on m1 only', async () => {
      const all = await c.assignments()
      return all.length === 1 && all[0]?.machine === 'm1'
    })
    await c.machine('m3', { role: 'web' })
    await until('on m1 and m3', async () => {
      const all = await c.assignments()
      return (
        all
          .map((a) => a.machine)
          .sort()
          .join() === 'm1,m3'
      )
    })
    await c.store.delete({ key: unitKey('agent.service') })
    await until('no assignment left', async () => (await c.assignments()).length === 0)
  })

  it('keeps a MachineOf unit with its target when the target moves', async () => {
    const c = cluster()
    await c.machine('m1')
    await c.machine('m2')
    await c.submit('db.service', web('[X-Fleet]\nMachineID=m1\n'), 'launched')
    await c.submit('backup.service', web('[X-Fleet]\nMachineOf=db.service\n'), 'launched')
    c.engine('s1')
    await until('both on m1', async () => {
      const all = await c.assignments()
      return all.length === 2 && all.every((a) => a.machine === 'm1')
    })
    // db's new version must run on m2: it moves, and backup follows it.
    await c.submit('db.service', web('[X-Fleet]\nMachineID=m2\n'), 'launched')
    await until('both on m2', async () => {
      const all = await c.assignments()
      return all.length === 2 && all.every((a) => a.machine === 'm2')
    })
  })

  it('fences a deposed engine: the successor takes over and places alone', async () => {
    const c = cluster()
    await c.machine('m1')
    const first = c.engine('s1')
    await until('s1 elected', async () => first.status().leading)
    const second = c.engine('s2')
    const held = await c.store.range({ key: engineKey })
    expect(decodeEngine(held.kvs[0]?.value ?? '')?.id).toBe('s1')
    // s1's lease ends behind its back (as when it is cut off): s2 is elected.
    await c.store.leaseRevoke(held.kvs[0]?.lease as number)
    await until('s2 elected', async () => second.status().leading)
    await until('s1 stepped down', async () => !first.status().leading)
    await c.submit('a.service', web(), 'launched')
    const [a] = await until('a placed', async () => {
      const all = await c.assignments()
      return all.length === 1 && all
    })
    const now = await c.store.range({ key: engineKey })
    expect(a?.engine).toBe(now.kvs[0]?.createRevision)
  })

  it('an engine whose fence fails (its key deleted by hand) resigns, is elected again and places', async () => {
    const c = cluster()
    await c.machine('m1')
    const engine = c.engine('s1')
    await until('elected', async () => engine.status().leading)
    const first = engine.status().fence
    await c.store.delete({ key: engineKey })
    await c.submit('a.service', web(), 'launched')
    const [a] = await until('a placed by the re-elected engine', async () => {
      const all = await c.assignments()
      return all.length === 1 && all
    })
    const now = await c.store.range({ key: engineKey })
    expect(now.kvs[0]?.createRevision).not.toBe(first)
    expect(a?.engine).toBe(now.kvs[0]?.createRevision)
    expect(engine.status()).toMatchObject({ leading: true, fence: now.kvs[0]?.createRevision })
  })

  it('rolls a template to a new version one instance at a time, and back when the new one fails', async () => {
    const c = cluster()
    for (const n of [1, 2, 3]) await c.machine(`m${n}`)
    await c.submit('api@.service', web())
    for (const i of [1, 2, 3]) await c.instance(`api@${i}.service`, 'api@.service')
    c.engine('s1')
    const v1 = await until('3 placed', async () => {
      const all = await c.assignments()
      return all.length === 3 && all
    })
    for (const a of v1) await c.report(a, {})
    // v2: the first instance is updated; the others wait for it to be healthy.
    await c.submit('api@.service', web('Environment=V=2\n'))
    const v2hash = unitVersion(web('Environment=V=2\n')).hash
    const first = await until('one instance on v2', async () => {
      const all = await c.assignments()
      const updated = all.filter((a) => a.hash === v2hash)
      return updated.length === 1 && updated[0]
    })
    expect(first.unit).toBe('api@1.service')
    await c.report(first, {})
    const second = await until('a second instance on v2', async () => {
      const updated = (await c.assignments()).filter((a) => a.hash === v2hash)
      return updated.length === 2 && updated.find((a) => a.unit !== first.unit)
    })
    await c.report(second, {})
    const third = await until('all on v2', async () => {
      const updated = (await c.assignments()).filter((a) => a.hash === v2hash)
      return updated.length === 3 && updated.find((a) => a.unit === 'api@3.service')
    })
    await c.report(third, {})
    await until('rollout done', async () => {
      const r = await c.store.range({ key: rolloutKey('api@.service') })
      return decodeRollout(r.kvs[0]?.value ?? '')?.state === 'done'
    })

    // v3 fails on its first instance: the template goes back to v2 and so does the instance.
    await c.submit('api@.service', web('Environment=V=3\n'))
    const v3hash = unitVersion(web('Environment=V=3\n')).hash
    const bad = await until('one instance on v3', async () => {
      const updated = (await c.assignments()).filter((a) => a.hash === v3hash)
      return updated.length === 1 && updated[0]
    })
    await c.report(bad, { activeState: 'failed', subState: 'failed', message: 'exited with 1' })
    const rollout = await until('rolled back', async () => {
      const r = await c.store.range({ key: rolloutKey('api@.service') })
      const record = decodeRollout(r.kvs[0]?.value ?? '')
      return record?.state === 'rolled-back' && record
    })
    expect(rollout.reason).toMatch(/api@1.service failed/)
    await until('every instance back on v2', async () => {
      const all = await c.assignments()
      return all.length === 3 && all.every((a) => a.hash === v2hash)
    })
    const template = await c.store.range({ key: unitKey('api@.service') })
    expect(decodeUnit(template.kvs[0]?.value ?? '')?.version?.hash).toBe(v2hash)
  })

  it('unloads a unit set inactive and loads it again', async () => {
    const c = cluster()
    await c.machine('m1')
    await c.submit('a.service', web(), 'loaded')
    c.engine('s1')
    await until('loaded', async () => (await c.assignments())[0]?.desiredState === 'loaded')
    await c.submit('a.service', web(), 'launched')
    await until('launched', async () => (await c.assignments())[0]?.desiredState === 'launched')
    await c.submit('a.service', web(), 'inactive')
    await until('unassigned', async () => (await c.assignments()).length === 0)
  })
})
