/**
 * Wire-format pieces: record types and rcodes (dns2's tables), one resource record encoded to
 * bytes, names encoded as wire labels (RFC 1035 §3.1, §3.2.1, §4.1.3; RFC 2782 for SRV; RFC 3596
 * for AAAA).
 *
 * Records are encoded here, not by dns2: its `Packet.Resource.encode` builds every record as an
 * array of bits, and a 300-instance SRV answer (300 SRV plus 300 A records) took 12.7 ms of the
 * event loop on a cache miss (`Responder.respond`, Node 20), which every catalog change brings
 * back for every large service. Encoding the fixed layouts directly takes it to the figure in
 * docs/dns.md. The tests read every answer back with dns2's decoder, an independent reader.
 *
 * Owner names: a record owned by the question name is written with the pointer 0xC00C (RFC 1035
 * §4.1.4), which names the question at offset 12 of every answer: the answer echoes the asker's
 * letter case and saves bytes. Other owners (SRV targets, the zone apex) are written in full
 * (RFC 2782: no compression in SRV targets).
 * Invariant: every Buffer returned here is a complete record, ready to be concatenated.
 */
import dns2 from 'dns2'
import { ipv6Bytes } from './address.ts'

const { Packet } = dns2

export const RecordType = {
  A: Packet.TYPE.A,
  NS: Packet.TYPE.NS,
  SOA: Packet.TYPE.SOA,
  TXT: Packet.TYPE.TXT,
  AAAA: Packet.TYPE.AAAA,
  SRV: Packet.TYPE.SRV,
  OPT: Packet.TYPE.EDNS,
  IXFR: 251,
  AXFR: Packet.TYPE.AXFR,
  ANY: Packet.TYPE.ANY,
} as const

export const RecordClass = { IN: Packet.CLASS.IN, ANY: Packet.CLASS.ANY } as const

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const

/** The question's name, by the compression pointer to offset 12. */
export const questionNamePointer = Buffer.from([0xc0, 0x0c])

/** Wire labels of a dotted name made of our own labels (each 1..63 bytes, checked by callers). */
export function nameWire(name: string): Buffer {
  const labels = name.split('.').filter((label) => label !== '')
  let bytes = 1
  for (const label of labels) bytes += 1 + Buffer.byteLength(label, 'utf8')
  const out = Buffer.allocUnsafe(bytes)
  let at = 0
  for (const label of labels) {
    const length = out.write(label, at + 1, 'utf8')
    out[at] = length
    at += 1 + length
  }
  out[at] = 0
  return out
}

export type Rdata =
  | { type: 'A' | 'AAAA'; address: string }
  /** `target` as wire labels (nameWire): the caller also owns the target's A/AAAA records by it. */
  | { type: 'SRV'; priority: number; weight: number; port: number; target: Buffer }
  | { type: 'TXT'; strings: Buffer[] }
  | {
      type: 'SOA'
      primary: string
      admin: string
      serial: number
      refresh: number
      retry: number
      expire: number
      minimum: number
    }

/** The largest TTL on the wire (RFC 2181 §8). */
export const ttlMax = 0x7fff_ffff

/** Bytes of type, class, TTL and RDLENGTH between a record's owner name and its data. */
const fixedBytes = 10

/** One resource record of class IN: `owner` (wire bytes), type, class, TTL, RDLENGTH, RDATA. */
export function encodeRecord(owner: Buffer, ttlS: number, rdata: Rdata): Buffer {
  const data = rdataBytes(rdata)
  const out = Buffer.allocUnsafe(owner.length + fixedBytes + data.length)
  owner.copy(out, 0)
  let at = owner.length
  at = out.writeUInt16BE(RecordType[rdata.type], at)
  at = out.writeUInt16BE(RecordClass.IN, at)
  // RFC 2181 §8: a TTL has its top bit clear (a reader treats one with it set as 0).
  at = out.writeUInt32BE(Math.min(ttlS >>> 0, ttlMax), at)
  at = out.writeUInt16BE(data.length, at)
  data.copy(out, at)
  return out
}

function rdataBytes(rdata: Rdata): Buffer {
  switch (rdata.type) {
    case 'A':
      return Buffer.from(rdata.address.split('.').map(Number))
    case 'AAAA':
      return ipv6Bytes(rdata.address)
    case 'SRV': {
      const target = rdata.target
      const out = Buffer.allocUnsafe(6 + target.length)
      out.writeUInt16BE(rdata.priority, 0)
      out.writeUInt16BE(rdata.weight, 2)
      out.writeUInt16BE(rdata.port, 4)
      target.copy(out, 6)
      return out
    }
    case 'TXT':
      return Buffer.concat(rdata.strings.flatMap((string) => [Buffer.from([string.length]), string]))
    case 'SOA': {
      const primary = nameWire(rdata.primary)
      const admin = nameWire(rdata.admin)
      const out = Buffer.allocUnsafe(primary.length + admin.length + 20)
      primary.copy(out, 0)
      admin.copy(out, primary.length)
      let at = primary.length + admin.length
      for (const n of [rdata.serial, rdata.refresh, rdata.retry, rdata.expire]) {
        at = out.writeUInt32BE(n >>> 0, at)
      }
      // MINIMUM is the TTL of negative answers (RFC 2308 §4): a TTL, so its top bit is clear.
      out.writeUInt32BE(Math.min(rdata.minimum >>> 0, ttlMax), at)
      return out
    }
  }
}

/**
 * TXT character-strings are at most 255 bytes (RFC 1035 §3.3): a longer text is split into
 * consecutive strings of one record, which clients join back together.
 */
export function txtStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text, 'utf8')
  const strings: Buffer[] = []
  for (let at = 0; at < bytes.length || strings.length === 0; at += 255) {
    strings.push(bytes.subarray(at, at + 255))
  }
  return strings
}
