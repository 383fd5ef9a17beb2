/**
 * bench/dns-qps/check: before anything is measured, every distinct question of the mixes is asked
 * once of each server, on the mix's transport, and the answer is read back with dns2's decoder
 * (independent of Cairn's encoder) and compared with the zone (zone.ts), not with the other
 * server. A server that answers wrong fails the bench: a fast wrong answer is not a figure.
 *
 * Expected, for `<svc>.service.cairn`: rcode NOERROR, AA; A: exactly the instances' addresses;
 * SRV: exactly `1 1 <port> <node>.node.cairn` per instance, and every A record in the additional
 * section is the right address of a target. Over UDP an answer that does not fit 512 bytes must
 * have TC set and only records of the expected set; otherwise TC must be clear and the set whole.
 * An unknown name: NXDOMAIN, AA, the zone's SOA in the authority section.
 */
import { decodeAnswer, encodeQuery, headerOf, tcpExchange, udpExchange } from '../../src/dns/test-support.ts'
import { Rcode, RecordType } from '../../src/dns/wire.ts'
import type { Mix, Question, Transport } from './mixes.ts'
import { srvTarget, type Zone } from './zone.ts'

export interface CheckSummary {
  /** Distinct questions asked (per transport). */
  questions: number
  truncated: number
  /** Records in the additional section of the big service's SRV answer over TCP (0 if not asked). */
  bigTcpAdditionals: number
  /** The longest answer over TCP, in bytes (0 if no mix uses TCP). */
  tcpAnswerBytesMax: number
}

const exchangeDeadlineMs = 5_000

export async function checkServer(
  system: string,
  port: number,
  zone: Zone,
  mixes: readonly Mix[],
): Promise<CheckSummary> {
  const summary: CheckSummary = { questions: 0, truncated: 0, bigTcpAdditionals: 0, tcpAnswerBytesMax: 0 }
  const seen = new Set<string>()
  for (const mix of mixes) {
    for (const question of mix.questions) {
      const key = `${mix.transport} ${question.type} ${question.name}`
      if (seen.has(key)) continue
      seen.add(key)
      const query = encodeQuery(question.name, RecordType[question.type])
      const bytes =
        mix.transport === 'udp'
          ? await udpExchange(port, query, exchangeDeadlineMs)
          : (await tcpExchange(port, [query], exchangeDeadlineMs))[0]
      if (bytes === undefined) throw new Error(`${system}: no answer over TCP to ${key}`)
      const wrong = wrongness(zone, question, mix.transport, bytes)
      if (wrong !== null) throw new Error(`${system} answers ${key} wrong: ${wrong}`)
      summary.questions++
      if (headerOf(bytes).tc) summary.truncated++
      if (mix.transport === 'tcp')
        summary.tcpAnswerBytesMax = Math.max(summary.tcpAnswerBytesMax, bytes.length)
      if (mix.transport === 'tcp' && question.type === 'SRV' && question.name.startsWith('big.'))
        summary.bigTcpAdditionals = decodeAnswer(bytes).additionals.length
    }
  }
  return summary
}

/** What is wrong with the answer, or null when it is right. */
function wrongness(zone: Zone, question: Question, transport: Transport, bytes: Buffer): string | null {
  const header = headerOf(bytes)
  if (!header.qr || !header.aa) return `flags qr ${header.qr} aa ${header.aa}`
  const packet = decodeAnswer(bytes)
  const service = question.name.toLowerCase().replace(`.service.${zone.domain}`, '')
  const instances = zone.services.get(service)
  if (instances === undefined) {
    if (header.rcode !== Rcode.NXDOMAIN) return `rcode ${header.rcode}, expected NXDOMAIN`
    const soa = packet.authorities[0]
    if (packet.answers.length !== 0 || soa?.type !== RecordType.SOA || soa.name !== zone.domain)
      return 'an NXDOMAIN without the SOA in the authority section, or with answers'
    return null
  }
  if (header.rcode !== Rcode.NOERROR) return `rcode ${header.rcode}, expected NOERROR`
  const expected = new Set(
    instances.map((i) =>
      question.type === 'A' ? i.node.address : `1 1 ${i.port} ${srvTarget(zone, i).toLowerCase()}`,
    ),
  )
  const got = packet.answers.map((r) =>
    question.type === 'A'
      ? String(r.address)
      : `${r.priority} ${r.weight} ${r.port} ${String(r.target).toLowerCase()}`,
  )
  if (packet.answers.some((r) => r.type !== RecordType[question.type] || r.ttl !== 0))
    return 'a record of another type or a TTL other than 0 in the answer section'
  const stray = got.find((g) => !expected.has(g))
  if (stray !== undefined) return `unexpected record ${stray}`
  if (new Set(got).size !== got.length) return 'a record twice'
  const whole = got.length === expected.size
  if (header.tc ? transport === 'tcp' || whole : !whole)
    return `${got.length} of ${expected.size} records with TC ${header.tc} over ${transport}`
  const addressOf = new Map(instances.map((i) => [srvTarget(zone, i).toLowerCase(), i.node.address]))
  for (const extra of packet.additionals) {
    if (extra.type !== RecordType.A) continue
    if (addressOf.get(String(extra.name).toLowerCase()) !== extra.address)
      return `additional ${extra.name} A ${extra.address} is not a target's address`
  }
  return null
}
