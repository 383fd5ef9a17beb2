/**
 * Laying out one DNS message from a question and an Answer, within a byte budget.
 *
 *   header (12) · question (echoed as sent) · answers · authority · additional · OPT (if asked)
 *
 * Truncation, when the message does not fit `budgetBytes` (512 on UDP without EDNS0, the
 * advertised EDNS0 size clamped to 512..udpPayloadBytesMax, 65535 on TCP):
 * - answer records are kept in order while they fit; once one does not, it and all after it are
 *   left out and TC is set, so a client that wants the full set retries over TCP (RFC 1035
 *   §4.2.1, RFC 2181 §9). A partial answer is still a correct subset: clients that ignore TC get
 *   usable records rather than nothing (Consul does the same with `enable_truncate`).
 * - the authority section (an SOA) is all or nothing; leaving it out sets TC.
 * - additional records are best effort: only those of kept answers, deduplicated, while they
 *   fit; leaving them out does not set TC.
 * - the OPT record is reserved first: a client that sent EDNS0 always gets it back.
 * Invariant: the result is never longer than `budgetBytes` (budget >= 512, and a question is at
 * most 259 bytes, so header, question and OPT always fit).
 */
import type { Answer, RecordGroup } from './answer.ts'
import { headerBytes, type Question } from './query.ts'
import { RecordType } from './wire.ts'

/** The OPT record we send: root owner, type 41, our payload size, extended rcode, version 0. */
export function optRecord(udpPayloadBytes: number, extendedRcode = 0): Buffer {
  const opt = Buffer.alloc(11)
  opt.writeUInt16BE(RecordType.OPT, 1)
  opt.writeUInt16BE(udpPayloadBytes, 3)
  opt[5] = extendedRcode
  return opt
}

export interface Layout {
  readonly id: number
  readonly rd: boolean
  /** Null for an answer without a question section (FORMERR, NOTIMP on a header alone). */
  readonly question: Question | null
  readonly answer: Answer
  /** Groups in the order to write them (already shuffled when the answer asks for it). */
  readonly groups: readonly RecordGroup[]
  readonly opt: Buffer | null
  readonly budgetBytes: number
}

export function layOut(layout: Layout): { bytes: Buffer; truncated: boolean } {
  const { answer, question, opt } = layout
  const parts: Buffer[] = []
  let used = headerBytes + (question?.wire.length ?? 0) + (opt?.length ?? 0)
  let truncated = false
  const kept: RecordGroup[] = []
  for (const group of layout.groups) {
    if (used + group.record.length > layout.budgetBytes) {
      truncated = true
      break
    }
    used += group.record.length
    parts.push(group.record)
    kept.push(group)
  }
  let authorityCount = 0
  const authorityBytes = answer.authority.reduce((sum, record) => sum + record.length, 0)
  if (!truncated && used + authorityBytes <= layout.budgetBytes) {
    parts.push(...answer.authority)
    authorityCount = answer.authority.length
    used += authorityBytes
  } else if (answer.authority.length > 0) {
    truncated = true
  }
  const additional = pickExtras(kept, layout.budgetBytes - used)
  parts.push(...additional)
  if (opt !== null) parts.push(opt)

  const header = Buffer.alloc(headerBytes)
  header.writeUInt16BE(layout.id, 0)
  const flags =
    0x8000 | // QR: a response
    (answer.authoritative ? 0x0400 : 0) |
    (truncated ? 0x0200 : 0) |
    (layout.rd ? 0x0100 : 0) |
    (answer.rcode & 0xf)
  header.writeUInt16BE(flags, 2)
  header.writeUInt16BE(question === null ? 0 : 1, 4)
  header.writeUInt16BE(kept.length, 6)
  header.writeUInt16BE(authorityCount, 8)
  header.writeUInt16BE(additional.length + (opt === null ? 0 : 1), 10)
  const questionParts = question === null ? [] : [question.wire]
  return { bytes: Buffer.concat([header, ...questionParts, ...parts]), truncated }
}

function pickExtras(kept: readonly RecordGroup[], roomBytes: number): Buffer[] {
  const seen = new Set<string>()
  const picked: Buffer[] = []
  let room = roomBytes
  for (const group of kept) {
    for (const extra of group.extras) {
      const key = extra.toString('latin1')
      if (seen.has(key) || extra.length > room) continue
      seen.add(key)
      picked.push(extra)
      room -= extra.length
    }
  }
  return picked
}
