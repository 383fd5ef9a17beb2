/**
 * Wire-format pieces: record types and rcodes (dns2's tables), one resource record encoded to
 * bytes, names encoded as wire labels.
 *
 * dns2 encodes each record's type, class, TTL, RDLENGTH and RDATA (`Packet.Resource.encode`, no
 * compression table). Its whole-message encoder is not used: it builds messages as arrays of bits
 * (100 A records took 176 ms to encode on Node 20), and it could not echo the question's exact
 * bytes. Records are encoded once per cache fill, so dns2's speed per record does not matter.
 *
 * Owner names: a record owned by the question name is written with the pointer 0xC00C (RFC 1035
 * §4.1.4), which names the question at offset 12 of every answer: the answer echoes the asker's
 * letter case and saves bytes. Other owners (SRV targets, the zone apex) are written in full.
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
  return Packet.Name.encode(name)
}

export type Rdata =
  | { type: 'A' | 'AAAA'; address: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
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

/** One resource record of class IN: `owner` (wire bytes), then what dns2 encodes after the name. */
export function encodeRecord(owner: Buffer, ttlS: number, rdata: Rdata): Buffer {
  const fields: Record<string, unknown> = {
    name: '',
    type: RecordType[rdata.type],
    class: RecordClass.IN,
    ttl: ttlS,
  }
  switch (rdata.type) {
    case 'A':
      fields['address'] = rdata.address
      break
    case 'AAAA':
      // dns2 reads every group as hex: give it eight plain groups (no `::`, no dotted IPv4 tail).
      fields['address'] = ipv6Groups(rdata.address)
      break
    case 'SRV':
      Object.assign(fields, {
        priority: rdata.priority,
        weight: rdata.weight,
        port: rdata.port,
        target: rdata.target,
      })
      break
    case 'TXT':
      fields['data'] = rdata.strings
      break
    case 'SOA':
      Object.assign(fields, {
        primary: rdata.primary,
        admin: rdata.admin,
        serial: rdata.serial,
        refresh: rdata.refresh,
        retry: rdata.retry,
        expiration: rdata.expire,
        minimum: rdata.minimum,
      })
      break
  }
  const encoded = Packet.Resource.encode(new Packet.Resource(fields as Partial<dns2.Packet.Resource>))
  // dns2 wrote the empty name as the root label, one zero byte: replace it with the owner.
  return Buffer.concat([owner, encoded.subarray(1)])
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

function ipv6Groups(address: string): string {
  const bytes = ipv6Bytes(address)
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  return groups.join(':')
}
