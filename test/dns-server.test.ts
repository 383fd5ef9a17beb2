/**
 * Proves the DNS server over real sockets on a random free port, with real clients: Node's
 * resolver (c-ares) for A, AAAA, SRV, TXT, NXDOMAIN and NODATA, and for the TC → TCP retry that
 * gives a large service in full; dig for the TC bit over UDP, the full answer over +tcp, EDNS0
 * +bufsize, and the SOA in the authority section. Also: an instance turning critical leaves the
 * answers at once (the cache is emptied by the new revision), pipelined TCP queries are answered
 * in order, and close() stops both sockets.
 * The dig cases skip, saying so, when /usr/bin/dig is not installed.
 */
import { execFile } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MemoryCatalogView } from '../src/catalog/view.ts'
import { DnsServer } from '../src/dns/server.ts'
import {
  bigCount,
  decodeAnswer,
  encodeQuery,
  headerOf,
  sampleView,
  tcpExchange,
  udpExchange,
} from '../src/dns/test-support.ts'
import { RecordType } from '../src/dns/wire.ts'

const digPath = '/usr/bin/dig'
const hasDig = existsSync(digPath)
if (!hasDig) console.warn(`SKIPPING the dig cases of test/dns-server.test.ts: ${digPath} is not installed`)

let view: MemoryCatalogView
let server: DnsServer
let port: number
let resolver: Resolver

beforeAll(async () => {
  view = sampleView()
  server = new DnsServer(view)
  port = await server.listen('127.0.0.1', 0)
  resolver = new Resolver({ timeout: 10_000, tries: 1 })
  resolver.setServers([`127.0.0.1:${port}`])
})

afterAll(async () => {
  await server.close()
})

async function dig(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(digPath, [
    `@127.0.0.1`,
    '-p',
    String(port),
    '+tries=1',
    '+time=10',
    ...args,
  ])
  return stdout
}

describe('Node resolver (c-ares) against the server', () => {
  it('resolves A for passing and warning instances, not critical ones', async () => {
    expect((await resolver.resolve4('web.service.cairn')).sort()).toEqual([
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.3',
      '10.0.0.4',
    ])
  })

  it('resolves AAAA', async () => {
    expect(await resolver.resolve6('db.service.cairn')).toEqual(['fd00::6'])
  })

  it('resolves SRV for the RFC 2782 name', async () => {
    const records = await resolver.resolveSrv('_web._tcp.service.cairn')
    expect(records.map((r) => r.port).sort()).toEqual([8081, 8082, 8083, 8084])
    expect(records.find((r) => r.port === 8081)).toMatchObject({
      name: 'n1.node.cairn',
      priority: 1,
      weight: 1,
    })
  })

  it('resolves node metadata as TXT', async () => {
    const texts = (await resolver.resolveTxt('n1.node.cairn')).map((chunks) => chunks.join('')).sort()
    expect(texts).toEqual(['just-value', 'region=r1', 'zone=z1'])
  })

  it('reports NXDOMAIN as ENOTFOUND and NODATA as ENODATA', async () => {
    await expect(resolver.resolve4('nope.service.cairn')).rejects.toMatchObject({ code: 'ENOTFOUND' })
    await expect(resolver.resolve4('db.service.cairn')).rejects.toMatchObject({ code: 'ENODATA' })
  })

  it('gets every instance of a service too large for UDP (TC, then TCP)', async () => {
    expect(await resolver.resolve4('big.service.cairn')).toHaveLength(bigCount)
  })

  it('stops returning an instance as soon as it turns critical', async () => {
    expect(await resolver.resolve4('v2.web.service.cairn')).toEqual(['10.0.0.2'])
    view.setInstance({
      id: 'web-2',
      service: 'web',
      node: 'n2',
      address: '10.0.0.2',
      port: 8082,
      tags: ['v2'],
      status: 'critical',
    })
    await expect(resolver.resolve4('v2.web.service.cairn')).rejects.toMatchObject({ code: 'ENOTFOUND' })
    expect((await resolver.resolve4('web.service.cairn')).sort()).toEqual([
      '10.0.0.1',
      '10.0.0.3',
      '10.0.0.4',
    ])
    view.setInstance({
      id: 'web-2',
      service: 'web',
      node: 'n2',
      address: '10.0.0.2',
      port: 8082,
      tags: ['v2'],
      status: 'passing',
    })
    expect(await resolver.resolve4('v2.web.service.cairn')).toEqual(['10.0.0.2'])
    expect(server.stats.cacheInvalidations).toBeGreaterThanOrEqual(2)
  })
})

