/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG) over bytes, chainable:
 * crc32(b, crc32(a)) === crc32(a ++ b).
 *
 * Uses zlib.crc32 (Node >= 20.15, hardware-accelerated); older Node 20 releases fall back to a
 * table-driven implementation that gives identical values, so files move freely between them.
 */
import zlib from 'node:zlib'

export type Crc32 = (data: Uint8Array, value?: number) => number

const table: Uint32Array = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** The portable fallback; exported so a test can prove it equals zlib's. */
export function crc32Table(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32

export const crc32: Crc32 =
  typeof native === 'function' ? (data, value = 0) => native(data, value) : crc32Table
