/**
 * The record encoder against dns2's (an independent implementation of RFC 1035's layouts): for
 * generated A, AAAA, SRV, TXT and SOA data and owner names, both give the same bytes.
 */
import dns2 from 'dns2'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipv6Bytes } from './address.ts'
import { encodeRecord, nameWire, type Rdata, RecordClass, RecordType } from './wire.ts'

const { Packet } = dns2

const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/)
const dnsName = fc.array(label, { minLength: 1, maxLength: 5 }).map((labels) => labels.join('.'))
const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffff_ffff })

/** Rdata as generated: an SRV target as a dotted name, which dns2 takes and ours takes encoded. */
type TestRdata =
  | Exclude<Rdata, { type: 'SRV' }>
  | (Omit<Extract<Rdata, { type: 'SRV' }>, 'target'> & { target: string })

function ours(rdata: TestRdata): Rdata {
  return rdata.type === 'SRV' ? { ...rdata, target: nameWire(rdata.target) } : rdata
}

/** dns2's bytes for the same record, with its one-byte root owner replaced by `owner`. */
function dns2Record(owner: Buffer, ttlS: number, rdata: TestRdata): Buffer {
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
    case 'AAAA': {
      // dns2 reads each group as hex: give it eight plain groups.
      const bytes = ipv6Bytes(rdata.address)
      const groups: string[] = []
      for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
      fields['address'] = groups.join(':')
      break
    }
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
  return Buffer.concat([owner, encoded.subarray(1)])
}

const rdata: fc.Arbitrary<TestRdata> = fc.oneof(
  fc.ipV4().map((address) => ({ type: 'A' as const, address })),
  fc.ipV6().map((address) => ({ type: 'AAAA' as const, address })),
  fc
    .record({ priority: u16, weight: u16, port: u16, target: dnsName })
    .map((r) => ({ type: 'SRV' as const, ...r })),
  fc
    .array(fc.uint8Array({ maxLength: 255 }), { minLength: 1, maxLength: 4 })
    .map((strings) => ({ type: 'TXT' as const, strings: strings.map((s) => Buffer.from(s)) })),
  fc
    .record({
      primary: dnsName,
      admin: dnsName,
      serial: u32,
      refresh: u32,
      retry: u32,
      expire: u32,
      minimum: u32,
    })
    .map((r) => ({ type: 'SOA' as const, ...r })),
)

describe('record encoding', () => {
  it('names encode as dns2 encodes them', () => {
    fc.assert(
      fc.property(dnsName, (name) => {
        expect(nameWire(name).equals(Packet.Name.encode(name))).toBe(true)
      }),
    )
  })

  it('every record type gives the bytes dns2 gives, for any owner and TTL', () => {
    fc.assert(
      fc.property(
        fc.oneof(dnsName.map(nameWire), fc.constant(Buffer.from([0xc0, 0x0c]))),
        u32,
        rdata,
        (owner, ttl, data) => {
          expect(encodeRecord(owner, ttl, ours(data)).toString('hex')).toBe(
            dns2Record(owner, ttl, data).toString('hex'),
          )
        },
      ),
      { numRuns: 500 },
    )
  })
})
