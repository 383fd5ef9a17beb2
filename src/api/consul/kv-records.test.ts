/**
 * Proves the Consul KV layout and planner rules of kv-records.ts: escaping is a bijection onto
 * clean single segments that keeps prefixes (so a prefix read is one store range), entries render
 * in Consul's shape with uint64 flags digit for digit, keys sort by UTF-8 bytes, and KvTxnPlan
 * decides Consul's conditions (cas, lock holder, check-*) from its views and refuses to write one
 * key twice.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isCleanKey } from '../../kv/key-path.ts'
import {
  compareKeys,
  consulKeyOf,
  decodeValueRecord,
  encodeValueRecord,
  escapeKey,
  type KeyView,
  KvTxnPlan,
  keyProblem,
  keyViewOf,
  kvKeyBytesMax,
  kvPrefixRange,
  kvStoreKey,
  type LockOwner,
  lockStoreKey,
  parseFlags,
  renderEntry,
  unescapeKey,
} from './kv-records.ts'

const keyChars = fc.constantFrom('a', 'b', '/', '%', '2', 'F', '.', '_', 'é', '😀', ' ')
const consulKey = fc.array(keyChars, { maxLength: 12 }).map((cs) => cs.join(''))

describe('key layout', () => {
  it('escapes any key to one clean segment and back', () => {
    fc.assert(
      fc.property(fc.oneof(consulKey, fc.string({ unit: 'grapheme', maxLength: 20 })), (key) => {
        const stored = kvStoreKey(key)
        expect(isCleanKey(stored)).toBe(true)
        expect(stored.split('/').length).toBe(5) // '', _cairn, consul, kv, k<esc>
        expect(unescapeKey(escapeKey(key))).toBe(key)
        expect(consulKeyOf(stored)).toBe(key)
        expect(consulKeyOf(lockStoreKey(key))).toBe(key)
      }),
    )
  })

  it('keeps prefixes: K starts with P exactly when K is in the prefix range of P', () => {
    fc.assert(
      fc.property(consulKey, consulKey, (key, prefix) => {
        const { key: start, rangeEnd } = kvPrefixRange(prefix)
        const stored = kvStoreKey(key)
        expect(stored >= start && stored < rangeEnd).toBe(key.startsWith(prefix))
      }),
    )
  })

  it('refuses escaped text it cannot have produced', () => {
    for (const bad of ['%', '%2', '%41', 'a/b', '%2f']) expect(unescapeKey(bad)).toBeUndefined()
    expect(consulKeyOf('/_cairn/catalog/nodes/x')).toBeUndefined()
  })

  it('sorts keys by their UTF-8 bytes, as Go compares strings', () => {
    // U+FF5E is below U+1F600 in UTF-8 but above its surrogates in UTF-16.
    const keys = ['😀', '～', 'a/b', 'a', 'a%', '']
    expect([...keys].sort(compareKeys)).toEqual(['', 'a', 'a%', 'a/b', '～', '😀'])
  })

  it('limits key length in UTF-8 bytes', () => {
    expect(keyProblem('x'.repeat(kvKeyBytesMax))).toBeUndefined()
    expect(keyProblem('é'.repeat(kvKeyBytesMax / 2 + 1))).toMatch(/longer than 2048/)
  })
})

describe('records', () => {
  it('parses flags as uint64 text', () => {
    expect(parseFlags('0')).toBe('0')
    expect(parseFlags('007')).toBe('7')
    expect(parseFlags('18446744073709551615')).toBe('18446744073709551615')
    for (const bad of ['18446744073709551616', '-1', '1.5', '', 'x', '1e3', '0x10'])
      expect(parseFlags(bad)).toBeUndefined()
  })

  it('round-trips value records and leaves malformed ones out', () => {
    const record = { v: 'aGk=', f: '18446744073709551615', l: 3 }
    expect(decodeValueRecord(encodeValueRecord(record))).toEqual(record)
    for (const bad of [
      '',
      'null',
      '[]',
      '{"v":1,"f":"0","l":0}',
      '{"v":"","f":"01","l":0}',
      '{"v":"","f":"0","l":-1}',
    ])
      expect(decodeValueRecord(bad)).toBeUndefined()
  })

  it("renders Consul's DirEntry with exact flags, null for an empty value, Session only when locked", () => {
    const entry = {
      key: 'a/b',
      record: { v: '', f: '18446744073709551615', l: 2 },
      createIndex: 4,
      modifyIndex: 9,
      session: undefined,
    }
    expect(renderEntry(entry, true)).toBe(
      '{"LockIndex":2,"Key":"a/b","Flags":18446744073709551615,"Value":null,"CreateIndex":4,"ModifyIndex":9}',
    )
    const locked = { ...entry, record: { ...entry.record, v: 'aGk=' }, session: 's1' }
    expect(JSON.parse(renderEntry(locked, true))).toMatchObject({ Value: 'aGk=', Session: 's1' })
    expect(JSON.parse(renderEntry(locked, false)).Value).toBeNull()
  })
})

function view(key: string, fields: Partial<KeyView> = {}): KeyView {
  return { ...keyViewOf(key, undefined, undefined), ...fields }
}

const owner: LockOwner = {
  id: 's1',
  lease: 7,
  behavior: 'delete',
  storeKey: '/_cairn/consul/sessions/s1',
  createRevision: 3,
}

describe('KvTxnPlan', () => {
  it('cas 0 creates only an absent key; cas N needs ModifyIndex N', () => {
    const absent = new KvTxnPlan([view('k')])
    expect(absent.cas('k', '', '0', 0n).ok).toBe(true)
    const present = () => new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 0 }, modRevision: 5 })])
    expect(present().cas('k', '', '0', 0n).ok).toBe(false)
    expect(present().cas('k', '', '0', 4n).ok).toBe(false)
    const plan = present()
    expect(plan.cas('k', '', '0', 5n).ok).toBe(true)
    expect(plan.request().compare).toEqual([
      { key: kvStoreKey('k'), target: 'modRevision', result: 'equal', value: 5 },
    ])
  })

  it('lock: LockIndex +1 when taken, kept on re-acquire, refused when held by another', () => {
    const free = new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 4 }, modRevision: 5 })])
    const step = free.lock('k', 'dg==', '0', 's1', owner)
    expect(step.ok && step.result.kind === 'entry' && step.result.view.record?.l).toBe(5)
    const ops = free.request().success
    expect(ops).toContainEqual({ type: 'put', key: lockStoreKey('k'), value: 's1', lease: 7 })
    // Behavior "delete": the value key goes with the session's lease.
    expect(ops).toContainEqual(expect.objectContaining({ type: 'put', key: kvStoreKey('k'), lease: 7 }))
    const held = new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 4 }, holder: 's1', lease: 7 })])
    const again = held.lock('k', '', '0', 's1', owner)
    expect(again.ok && again.result.kind === 'entry' && again.result.view.record?.l).toBe(4)
    expect(held.request().success.filter((op) => op.key === lockStoreKey('k'))).toEqual([])
    const other = new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 4 }, holder: 's2' })])
    expect(other.lock('k', '', '0', 's1', owner)).toEqual({
      ok: false,
      what: 'failed to lock key "k", lock is already held',
    })
    expect(new KvTxnPlan([view('k')]).lock('k', '', '0', 'gone', undefined).ok).toBe(false)
  })

  it('set on a locked key keeps the lease and the holder; unlock needs the holder', () => {
    const locked = () =>
      new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 1 }, holder: 's1', lease: 7 })])
    const plan = locked()
    const step = plan.set('k', 'eA==', '3')
    expect(step.ok && step.result.kind === 'entry' && step.result.view.holder).toBe('s1')
    expect(plan.request().success).toEqual([
      { type: 'put', key: kvStoreKey('k'), value: encodeValueRecord({ v: 'eA==', f: '3', l: 1 }), lease: 7 },
    ])
    expect(locked().unlock('k', '', '0', 's2').ok).toBe(false)
    const unlock = locked()
    expect(unlock.unlock('k', '', '0', 's1').ok).toBe(true)
    expect(unlock.request().success).toContainEqual({ type: 'delete', key: lockStoreKey('k') })
  })

  it('each op sees the ones before it', () => {
    const plan = new KvTxnPlan([view('a'), view('b', { record: { v: '', f: '0', l: 0 }, modRevision: 2 })])
    expect(plan.checkNotExists('a').ok).toBe(true)
    expect(plan.set('a', '', '0').ok).toBe(true)
    expect(plan.checkNotExists('a').ok).toBe(false)
    expect(plan.deleteTree('b').ok).toBe(true)
    expect(plan.checkNotExists('b').ok).toBe(true)
    expect(plan.deleteCas('b', 2n).ok).toBe(true) // absent by now: Consul's delete-cas is true
  })

  it('refuses to write one key twice or inside a delete-tree', () => {
    const twice = new KvTxnPlan([view('a')])
    expect(twice.set('a', '', '0').ok).toBe(true)
    const second = twice.set('a', '', '0')
    expect(second.ok).toBe(false)
    const tree = new KvTxnPlan([view('a/b')])
    expect(tree.deleteTree('a/').ok).toBe(true)
    expect(tree.set('a/b', '', '0').ok).toBe(false)
    const reverse = new KvTxnPlan([view('a/b')])
    expect(reverse.set('a/b', '', '0').ok).toBe(true)
    expect(reverse.deleteTree('a').ok).toBe(false)
  })

  it('check-session guards the lock key itself (a session end changes it alone)', () => {
    const plan = new KvTxnPlan([view('k', { record: { v: '', f: '0', l: 1 }, holder: 's1', modRevision: 3 })])
    expect(plan.checkSession('k', 's1').ok).toBe(true)
    expect(plan.request().compare).toContainEqual({
      key: lockStoreKey('k'),
      target: 'value',
      result: 'equal',
      value: 's1',
    })
    expect(plan.checkSession('k', 's2').ok).toBe(false)
  })
})
