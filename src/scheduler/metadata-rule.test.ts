/**
 * Proves fleet's MachineMetadata rule: AND across keys, OR within one key's values wherever the
 * repeats appear, equality only, own properties only; the empty rule admits every machine.
 */
import { describe, expect, it } from 'vitest'
import { metadataMatches, metadataRule } from './metadata-rule.ts'

describe('MachineMetadata rule', () => {
  // fleet's documented example: "region=a" "job=x" plus "region=b" "job=y".
  const rule = metadataRule([
    ['region', 'a'],
    ['job', 'x'],
    ['region', 'b'],
    ['job', 'y'],
    ['region', 'a'],
  ])

  it('groups keys in first-seen order with distinct values', () => {
    expect(rule).toEqual([
      { key: 'region', values: ['a', 'b'] },
      { key: 'job', values: ['x', 'y'] },
    ])
  })

  it.each([
    [{ region: 'a', job: 'x' }, true],
    [{ region: 'b', job: 'x' }, true],
    [{ region: 'a', job: 'y', disk: 'ssd' }, true],
    [{ region: 'c', job: 'x' }, false],
    [{ region: 'a' }, false],
    [{ job: 'y' }, false],
    [{}, false],
  ])('%j: %s', (machine, admitted) => {
    expect(metadataMatches(rule, machine)).toBe(admitted)
  })

  it('the empty rule admits every machine; prototype keys never match', () => {
    expect(metadataMatches([], {})).toBe(true)
    const proto = metadataRule([['constructor', 'x']])
    expect(metadataMatches(proto, {})).toBe(false)
    expect(metadataMatches(metadataRule([['toString', 'x']]), { toString: 'x' })).toBe(true)
  })
})