describe('raw exchanges', () => {
  it('answers pipelined TCP queries in order on one connection', async () => {
    const queries = [1, 2, 3].map((id) => encodeQuery('web.service.cairn', RecordType.A, { id }))
    const answers = await tcpExchange(port, queries)
    expect(answers.map((a) => headerOf(a).id)).toEqual([1, 2, 3])
  })

  it('answers the same over UDP and TCP when it fits', async () => {
    const udp = await udpExchange(port, encodeQuery('n1.node.cairn', RecordType.TXT))
    const [tcp] = await tcpExchange(port, [encodeQuery('n1.node.cairn', RecordType.TXT)])
    expect(decodeAnswer(udp).answers).toEqual(decodeAnswer(tcp!).answers)
  })
})

describe.skipIf(!hasDig)('dig against the server', () => {
  it('sees the TC bit over UDP without EDNS0, and at most 512 bytes', async () => {
    const out = await dig('+noedns', '+ignore', 'big.service.cairn', 'A')
    expect(out).toMatch(/flags: qr aa tc rd;/)
    const size = /MSG SIZE\s+rcvd: (\d+)/.exec(out)
    expect(Number(size?.[1])).toBeLessThanOrEqual(512)
  })

  it('gets the full answer over +tcp', async () => {
    const out = await dig('+tcp', 'big.service.cairn', 'A')
    expect(out).toMatch(/flags: qr aa rd;/)
    expect(out).toContain(`ANSWER: ${bigCount},`)
  })

  it('gets an answer sized to +bufsize (EDNS0), with our OPT', async () => {
    const out = await dig('+bufsize=1500', '+ignore', 'big.service.cairn', 'A')
    expect(out).toMatch(/flags: qr aa tc rd;/)
    expect(out).toMatch(/EDNS: version: 0, flags:; udp: 4096/)
    const size = Number(/MSG SIZE\s+rcvd: (\d+)/.exec(out)?.[1])
    expect(size).toBeLessThanOrEqual(1500)
    expect(size).toBeGreaterThan(1500 - 16)
  })

  it('sees the SOA in the authority section of NXDOMAIN and NODATA', async () => {
    const nxdomain = await dig('nope.service.cairn', 'A')
    expect(nxdomain).toContain('status: NXDOMAIN')
    expect(nxdomain).toMatch(
      /AUTHORITY SECTION:\ncairn\.\s+0\s+IN\s+SOA\s+ns\.cairn\. hostmaster\.cairn\. \d+ 3600 600 86400 0/,
    )
    const nodata = await dig('db.service.cairn', 'A')
    expect(nodata).toContain('status: NOERROR')
    expect(nodata).toContain('ANSWER: 0, AUTHORITY: 1')
  })

  it('gets SRV records with their addresses in the additional section', async () => {
    const out = await dig('+tcp', '_web._tcp.service.cairn', 'SRV')
    expect(out).toMatch(/_web\._tcp\.service\.cairn\.\s+0\s+IN\s+SRV\s+1 1 8081 n1\.node\.cairn\./)
    expect(out).toMatch(/ADDITIONAL SECTION:[\s\S]*n1\.node\.cairn\.\s+0\s+IN\s+A\s+10\.0\.0\.1/)
  })
})

describe('lifecycle', () => {
  it('closes both sockets; a second server can take the port', async () => {
    const other = new DnsServer(sampleView())
    const otherPort = await other.listen('127.0.0.1', 0)
    await other.close()
    const again = new DnsServer(sampleView())
    expect(await again.listen('127.0.0.1', otherPort)).toBe(otherPort)
    await again.close()
  })
})
