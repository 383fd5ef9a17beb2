/**
 * The DNS front end's limits and defaults, and the validation of its options.
 *
 * Every limit is named here with its default and documented in docs/dns.md. Input past a limit is
 * answered with FORMERR or dropped (see query.ts); it never grows a buffer or a map without bound.
 * Options are checked once, at construction: a bad value is a CONFIG_INVALID naming the option.
 */
import { CairnError } from '../errors.ts'

/** A query (UDP datagram or TCP message) longer than this is dropped unread. Queries are small. */
export const queryBytesMax = 512
/** Exactly one question per query, as every real resolver sends (RFC 9619). */
export const questionsMax = 1
/** Additional records in a query (an OPT, maybe a TSIG or cookie carrier); more is FORMERR. */
export const queryAdditionalsMax = 2
/** UDP answer size without EDNS0 (RFC 1035 §4.2.1). */
export const udpPayloadBytesDefault = 512
/** The largest UDP answer we send whatever the client advertises; also what our OPT advertises. */
export const udpPayloadBytesMax = 4096
/** A TCP answer is at most one DNS message (RFC 1035 §4.2.2: 16-bit length prefix). */
export const tcpMessageBytesMax = 65535
/** Open TCP connections; a connection beyond it is closed at once. */
export const tcpConnectionsMax = 1024
/** Bytes queued for writing on one TCP connection; a client that does not read is disconnected. */
export const tcpWriteBytesMax = 1 << 20
/** A TCP connection idle this long is closed (RFC 7766 §6.2.3 suggests seconds, not minutes). */
export const tcpIdleMsDefault = 10_000
/** Cached questions; the oldest entry is evicted first. The cache is emptied on every revision. */
export const cacheEntriesMaxDefault = 10_000

export interface SoaOptions {
  /** Seconds. Defaults follow Consul: 3600, 600, 86400, 0. */
  refresh: number
  retry: number
  expire: number
  /** The negative-caching TTL (RFC 2308), also the SOA record's own TTL. */
  minimum: number
}

export interface DnsOptions {
  /** The zone served, without the trailing dot. Default `cairn`; `consul` for drop-in use. */
  domain: string
  /** Leave out instances whose status is `warning` too (the future `--dns-only-passing`). */
  onlyPassing: boolean
  /** TTL, in seconds, of service records (A/AAAA/SRV for `*.service.*`). Default 0, as Consul. */
  serviceTtlS: number
  /** TTL, in seconds, of node records (A/AAAA/TXT for `*.node.*`, `*.addr.*`). Default 0. */
  nodeTtlS: number
  soa: SoaOptions
  cacheEntriesMax: number
  tcpIdleMs: number
}

export const dnsOptionsDefault: DnsOptions = {
  domain: 'cairn',
  onlyPassing: false,
  serviceTtlS: 0,
  nodeTtlS: 0,
  soa: { refresh: 3600, retry: 600, expire: 86400, minimum: 0 },
  cacheEntriesMax: cacheEntriesMaxDefault,
  tcpIdleMs: tcpIdleMsDefault,
}

const u32Max = 0x7fffffff

/** Fills defaults and checks every value; throws CONFIG_INVALID naming the bad option. */
export function resolveDnsOptions(
  given: Partial<Omit<DnsOptions, 'soa'>> & { soa?: Partial<SoaOptions> } = {},
): DnsOptions {
  const options: DnsOptions = {
    ...dnsOptionsDefault,
    ...given,
    soa: { ...dnsOptionsDefault.soa, ...given.soa },
  }
  options.domain = options.domain.replace(/\.$/, '').toLowerCase()
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(options.domain)) {
    throw new CairnError('CONFIG_INVALID', `dns domain: not a domain name: ${given.domain}`)
  }
  if (options.domain.length > 200)
    throw new CairnError('CONFIG_INVALID', 'dns domain: longer than 200 characters')
  const seconds: [string, number][] = [
    ['dns serviceTtlS', options.serviceTtlS],
    ['dns nodeTtlS', options.nodeTtlS],
    ['dns soa.refresh', options.soa.refresh],
    ['dns soa.retry', options.soa.retry],
    ['dns soa.expire', options.soa.expire],
    ['dns soa.minimum', options.soa.minimum],
  ]
  for (const [name, value] of seconds) {
    if (!Number.isInteger(value) || value < 0 || value > u32Max) {
      throw new CairnError('CONFIG_INVALID', `${name}: expected whole seconds in 0..${u32Max}, got ${value}`)
    }
  }
  if (!Number.isInteger(options.cacheEntriesMax) || options.cacheEntriesMax < 0) {
    throw new CairnError('CONFIG_INVALID', `dns cacheEntriesMax: expected an integer >= 0`)
  }
  if (!Number.isInteger(options.tcpIdleMs) || options.tcpIdleMs < 1) {
    throw new CairnError('CONFIG_INVALID', `dns tcpIdleMs: expected an integer >= 1`)
  }
  return options
}
