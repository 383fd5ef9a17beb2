/**
 * Proves the responder's answers, without sockets: which instances are served (critical never,
 * warning unless onlyPassing), NXDOMAIN versus NODATA with the SOA in the authority section,
 * SRV with its address in the additional section, node metadata as TXT, TTL and SOA options,
 * the asker's letter case echoed, EDNS0 sizes and BADVERS, truncation (never over budget, TC
 * exactly when answers were left out), the cache (hit on a repeat, emptied by a new revision),
 * and the shuffle (different orders, cached order untouched).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { resolveDnsOptions } from './limits.ts'
import { Responder } from './responder.ts'
import {
  bigCount,
  decodeAnswer,
  encodeQuery,
  headerOf,
  type QueryOptions,
  sampleView,
} from './test-support.ts'
import { Rcode, RecordType } from './wire.ts'

const { A, AAAA, SRV, TXT, SOA, ANY, AXFR } = RecordType

function setup(options: Parameters<typeof resolveDnsOptions>[0] = {}) {
  const view = sampleView()
  const responder = new Responder(view, resolveDnsOptions(options))
  const ask = (name: string, qtype: number, query: QueryOptions = {}, transport: 'udp' | 'tcp' = 'udp') => {
    const bytes = responder.respond(encodeQuery(name, qtype, query), transport)
    if (bytes === null) throw new Error('no answer')
    return { bytes, header: headerOf(bytes), packet: decodeAnswer(bytes) }
  }
  return { view, responder, ask }
}

const addresses = (packet: ReturnType<typeof decodeAnswer>) => packet.answers.map((r) => r.address).sort()

describe('service answers', () => {
  it('serve passing and warning instances, never critical ones', () => {
    const { ask } = setup()
    const { header, packet } = ask('web.service.cairn', A)
    expect(header).toMatchObject({ qr: true, aa: true, tc: false, rd: true, rcode: Rcode.NOERROR })
    expect(addresses(packet)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'])
  })

  it('leave warning instances out with onlyPassing', () => {
    const { ask } = setup({ onlyPassing: true })
    expect(addresses(ask('web.service.cairn', A).packet)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3'])
  })

  it('filter by tag, in both the Consul and the RFC 2782 form', () => {
    const { ask } = setup()
    expect(addresses(ask('v2.web.service.cairn', A).packet)).toEqual(['10.0.0.2'])
    expect(ask('_web._v2.service.cairn', SRV).packet.answers.map((r) => r.port)).toEqual([8082])
    expect(ask('_web._tcp.service.cairn', SRV).packet.answers).toHaveLength(4)
  })

  it('give SRV records with priority 1, weight 1 and the target address in the additional section', () => {
    const { ask } = setup()
    const { packet } = ask('web.service.cairn', SRV)
    const srv = packet.answers.find((r) => r.port === 8081)!
    expect(srv).toMatchObject({ priority: 1, weight: 1, target: 'n1.node.cairn' })
    const extra = packet.additionals.find((r) => r.name === 'n1.node.cairn')
    expect(extra).toMatchObject({ type: A, address: '10.0.0.1' })
  })

  it('name an instance whose address is not its node address by <hex>.addr, which resolves', () => {
    const { view, ask } = setup()
    view.setInstance({
      id: 'side',
      service: 'side',
      node: 'n1',
      address: '192.0.2.10',
      port: 1,
      tags: [],
      status: 'passing',
    })
    expect(ask('side.service.cairn', SRV).packet.answers[0]?.target).toBe('c000020a.addr.cairn')
    expect(addresses(ask('c000020a.addr.cairn', A).packet)).toEqual(['192.0.2.10'])
  })

  it('answer AAAA for IPv6 instances and NODATA with an SOA for the missing family', () => {
    const { ask } = setup()
    expect(addresses(ask('db.service.cairn', AAAA).packet)).toEqual(['fd00::6'])
    const nodata = ask('db.service.cairn', A)
    expect(nodata.header).toMatchObject({ rcode: Rcode.NOERROR, ancount: 0, nscount: 1 })
    expect(nodata.packet.authorities[0]).toMatchObject({ type: SOA, name: 'cairn', primary: 'ns.cairn' })
  })

  it('answer NXDOMAIN with an SOA for an unknown service and for one with only critical instances', () => {
    const { view, ask } = setup()
    view.setInstance({
      id: 'sick',
      service: 'sick',
      node: 'n1',
      address: '10.9.9.9',
      port: 1,
      tags: [],
      status: 'critical',
    })
    for (const name of ['nope.service.cairn', 'sick.service.cairn', 'what.cairn']) {
      const { header, packet } = ask(name, A)
      expect(header).toMatchObject({ rcode: Rcode.NXDOMAIN, aa: true, ancount: 0, nscount: 1 })
      expect(packet.authorities[0]?.type).toBe(SOA)
    }
  })
})

describe('node and zone answers', () => {
  it('give node metadata as TXT key=value, rfc1035- keys as the value only', () => {
    const { ask } = setup()
    const texts = ask('n1.node.cairn', TXT).packet.answers.map((r) => (r.data as string[]).join(''))
    expect(texts.sort()).toEqual(['just-value', 'region=r1', 'zone=z1'])
    expect(addresses(ask('n1.node.cairn', A).packet)).toEqual(['10.0.0.1'])
    expect(ask('n1.node.cairn', ANY).packet.answers).toHaveLength(4)
  })

  it('answer the apex SOA with the configured fields, the revision as serial and minimum as TTL', () => {
    const { view, ask } = setup({ soa: { minimum: 30, refresh: 100 } })
    const soa = ask('cairn', SOA).packet.answers[0]
    expect(soa).toMatchObject({ ttl: 30, minimum: 30, refresh: 100, retry: 600, expiration: 86400 })
    expect(soa?.serial).toBe(view.revision)
  })

  it('use the configured TTLs and domain', () => {
    const { ask } = setup({ domain: 'consul.', serviceTtlS: 5, nodeTtlS: 7 })
    expect(ask('web.service.consul', A).packet.answers[0]?.ttl).toBe(5)
    expect(ask('n1.node.consul', A).packet.answers[0]?.ttl).toBe(7)
    expect(ask('web.service.cairn', A).header).toMatchObject({ rcode: Rcode.REFUSED, aa: false })
  })

  it('refuse names outside the domain and other classes, and do not transfer zones', () => {
    const { ask } = setup()
    expect(ask('example.com', A).header.rcode).toBe(Rcode.REFUSED)
    expect(ask('web.service.cairn', A, { qclass: 3 }).header.rcode).toBe(Rcode.REFUSED)
    expect(ask('cairn', AXFR).header.rcode).toBe(Rcode.NOTIMP)
  })

  it('echo the question exactly, letter case included, also from a cache entry filled by another case', () => {
    const { ask } = setup()
    ask('web.service.cairn', A)
    const { bytes, packet } = ask('WeB.SeRvIcE.cAiRn', A)
    expect(packet.questions[0]?.name).toBe('WeB.SeRvIcE.cAiRn')
    expect(packet.answers[0]?.name).toBe('WeB.SeRvIcE.cAiRn')
    expect(bytes.subarray(12, 31)).toEqual(encodeQuery('WeB.SeRvIcE.cAiRn', A).subarray(12, 31))
  })
})

describe('sizes and truncation', () => {
  it('truncate at 512 bytes without EDNS0 and set TC; give everything over TCP', () => {
    const { ask } = setup()
    const udp = ask('big.service.cairn', A)
    expect(udp.bytes.length).toBeLessThanOrEqual(512)
    expect(udp.header.tc).toBe(true)
    expect(udp.header.ancount).toBeGreaterThan(0)
    expect(udp.header.ancount).toBeLessThan(bigCount)
    const tcp = ask('big.service.cairn', A, {}, 'tcp')
    expect(tcp.header).toMatchObject({ tc: false, ancount: bigCount })
  })

  it('honour the EDNS0 size, clamped to 512..4096, and answer with an OPT', () => {
    const { ask } = setup()
    const large = ask('web.service.cairn', A, { ednsBytes: 4096 })
    expect(large.header).toMatchObject({ tc: false, ancount: 4 })
    expect(large.packet.additionals.at(-1)).toMatchObject({ type: RecordType.OPT, class: 4096 })
    const tiny = ask('big.service.cairn', A, { ednsBytes: 100 })
    expect(tiny.bytes.length).toBeLessThanOrEqual(512)
    expect(tiny.bytes.length).toBeGreaterThan(450)
    const medium = ask('big.service.cairn', A, { ednsBytes: 2000 })
    expect(medium.bytes.length).toBeLessThanOrEqual(2000)
    expect(medium.bytes.length).toBeGreaterThan(2000 - 16)
    const huge = ask('big.service.cairn', A, { ednsBytes: 65000 })
    expect(huge.bytes.length).toBeLessThanOrEqual(4096)
    expect(huge.header.tc).toBe(true)
  })

  it('answer an OPT of version 1 with BADVERS', () => {
    const { ask } = setup()
    const { bytes, header } = ask('web.service.cairn', A, { ednsBytes: 1232, ednsVersion: 1 })
    expect(header).toMatchObject({ rcode: 0, ancount: 0, arcount: 1 })
    expect(bytes[bytes.length - 6]).toBe(1)
  })

  it('never exceeds the budget, sets TC exactly when answers were left out, keeps SRV extras matched', () => {
    const { ask } = setup()
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.constantFrom(A, SRV), (ednsBytes, qtype) => {
        const full = ask('big.service.cairn', qtype, {}, 'tcp').header.ancount
        const { bytes, header, packet } = ask('big.service.cairn', qtype, { ednsBytes })
        expect(bytes.length).toBeLessThanOrEqual(Math.min(4096, Math.max(512, ednsBytes)))
        expect(header.tc).toBe(header.ancount < full)
        const targets = new Set(packet.answers.map((r) => r.target))
        for (const extra of packet.additionals.filter((r) => r.type === A))
          expect(targets.has(extra.name)).toBe(true)
      }),
      { numRuns: 60 },
    )
  })
})

describe('cache and shuffle', () => {
  it('hits on a repeated question and is emptied when the revision changes', () => {
    const { view, responder, ask } = setup()
    ask('web.service.cairn', A)
    ask('web.service.cairn', A)
    expect(responder.cache).toMatchObject({ hits: 1, misses: 1, size: 1 })
    view.setInstance({
      id: 'web-1',
      service: 'web',
      node: 'n1',
      address: '10.0.0.1',
      port: 8081,
      tags: ['v1'],
      status: 'critical',
    })
    expect(addresses(ask('web.service.cairn', A).packet)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4'])
    expect(responder.cache).toMatchObject({ hits: 1, misses: 2, invalidations: 1, size: 1 })
  })

  it('a label holding a dot does not share a cache entry with the dotted name (no poisoning)', () => {
    const { responder, ask } = setup()
    // One label "web.service" then "cairn": not a service question, whatever it answers.
    const odd = Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from([11]),
      Buffer.from('web.service', 'latin1'),
      Buffer.from([5]),
      Buffer.from('cairn', 'latin1'),
      Buffer.from([0, 0, 1, 0, 1]),
    ])
    const first = responder.respond(odd, 'udp')
    expect(
      first === null || headerOf(first).rcode !== Rcode.NOERROR || decodeAnswer(first).answers.length === 0,
    ).toBe(true)
    expect(addresses(ask('web.service.cairn', A).packet)).toEqual([
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.3',
      '10.0.0.4',
    ])
  })

  it('bounds the cache at cacheEntriesMax', () => {
    const { responder, ask } = setup({ cacheEntriesMax: 3 })
    for (let i = 0; i < 10; i++) ask(`s${i}.service.cairn`, A)
    expect(responder.cache.size).toBe(3)
  })

  it('reorders records per query without changing the set', () => {
    const { ask } = setup()
    const orders = new Set<string>()
    for (let i = 0; i < 20; i++)
      orders.add(
        ask('web.service.cairn', A)
          .packet.answers.map((r) => r.address)
          .join(),
      )
    expect(orders.size).toBeGreaterThan(1)
    for (const order of orders)
      expect(order.split(',').sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'])
  })
})
