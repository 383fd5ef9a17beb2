/**
 * Proves the command codec: every op round-trips through encode/decode unchanged (normalized: no
 * undefined fields, empty compares dropped); decode is safe on hostile input (random bytes, random
 * msgpack values, wrong types, unknown ops, oversized data) and only ever throws KvError with the
 * specific code where one exists (value too large, TTL out of range, txn limits).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Command, decodeCommand, encodeCommand, requestIdOf } from './commands.ts'
import { KvError } from './kv-error.ts'
import { kvLimits } from './limits.ts'
import { packValue } from './msgpack.ts'
import { errorOf } from './test-support.ts'

const stamp = { id: 'req-1', now: 1_700_000_000_000 }

const valid: Command[] = [
  { op: 'v2.set', ...stamp, key: '/a/b', value: 'v', dir: false, ttlMs: 5000, refresh: true },
  { op: 'v2.create', ...stamp, key: '/q', value: 'job', dir: false, unique: true },
  { op: 'v2.update', ...stamp, key: '/a', value: '' },
  { op: 'v2.cas', ...stamp, key: '/a', value: 'n', prevValue: 'o', prevIndex: 3 },
  { op: 'v2.delete', ...stamp, key: '/d', dir: true, recursive: true },
  { op: 'v2.cad', ...stamp, key: '/a', prevIndex: 9 },
  { op: 'put', ...stamp, key: '/_cairn/m/1', value: '{}', lease: 4, prevKv: true },
  { op: 'delete', ...stamp, key: '/_cairn/m/', rangeEnd: '/_cairn/m0', prevKv: true },
  {
    op: 'txn',
    ...stamp,
    compare: [{ key: '/l', target: 'createRevision', result: 'equal', value: 0 }],
    success: [{ type: 'put', key: '/l', value: 'me' }],
    failure: [{ type: 'range', key: '/l' }],
  },
  { op: 'lease.grant', ...stamp, lease: 0, ttlMs: 10_000 },
  { op: 'lease.keepAlive', ...stamp, lease: 3 },
  { op: 'lease.revoke', ...stamp, lease: 3 },
  { op: 'expire', ...stamp, keys: [{ key: '/t', modRevision: 4 }], leases: [2] },
  { op: 'member.update', ...stamp, nodeId: 2, name: 'n2', clientUrls: ['http://10.0.0.2:4001'] },
  { op: 'compact', ...stamp, revision: 17 },
]

describe('command codec', () => {
  it.each(valid.map((command) => ({ name: command.op, command })))('$name round-trips', ({ command }) => {
    expect(decodeCommand(encodeCommand(command))).toEqual(command)
  })

  it('normalizes: undefined fields and empty compares are not encoded', () => {
    const command = {
      op: 'v2.cas',
      ...stamp,
      key: '/a',
      value: 'v',
      prevValue: '',
      prevIndex: 0,
      ttlMs: undefined,
    } as Command
    expect(decodeCommand(encodeCommand(command))).toEqual({ op: 'v2.cas', ...stamp, key: '/a', value: 'v' })
  })

  it.each([
    { name: 'not msgpack', data: new Uint8Array([0xc1]), code: 'KV_COMMAND_INVALID' },
    { name: 'not a map', data: packValue([1, 2]), code: 'KV_COMMAND_INVALID' },
    { name: 'unknown op', data: packValue({ ...stamp, op: 'drop.table' }), code: 'KV_COMMAND_INVALID' },
    { name: 'no id', data: packValue({ op: 'v2.get', now: 1 }), code: 'KV_COMMAND_INVALID' },
    {
      name: 'now not an integer',
      data: packValue({ op: 'compact', id: 'x', now: 1.5, revision: 1 }),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'key not a string',
      data: packValue({ ...stamp, op: 'v2.set', key: 5, value: '' }),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'v2 key too long',
      data: packValue({ ...stamp, op: 'v2.set', key: `/${'k'.repeat(9000)}` }),
      code: 'KV_KEY_INVALID',
    },
    {
      name: 'v3 key not clean',
      data: packValue({ ...stamp, op: 'put', key: '/a/', value: '' }),
      code: 'KV_KEY_INVALID',
    },
    {
      name: 'value too large',
      data: packValue({ ...stamp, op: 'put', key: '/a', value: 'x'.repeat(kvLimits.valueBytesMax + 1) }),
      code: 'KV_VALUE_TOO_LARGE',
    },
    {
      name: 'negative ttl',
      data: packValue({ ...stamp, op: 'v2.set', key: '/a', ttlMs: -1 }),
      code: 'KV_TTL_INVALID',
    },
    {
      name: 'lease ttl 0',
      data: packValue({ ...stamp, op: 'lease.grant', ttlMs: 0 }),
      code: 'KV_TTL_INVALID',
    },
    {
      name: 'txn over txnOpsMax',
      data: packValue({
        ...stamp,
        op: 'txn',
        success: Array.from({ length: 129 }, () => ({ type: 'range', key: '/a' })),
      }),
      code: 'KV_TXN_TOO_MANY_OPS',
    },
    {
      name: 'bad compare target',
      data: packValue({
        ...stamp,
        op: 'txn',
        compare: [{ key: '/a', target: 'size', result: 'equal', value: 1 }],
      }),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'expire over expireBatchMax',
      data: packValue({
        ...stamp,
        op: 'expire',
        keys: [],
        leases: Array.from({ length: 1001 }, (_, i) => i + 1),
      }),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'a BigInt-sized integer',
      data: new Uint8Array([0x81, 0xa2, 0x69, 0x64, 0xcf, 255, 255, 255, 255, 255, 255, 255, 255]),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'a Date',
      data: new Uint8Array([0x81, 0xa2, 0x69, 0x64, 0xd6, 0xff, 0, 0, 0, 1]),
      code: 'KV_COMMAND_INVALID',
    },
    {
      name: 'larger than commandBytesMax',
      data: new Uint8Array(kvLimits.commandBytesMax + 1),
      code: 'KV_COMMAND_INVALID',
    },
  ])('decode refuses $name with $code', ({ data, code }) => {
    expect(errorOf(() => decodeCommand(data, 12)).code).toBe(code)
  })

  it('encode refuses what decode would refuse, before the command reaches the log', () => {
    const command = {
      op: 'put',
      ...stamp,
      key: '/a',
      value: 'x'.repeat(kvLimits.valueBytesMax + 1),
    } as Command
    expect(errorOf(() => encodeCommand(command, 3)).code).toBe('KV_VALUE_TOO_LARGE')
  })

  it('random bytes never crash decode: only KvError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeCommand(bytes)
        } catch (error) {
          expect(error).toBeInstanceOf(KvError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('random msgpack values, and valid commands with one field replaced, never crash decode', () => {
    const field = fc.constantFrom(
      'op',
      'id',
      'now',
      'key',
      'value',
      'ttlMs',
      'compare',
      'success',
      'keys',
      'lease',
      'rangeEnd',
    )
    fc.assert(
      fc.property(fc.constantFrom(...valid), field, fc.anything(), (command, name, junk) => {
        for (const value of [junk, { ...command, [name]: junk }]) {
          try {
            decodeCommand(packValue(value))
          } catch (error) {
            expect(error).toBeInstanceOf(KvError)
          }
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('an op that is an object whose toString is not a function is refused, not a crash (fuzz finding)', () => {
    const command = { op: { toString: 0 }, id: 'req-1', now: 1, key: '/a', value: 'v', dir: false }
    expect(errorOf(() => decodeCommand(packValue(command))).code).toBe('KV_COMMAND_INVALID')
  })

  it('requestIdOf reads the id of a refused command so the proposer can be answered', () => {
    expect(requestIdOf(packValue({ id: 'r-9', op: 'nonsense' }))).toBe('r-9')
    expect(requestIdOf(new Uint8Array([0xc1]))).toBeUndefined()
  })
})
