/**
 * The responder: query bytes in, answer bytes out (or null: send nothing). No sockets, no
 * timers, no awaits: one call reads the view once and is done, so an answer is always built
 * from one revision. The server (server.ts) owns the sockets and passes the transport.
 *
 * Per query: decode strictly (query.ts), look the question up in the cache or build the answer
 * from the view (answer.ts), shuffle the records when the answer asks for it, lay the message out
 * within the transport's budget (response.ts). The budget: 512 bytes over UDP without EDNS0, the
 * requester's EDNS0 size clamped to 512..udpPayloadBytesMax with it, tcpMessageBytesMax on TCP.
 * An OPT with a version other than 0 gets BADVERS (RFC 6891 §6.1.3) and no answer records.
 * A name with labels that are not ours to answer (outside the domain) is REFUSED: no recursors.
 */
import type { CatalogView } from '../catalog/view.ts'
import { type Answer, buildAnswer, notImplemented, type RecordGroup, refused } from './answer.ts'
import { AnswerCache } from './cache.ts'
import { type DnsOptions, tcpMessageBytesMax, udpPayloadBytesDefault, udpPayloadBytesMax } from './limits.ts'
import { parseName } from './names.ts'
import { decodeQuery, type Edns, type Question } from './query.ts'
import { layOut, optRecord } from './response.ts'
import { RecordClass, RecordType } from './wire.ts'

export type Transport = 'udp' | 'tcp'

export interface ResponderStats {
  queries: number
  dropped: number
  /** FORMERR, NOTIMP and BADVERS answers: the query itself was at fault. */
  malformed: number
  truncated: number
}

/** BADVERS is rcode 16: 1 in the OPT's extended-rcode byte, 0 in the header. */
const badVersExtendedRcode = 1

export class Responder {
  readonly #view: CatalogView
  readonly #options: DnsOptions
  readonly #domainLabels: readonly string[]
  readonly #random: () => number
  readonly cache: AnswerCache
  readonly stats: ResponderStats = { queries: 0, dropped: 0, malformed: 0, truncated: 0 }

  /** `random` returns [0, 1); injectable so tests can fix the shuffle. */
  constructor(view: CatalogView, options: DnsOptions, random: () => number = Math.random) {
    this.#view = view
    this.#options = options
    this.#domainLabels = options.domain.split('.')
    this.#random = random
    this.cache = new AnswerCache(options.cacheEntriesMax)
  }

  respond(bytes: Buffer, transport: Transport): Buffer | null {
    this.stats.queries++
    const decoded = decodeQuery(bytes)
    if (decoded.kind === 'drop') {
      this.stats.dropped++
      return null
    }
    const empty: Answer = { rcode: 0, authoritative: false, groups: [], authority: [], shuffle: false }
    if (decoded.kind === 'error') {
      this.stats.malformed++
      const answer = { ...empty, rcode: decoded.rcode }
      const { id, rd } = decoded
      return layOut({
        id,
        rd,
        question: null,
        answer,
        groups: [],
        opt: null,
        budgetBytes: udpPayloadBytesDefault,
      }).bytes
    }
    const { id, rd, question, edns } = decoded
    const budgetBytes = transport === 'tcp' ? tcpMessageBytesMax : udpBudget(edns)
    if (edns !== null && edns.version !== 0) {
      this.stats.malformed++
      const opt = optRecord(udpPayloadBytesMax, badVersExtendedRcode)
      return layOut({ id, rd, question, answer: empty, groups: [], opt, budgetBytes }).bytes
    }
    const answer = this.#answer(decoded.question)
    const groups = answer.shuffle ? this.#shuffled(answer.groups) : answer.groups
    const opt = edns === null ? null : optRecord(udpPayloadBytesMax)
    const laid = layOut({ id, rd, question, answer, groups, opt, budgetBytes })
    if (laid.truncated) this.stats.truncated++
    return laid.bytes
  }

  #answer(question: Question): Answer {
    if (question.class !== RecordClass.IN && question.class !== RecordClass.ANY) return refused()
    if (question.type === RecordType.AXFR || question.type === RecordType.IXFR) return notImplemented()
    const revision = this.#view.revision
    const cached = this.cache.get(question, revision)
    if (cached !== undefined) return cached
    const lookup = parseName(question.labels, this.#domainLabels)
    const answer = buildAnswer(this.#view, this.#options, lookup, question.type)
    this.cache.set(question, revision, answer)
    return answer
  }

  /** Fisher–Yates on a copy: the cached answer keeps its order. */
  #shuffled(groups: readonly RecordGroup[]): RecordGroup[] {
    const copy = [...groups]
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1))
      const swap = copy[i]!
      copy[i] = copy[j]!
      copy[j] = swap
    }
    return copy
  }
}

function udpBudget(edns: Edns | null): number {
  if (edns === null) return udpPayloadBytesDefault
  return Math.min(udpPayloadBytesMax, Math.max(udpPayloadBytesDefault, edns.udpPayloadBytes))
}
