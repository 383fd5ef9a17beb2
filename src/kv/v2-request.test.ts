/**
 * Proves etcd 2.3's /v2/keys parameter rules (parseKeyRequest) and method → operation mapping
 * (applyRequest): error codes 201, 202, 203, 209, 211, 212; Go booleans; nullable prevExist and
 * ttl (`ttl=` clears); prevIndex=0 as "not given"; PUT/POST/DELETE to set, create, update,
 * compareAndSwap, delete, compareAndDelete — and end to end through the store.
 */
import { describe, expect, it } from 'vitest'
import { errorOf, newTestStore } from './test-support.ts'
import type { V2Result } from './v2-node.ts'
import { parseV2KeyRequest, planV2Write, type V2Form, type V2Method } from './v2-request.ts'

const stamp = { id: 'r', now: 1000 }
const plan = (method: V2Method, form: V2Form) => planV2Write(parseV2KeyRequest(method, '/k', form, 0), stamp)

describe('parseV2KeyRequest', () => {
  it.each([
    {
      name: 'bad prevIndex',
      method: 'PUT',
      form: { prevIndex: 'x' },
      code: 203,
      cause: 'invalid value for "prevIndex"',
    },
    {
      name: 'negative waitIndex',
      method: 'GET',
      form: { waitIndex: '-1' },
      code: 203,
      cause: 'invalid value for "waitIndex"',
    },
    {
      name: 'bad recursive',
      method: 'GET',
      form: { recursive: 'yes' },
      code: 209,
      cause: 'invalid value for "recursive"',
    },
    { name: 'empty dir', method: 'PUT', form: { dir: '' }, code: 209, cause: 'invalid value for "dir"' },
    {
      name: 'wait on PUT',
      method: 'PUT',
      form: { wait: 'true' },
      code: 209,
      cause: '"wait" can only be used with GET requests',
    },
    {
      name: 'empty prevValue',
      method: 'PUT',
      form: { prevValue: '' },
      code: 201,
      cause: '"prevValue" cannot be empty',
    },
    { name: 'bad ttl', method: 'PUT', form: { ttl: '1.5' }, code: 202, cause: 'invalid value for "ttl"' },
    {
      name: 'bad prevExist',
      method: 'PUT',
      form: { prevExist: 'maybe' },
      code: 209,
      cause: 'invalid value for prevExist',
    },
    {
      name: 'refresh with a value',
      method: 'PUT',
      form: { refresh: 'true', ttl: '5', value: 'v' },
      code: 211,
      cause: 'A value was provided on a refresh',
    },
    {
      name: 'refresh without ttl',
      method: 'PUT',
      form: { refresh: 'true' },
      code: 212,
      cause: 'No TTL value set',
    },
    {
      name: 'refresh with ttl=',
      method: 'PUT',
      form: { refresh: 'true', ttl: '' },
      code: 212,
      cause: 'No TTL value set',
    },
  ] as const)('$name → $code', ({ method, form, code, cause }) => {
    const error = errorOf(() => parseV2KeyRequest(method, '/k', form, 9))
    expect([error.errorCode, error.etcdCause, error.index]).toEqual([code, cause, 9])
  })

  it('reads Go booleans, the first of repeated values, and nullable fields', () => {
    const req = parseV2KeyRequest(
      'GET',
      '/k',
      { recursive: ['T', 'false'], sorted: '1', wait: 'True', waitIndex: '7' },
      0,
    )
    expect(req).toMatchObject({
      recursive: true,
      sorted: true,
      wait: true,
      waitIndex: 7,
      prevExist: undefined,
      ttlSec: undefined,
    })
    expect(parseV2KeyRequest('PUT', '/k', { ttl: '' }, 0).ttlSec).toBeUndefined()
    expect(parseV2KeyRequest('PUT', '/k', { prevExist: 'F' }, 0).prevExist).toBe(false)
  })
})

describe('planV2Write (etcd applyRequest)', () => {
  it.each([
    { name: 'PUT → set', method: 'PUT', form: { value: 'v' }, op: 'v2.set' },
    { name: 'PUT dir → set of a directory', method: 'PUT', form: { dir: 'true' }, op: 'v2.set' },
    {
      name: 'PUT prevExist=false → create',
      method: 'PUT',
      form: { value: 'v', prevExist: 'false', prevValue: 'ignored' },
      op: 'v2.create',
    },
    {
      name: 'PUT prevExist=true → update',
      method: 'PUT',
      form: { value: 'v', prevExist: 'true' },
      op: 'v2.update',
    },
    {
      name: 'PUT prevExist=true prevIndex=0 → update',
      method: 'PUT',
      form: { prevExist: 'true', prevIndex: '0' },
      op: 'v2.update',
    },
    {
      name: 'PUT prevExist=true prevValue → CAS',
      method: 'PUT',
      form: { prevExist: 'true', prevValue: 'a' },
      op: 'v2.cas',
    },
    { name: 'PUT prevValue → CAS', method: 'PUT', form: { value: 'b', prevValue: 'a' }, op: 'v2.cas' },
    { name: 'PUT prevIndex → CAS', method: 'PUT', form: { value: 'b', prevIndex: '4' }, op: 'v2.cas' },
    { name: 'PUT prevIndex=0 → set', method: 'PUT', form: { value: 'b', prevIndex: '0' }, op: 'v2.set' },
    { name: 'POST → in-order create', method: 'POST', form: { value: 'job' }, op: 'v2.create' },
    { name: 'DELETE → delete', method: 'DELETE', form: { recursive: 'true' }, op: 'v2.delete' },
    { name: 'DELETE prevValue → CAD', method: 'DELETE', form: { prevValue: 'a' }, op: 'v2.cad' },
    { name: 'DELETE prevIndex → CAD', method: 'DELETE', form: { prevIndex: '2' }, op: 'v2.cad' },
  ] as const)('$name', ({ method, form, op }) => {
    expect(plan(method, form).op).toBe(op)
  })

  it('converts the TTL to ms and keeps refresh; POST is unique', () => {
    expect(plan('PUT', { ttl: '5', refresh: 'true', prevExist: 'true' })).toEqual({
      op: 'v2.update',
      ...stamp,
      key: '/k',
      value: '',
      ttlMs: 5000,
      refresh: true,
    })
    expect(plan('POST', { value: 'j' })).toMatchObject({ unique: true, dir: false })
  })

  it('drives the store end to end: create, CAS, refresh, CAD', () => {
    const { store, sm } = newTestStore()
    const write = (method: V2Method, form: V2Form) => {
      const cmd = planV2Write(parseV2KeyRequest(method, '/lock', form, sm.revision), { id: 'x', now: 0 })
      const { id: _id, now: _now, ...unstamped } = cmd
      return store.apply(unstamped as never) as V2Result
    }
    expect(write('PUT', { value: 'me', prevExist: 'false', ttl: '10' }).action).toBe('create')
    expect(write('PUT', { value: 'me2', prevValue: 'me', ttl: '10' }).action).toBe('compareAndSwap')
    expect(write('PUT', { refresh: 'true', ttl: '30', prevExist: 'true' })).toMatchObject({
      refresh: true,
      node: { value: 'me2' },
    })
    expect(errorOf(() => write('DELETE', { prevValue: 'me' })).errorCode).toBe(101)
    expect(write('DELETE', { prevIndex: '3' }).action).toBe('compareAndDelete')
  })
})
