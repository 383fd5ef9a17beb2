/**
 * Proves name parsing against the table of names in docs/dns.md, and that the `.addr` hex form
 * round-trips IPv4 and IPv6 addresses.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { addressFromHex, hexFromAddress, ipv6Bytes } from './address.ts'
import { type Lookup, parseName } from './names.ts'

const domain = ['cairn']
const table: [string, Lookup][] = [
  ['cairn', { kind: 'apex' }],
  ['web.service.cairn', { kind: 'service', service: 'web', tag: undefined }],
  ['v2.web.service.cairn', { kind: 'service', service: 'web', tag: 'v2' }],
  ['_web._tcp.service.cairn', { kind: 'service', service: 'web', tag: undefined }],
  ['_web._udp.cairn', { kind: 'service', service: 'web', tag: undefined }],
  ['_web._v2.service.cairn', { kind: 'service', service: 'web', tag: 'v2' }],
  ['_web._v2.cairn', { kind: 'service', service: 'web', tag: 'v2' }],
  ['n1.node.cairn', { kind: 'node', node: 'n1' }],
  ['0a000001.addr.cairn', { kind: 'addr', address: '10.0.0.1' }],
  ['fd000000000000000000000000000006.addr.cairn', { kind: 'addr', address: 'fd00:0:0:0:0:0:0:6' }],
  ['zz.addr.cairn', { kind: 'unknown' }],
  ['service.cairn', { kind: 'unknown' }],
  ['a.b.web.service.cairn', { kind: 'unknown' }],
  ['_._tcp.cairn', { kind: 'unknown' }],
  ['web.service.consul', { kind: 'outside' }],
  ['example.com', { kind: 'outside' }],
  ['', { kind: 'outside' }],
]

describe('parseName', () => {
  it.each(table)('%s', (name, lookup) => {
    const labels = name === '' ? [] : name.split('.')
    expect(parseName(labels, domain)).toEqual(lookup)
  })

  it('serves a multi-label domain such as dc1.consul', () => {
    expect(parseName(['web', 'service', 'dc1', 'consul'], ['dc1', 'consul'])).toMatchObject({
      service: 'web',
    })
    expect(parseName(['web', 'service', 'consul'], ['dc1', 'consul'])).toEqual({ kind: 'outside' })
  })
})

describe('.addr hex names', () => {
  it('round-trips IPv4 and IPv6 addresses', () => {
    fc.assert(
      fc.property(fc.ipV4(), (address) => {
        expect(addressFromHex(hexFromAddress(address))).toBe(address)
      }),
    )
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        const back = addressFromHex(hexFromAddress(address))!
        expect(ipv6Bytes(back)).toEqual(ipv6Bytes(address))
      }),
    )
  })
})
