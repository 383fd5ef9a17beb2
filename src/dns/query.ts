/**
 * Decoding a query: a strict, bounded reader of the only message shape a stub resolver sends, one
 * question and at most a few additional records (an EDNS0 OPT).
 *
 * Why not dns2's Packet.parse: it reads bit by bit and retries each of the four 16-bit section
 * counts on failure, so one 12-byte header with every count at 65535 costs about 2 s of CPU
 * (measured on Node 20); and it swallows errors, so it cannot tell FORMERR from a good query.
 * This reader touches each byte at most once and stops at the first fault.
 *
 * Outcomes: `drop` for what must get no answer at all (shorter than a header, longer than
 * queryBytesMax, or a response: answering responses would let two servers loop); `error` with an
 * rcode (FORMERR, NOTIMP) for a header we can answer; `query` for a well-formed question.
 * Question names may not use compression (the only thing before them is the header), labels are
 * at most 63 bytes and the whole name at most 255 (RFC 1035 §2.3.4), so a name costs O(255).
 */
import { queryAdditionalsMax, queryBytesMax, questionsMax } from './limits.ts'
import { Rcode, RecordType } from './wire.ts'

export const headerBytes = 12
const nameBytesMax = 255

export interface Question {
  /** The name exactly as sent (wire labels with the final zero byte), echoed in the answer. */
  readonly nameWire: Buffer
  /** The labels, lower-cased ASCII, decoded as latin1 so that every byte maps to one character. */
  readonly labels: readonly string[]
  readonly type: number
  readonly class: number
  /** Name, type and class exactly as sent: the question section of the answer. */
  readonly wire: Buffer
}

export interface Edns {
  /** The requester's UDP payload size (the OPT record's class field), not yet clamped. */
  readonly udpPayloadBytes: number
  readonly version: number
}

export type Decoded =
  | { readonly kind: 'drop'; readonly reason: string }
  | {
      readonly kind: 'error'
      readonly id: number
      readonly rd: boolean
      readonly rcode: number
      readonly reason: string
    }
  | {
      readonly kind: 'query'
      readonly id: number
      readonly rd: boolean
      readonly question: Question
      readonly edns: Edns | null
    }

export function decodeQuery(bytes: Buffer): Decoded {
  if (bytes.length < headerBytes) return { kind: 'drop', reason: 'shorter than a header' }
  if (bytes.length > queryBytesMax) return { kind: 'drop', reason: 'longer than queryBytesMax' }
  const id = bytes.readUInt16BE(0)
  const flags = bytes.readUInt16BE(2)
  if ((flags & 0x8000) !== 0) return { kind: 'drop', reason: 'a response, not a query' }
  const rd = (flags & 0x0100) !== 0
  const fail = (rcode: number, reason: string): Decoded => ({ kind: 'error', id, rd, rcode, reason })
  const opcode = (flags >> 11) & 0xf
  if (opcode !== 0) return fail(Rcode.NOTIMP, `opcode ${opcode}`)
  const qdcount = bytes.readUInt16BE(4)
  const ancount = bytes.readUInt16BE(6)
  const nscount = bytes.readUInt16BE(8)
  const arcount = bytes.readUInt16BE(10)
  if (qdcount !== questionsMax) return fail(Rcode.FORMERR, `${qdcount} questions`)
  if (ancount !== 0 || nscount !== 0) return fail(Rcode.FORMERR, 'answer or authority records in a query')
  if (arcount > queryAdditionalsMax) return fail(Rcode.FORMERR, `${arcount} additional records`)

  const name = readQuestionName(bytes, headerBytes)
  if (typeof name === 'string') return fail(Rcode.FORMERR, name)
  const questionEnd = name.end + 4
  if (questionEnd > bytes.length) return fail(Rcode.FORMERR, 'question cut short')
  const question: Question = {
    nameWire: bytes.subarray(headerBytes, name.end),
    labels: name.labels,
    type: bytes.readUInt16BE(name.end),
    class: bytes.readUInt16BE(name.end + 2),
    wire: bytes.subarray(headerBytes, questionEnd),
  }
  const edns = readAdditionals(bytes, questionEnd, arcount)
  if (typeof edns === 'string') return fail(Rcode.FORMERR, edns)
  return { kind: 'query', id, rd, question, edns }
}

function readQuestionName(bytes: Buffer, start: number): { labels: string[]; end: number } | string {
  const labels: string[] = []
  let at = start
  for (;;) {
    if (at >= bytes.length) return 'name cut short'
    const length = bytes[at]!
    if ((length & 0xc0) !== 0) return 'compressed or reserved label type in the question'
    if (at + 1 + length - start > nameBytesMax) return 'name longer than 255 bytes'
    if (length === 0) return { labels, end: at + 1 }
    if (at + 1 + length > bytes.length) return 'label cut short'
    labels.push(bytes.toString('latin1', at + 1, at + 1 + length).toLowerCase())
    at += 1 + length
  }
}

/** Walks the additional records; returns the OPT (or null), or why the section is malformed. */
function readAdditionals(bytes: Buffer, start: number, count: number): Edns | null | string {
  let at = start
  let edns: Edns | null = null
  for (let i = 0; i < count; i++) {
    const nameEnd = skipName(bytes, at)
    if (nameEnd < 0) return 'additional record name malformed'
    if (nameEnd + 10 > bytes.length) return 'additional record cut short'
    const type = bytes.readUInt16BE(nameEnd)
    const rdataBytes = bytes.readUInt16BE(nameEnd + 8)
    const end = nameEnd + 10 + rdataBytes
    if (end > bytes.length) return 'additional record data cut short'
    if (type === RecordType.OPT) {
      if (edns !== null) return 'more than one OPT record'
      if (nameEnd !== at + 1) return 'OPT record not owned by the root'
      edns = { udpPayloadBytes: bytes.readUInt16BE(nameEnd + 2), version: bytes[nameEnd + 5]! }
    }
    at = end
  }
  return edns
}

/** The offset after a possibly compressed name (a pointer ends it; it is not followed), or -1. */
function skipName(bytes: Buffer, start: number): number {
  let at = start
  while (at < bytes.length && at - start < nameBytesMax) {
    const length = bytes[at]!
    if (length === 0) return at + 1
    if ((length & 0xc0) === 0xc0) return at + 2 <= bytes.length ? at + 2 : -1
    if ((length & 0xc0) !== 0) return -1
    at += 1 + length
  }
  return -1
}
