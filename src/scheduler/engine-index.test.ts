import { describe, expect, it } from 'vitest'
import { machineKey, nodeKey, nodeRecord } from '../catalog/records.ts'
import type { KeyValue } from '../kv/mvcc.ts'
import { PlacementIndex } from './engine-index.ts'
import { SchedulerModel } from './engine-model.ts'
import { type Assignment, assignKey, unitVersion } from './records.ts'

function kv(key: string, value: object): KeyValue {
  return { key, value: JSON.stringify(value), createRevision: 1, modRevision: 1, version: 1, lease: 0 }
}

function machines(names: string[]): KeyValue[] {
  return names.flatMap((n) => [
    kv(nodeKey(n), nodeRecord({ Node: n, Address: '127.0.0.1', Meta: { zone: n } })),
    kv(machineKey(n), { Node: n, Lease: 1, SinceMs: 0 }),
  ])
}

function assignment(unit: string, machine: string, text: string): KeyValue {
  const { hash } = unitVersion(text)
  const a: Assignment = { unit, machine, desiredState: 'launched', text, hash, engine: 1, placedMs: 0 }
  return kv(assignKey(machine, unit), a)
}

const global = '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\n'
const plain = '[Service]\nExecStart=/bin/true\n'

describe('PlacementIndex', () => {
  it('rebuilds from a model where a Global unit runs on machines the sync has not added yet', () => {
    const model = new SchedulerModel()
    // The order the catalog lists machines in is not the order units name them.
    model.catalogSink.load(1, machines(['m3', 'm1', 'm2']))
    model.schedulerSink.load(1, [
      assignment('g.service', 'm1', global),
      assignment('g.service', 'm2', global),
      assignment('g.service', 'm3', global),
      assignment('a.service', 'm2', plain),
    ])
    const index = new PlacementIndex()
    index.sync(model, model.takeChanges())
    expect(index.placement.load('m1')).toBe(1)
    expect(index.placement.load('m2')).toBe(2)
    expect(index.placement.load('m3')).toBe(1)
    expect(index.placement.machineOf('a.service')).toBe('m2')
  })

  it('drops a dead machine and counts its units again when it returns', () => {
    const model = new SchedulerModel()
    model.catalogSink.load(1, machines(['m1', 'm2']))
    model.schedulerSink.load(1, [assignment('a.service', 'm1', plain)])
    const index = new PlacementIndex()
    index.sync(model, model.takeChanges())
    model.machines.delete('m1')
    index.sync(model, { units: new Set(), machines: new Set(['m1']), reloaded: false })
    expect(index.placement.hasMachine('m1')).toBe(false)
    expect(index.placement.machineOf('a.service')).toBeUndefined()
    model.machines.set('m1', { Node: 'm1', Lease: 2, SinceMs: 0 })
    index.sync(model, { units: new Set(), machines: new Set(['m1']), reloaded: false })
    expect(index.placement.machineOf('a.service')).toBe('m1')
  })

  it('after invalidate(), the next sync rebuilds whatever the change sets say', () => {
    const model = new SchedulerModel()
    model.catalogSink.load(1, machines(['m1']))
    model.schedulerSink.load(1, [assignment('a.service', 'm1', plain)])
    const index = new PlacementIndex()
    index.sync(model, model.takeChanges())
    index.reset()
    index.invalidate()
    index.sync(model, { units: new Set(), machines: new Set(), reloaded: false })
    expect(index.placement.machineOf('a.service')).toBe('m1')
  })
})
