/**
 * Proves key cleaning matches Go's path.Clean(path.Join("/", p)) (checked against Node's POSIX
 * resolve, which implements the same rules) and the tree helpers: parents, ancestors, the hidden
 * rule relative to a watched path, prefix ends and key limits.
 */
import { posix } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  cleanKey,
  isHiddenBelow,
  isUnder,
  normalizeKey,
  parentKey,
  prefixEnd,
  segmentCount,
  selfAndAncestors,
} from './key-path.ts'
import { kvLimits } from './limits.ts'
import { errorOf } from './test-support.ts'

describe('cleanKey', () => {
  it.each([
    ['', '/'],
    ['/', '/'],
    ['foo', '/foo'],
    ['/foo/', '/foo'],
    ['//a//b', '/a/b'],
    ['/a/./b/../c', '/a/c'],
    ['/../a', '/a'],
    ['/a/b/../../..', '/'],
    ['/_hidden/x', '/_hidden/x'],
    ['/a/', '/a'],
    ['/a//b', '/a/b'],
    ['/.a/..b/...', '/.a/..b/...'],
    ['/a/.', '/a'],
    ['/a/..', '/'],
  ])('%j cleans to %j', (raw, clean) => {
    expect(cleanKey(raw)).toBe(clean)
  })

  it('agrees with POSIX resolve from / on random paths', () => {
    const part = fc.constantFrom('a', 'b', '.', '..', '', '_x', 'c d')
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), (parts) => {
        const raw = parts.join('/')
        expect(cleanKey(raw)).toBe(posix.resolve('/', raw))
      }),
    )
  })

  it('agrees with POSIX resolve on absolute paths, where clean ones are returned as they are', () => {
    const part = fc.constantFrom('a', 'b', '.', '..', '', '.a', '..b', '...', '_x')
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), (parts) => {
        const raw = `/${parts.join('/')}`
        expect(cleanKey(raw)).toBe(posix.resolve('/', raw))
      }),
      { numRuns: 2_000 },
    )
  })
})

describe('tree helpers', () => {
  it('parents, ancestors, segments, under', () => {
    expect(parentKey('/a')).toBe('/')
    expect(parentKey('/a/b')).toBe('/a')
    expect([...selfAndAncestors('/a/b')]).toEqual(['/a/b', '/a', '/'])
    expect([...selfAndAncestors('/')]).toEqual(['/'])
    expect([segmentCount('/'), segmentCount('/a'), segmentCount('/a/b/c')]).toEqual([0, 1, 3])
    expect([isUnder('/a/b', '/a'), isUnder('/ab', '/a'), isUnder('/a', '/a'), isUnder('/a', '/')]).toEqual([
      true,
      false,
      false,
      true,
    ])
  })

  it.each([
    ['/', '/_h', true],
    ['/', '/a/_h/b', true],
    ['/a', '/a/b', false],
    ['/_a', '/_a/b', false],
    ['/a', '/a/b/_c', true],
  ])('isHiddenBelow(%j, %j) is %j (etcd isHidden)', (watched, key, hidden) => {
    expect(isHiddenBelow(watched, key)).toBe(hidden)
  })

  it('prefixEnd is the first string after the prefix range', () => {
    expect(prefixEnd('/a/')).toBe('/a0')
    expect(prefixEnd('/a\uffff')).toBe('/b')
    expect(prefixEnd('')).toBe('\0')
  })

  it('keys longer than keyBytesMax or deeper than keySegmentsMax are KV_KEY_INVALID', () => {
    expect(errorOf(() => normalizeKey('/' + 'k'.repeat(kvLimits.keyBytesMax), 7)).code).toBe('KV_KEY_INVALID')
    expect(errorOf(() => normalizeKey('/a'.repeat(kvLimits.keySegmentsMax + 1), 7)).index).toBe(7)
    expect(normalizeKey('/a'.repeat(kvLimits.keySegmentsMax), 7)).toHaveLength(2 * kvLimits.keySegmentsMax)
  })
})
