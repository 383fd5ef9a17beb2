/**
 * Proves MemoryCatalogView's contract: the revision moves by exactly one per real change and not
 * at all for a no-op; names and tags compare case-insensitively; an instance moved to another
 * service leaves the old one; bad addresses and ports are refused; returned data is frozen.
 */
import { describe, expect, it } from 'vitest'
import { MemoryCatalogView, type ServiceInstance } from './view.ts'

const web1: ServiceInstance = {
  id: 'web-1',
  service: 'web',
  node: 'n1',
  address: '10.0.0.1',
  port: 80,
  tags: ['Primary'],
  status: 'passing',
}

describe('MemoryCatalogView', () => {
  it('bumps the revision once per change and never for a no-op', () => {
    const view = new MemoryCatalogView()
    expect(view.revision).toBe(0)
    view.setInstance(web1)
    expect(view.revision).toBe(1)
    view.setInstance({ ...web1, tags: ['Primary'] })
    expect(view.revision).toBe(1)
    view.setInstance({ ...web1, status: 'critical' })
    expect(view.revision).toBe(2)
    expect(view.removeInstance('web-1')).toBe(true)
    expect(view.removeInstance('web-1')).toBe(false)
    expect(view.revision).toBe(3)
    view.setNode({ name: 'n1', address: '10.0.0.1', meta: { zone: 'a' } })
    view.setNode({ name: 'n1', address: '10.0.0.1', meta: { zone: 'a' } })
    expect(view.revision).toBe(4)
    view.setNode({ name: 'n1', address: '10.0.0.1', meta: { zone: 'b' } })
    expect(view.removeNode('N1')).toBe(true)
    expect(view.removeNode('n1')).toBe(false)
    expect(view.revision).toBe(6)
  })

  it('looks up services, tags and nodes case-insensitively', () => {
    const view = new MemoryCatalogView()
    view.setInstance(web1)
    view.setInstance({ ...web1, id: 'web-2', address: '::1', tags: [] })
    view.setNode({ name: 'N1', address: '10.0.0.1', meta: {} })
    expect(view.serviceInstances('WEB').map((i) => i.id)).toEqual(['web-1', 'web-2'])
    expect(view.serviceInstances('web', 'primary').map((i) => i.id)).toEqual(['web-1'])
    expect(view.serviceInstances('web', 'other')).toEqual([])
    expect(view.serviceInstances('db')).toEqual([])
    expect(view.hasService('Web')).toBe(true)
    expect(view.node('n1')?.name).toBe('N1')
  })

  it('moves an instance whose service changed, and forgets a service with no instances', () => {
    const view = new MemoryCatalogView()
    view.setInstance(web1)
    view.setInstance({ ...web1, service: 'api' })
    expect(view.hasService('web')).toBe(false)
    expect(view.serviceInstances('api').map((i) => i.id)).toEqual(['web-1'])
    expect(view.revision).toBe(2)
  })

  it('refuses addresses that are not IP literals and ports out of range, changing nothing', () => {
    const view = new MemoryCatalogView()
    expect(() => view.setInstance({ ...web1, address: 'web.example' })).toThrow(TypeError)
    expect(() => view.setInstance({ ...web1, port: 0 })).toThrow(RangeError)
    expect(() => view.setNode({ name: 'n', address: '300.1.1.1', meta: {} })).toThrow(TypeError)
    expect(view.revision).toBe(0)
    expect(view.hasService('web')).toBe(false)
  })

  it('hands out frozen records that cannot change the view', () => {
    const view = new MemoryCatalogView()
    const tags = ['a']
    view.setInstance({ ...web1, tags })
    tags.push('b')
    const [got] = view.serviceInstances('web')
    expect(got?.tags).toEqual(['a'])
    expect(Object.isFrozen(got)).toBe(true)
    expect(Object.isFrozen(got?.tags)).toBe(true)
  })
})
