/**
 * Proves the table-driven CRC-32 fallback gives zlib's values (so files move between Node
 * releases with and without zlib.crc32), including the standard check value and chaining.
 */
import zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { Prng } from '../core/prng.ts'
import { crc32, crc32Table } from './crc32.ts'

describe('crc32', () => {
  it('gives the standard check value 0xCBF43926 for "123456789"', () => {
    const bytes = new TextEncoder().encode('123456789')
    expect(crc32Table(bytes)).toBe(0xcbf43926)
    expect(crc32(bytes)).toBe(0xcbf43926)
  })

  it('the fallback equals zlib.crc32 on random inputs, and chains like it', () => {
    const prng = new Prng(42)
    for (let n = 0; n < 200; n++) {
      const bytes = new Uint8Array(prng.int(0, 3000)).map(() => prng.int(0, 256))
      const cut = prng.int(0, bytes.length + 1)
      const whole = zlib.crc32(bytes)
      expect(crc32Table(bytes)).toBe(whole)
      expect(crc32Table(bytes.subarray(cut), crc32Table(bytes.subarray(0, cut)))).toBe(whole)
      expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut)))).toBe(whole)
    }
  })
})
