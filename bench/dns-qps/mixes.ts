/**
 * bench/dns-qps/mixes: the query mixes, one table row each. A mix is a list of questions that
 * the load generator cycles through, on one transport; dnsperf reads it as a file of
 * `<name> <type>` lines, the Node generator as pre-encoded queries. Both servers get the same
 * list. Queries carry no EDNS0 (dnsperf's default without -e), so a UDP answer is at most 512
 * bytes and the big service's SRV answer is truncated (TC) by both servers.
 */
import { bigService, serviceCount } from './zone.ts'

export type QueryType = 'A' | 'SRV'
export type Transport = 'udp' | 'tcp'

export interface Question {
  readonly name: string
  readonly type: QueryType
}

export interface Mix {
  /** The --rows name. */
  readonly key: string
  readonly label: string
  readonly transport: Transport
  readonly questions: readonly Question[]
  /** Share of the questions whose expected rcode is NXDOMAIN (the rest expect NOERROR). */
  readonly nxdomainShare: number
}

/** Unknown names asked in the NXDOMAIN and mixed rows. */
const nxNameCount = 50
/** In the mixed row: one NXDOMAIN question per this many services, one big SRV per bigEvery. */
const nxEvery = 4
const bigEvery = 10

const serviceName = (i: number) => `svc${i}.service.cairn`
const nxName = (i: number) => `nx${i}.service.cairn`
const bigName = `${bigService}.service.cairn`

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1)
}

function mixed(): Question[] {
  const questions: Question[] = []
  for (const i of range(serviceCount)) {
    questions.push({ name: serviceName(i), type: 'A' }, { name: serviceName(i), type: 'SRV' })
    if (i % nxEvery === 0) questions.push({ name: nxName(i), type: 'A' })
    if (i % bigEvery === 0) questions.push({ name: bigName, type: 'SRV' })
  }
  return questions
}

function withShare(mix: Omit<Mix, 'nxdomainShare'>): Mix {
  const nx = mix.questions.filter((q) => q.name.startsWith('nx')).length
  return { ...mix, nxdomainShare: nx / mix.questions.length }
}

const unshared: Omit<Mix, 'nxdomainShare'>[] = [
  {
    key: 'a',
    label: `A, ${serviceCount} services x 3`,
    transport: 'udp',
    questions: range(serviceCount).map((i) => ({ name: serviceName(i), type: 'A' })),
  },
  {
    key: 'srv',
    label: `SRV, ${serviceCount} services x 3`,
    transport: 'udp',
    questions: range(serviceCount).map((i) => ({ name: serviceName(i), type: 'SRV' })),
  },
  {
    key: 'nx',
    label: `NXDOMAIN, ${nxNameCount} names`,
    transport: 'udp',
    questions: range(nxNameCount).map((i) => ({ name: nxName(i), type: 'A' })),
  },
  {
    key: 'big-udp',
    label: 'SRV big (300), UDP, TC',
    transport: 'udp',
    questions: [{ name: bigName, type: 'SRV' }],
  },
  {
    key: 'big-tcp',
    label: 'SRV big (300), TCP',
    transport: 'tcp',
    questions: [{ name: bigName, type: 'SRV' }],
  },
  { key: 'mix', label: 'mix A/SRV/NX/big, UDP', transport: 'udp', questions: mixed() },
]

export const mixes: readonly Mix[] = unshared.map(withShare)

/** The mix as dnsperf's data file. */
export function dnsperfFileText(mix: Mix): string {
  return mix.questions.map((q) => `${q.name} ${q.type}\n`).join('')
}
