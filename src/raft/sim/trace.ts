/**
 * The run's recent history: a ring of the last `capacity` events, formatted only when printed (a
 * violation, or --trace, which streams every event to a sink as it happens).
 *
 * Invariant: events are stored in the order they happened; the ring never holds more than
 * `capacity` of them.
 */
import type { Message, NodeId, Ready } from '../core/types.ts'

export type TraceKind = 'deliver' | 'ready' | 'note'

interface TraceEvent {
  tick: number
  node: NodeId
  kind: TraceKind
  detail: Message | Ready | string
}

/** Events printed with a violation. */
export const traceEventsMax = 30

export class Trace {
  readonly #capacity: number
  readonly #ring: (TraceEvent | undefined)[]
  #next = 0
  readonly #sink: ((line: string) => void) | undefined

  constructor(capacity = traceEventsMax, sink?: (line: string) => void) {
    this.#capacity = capacity
    this.#ring = new Array<TraceEvent | undefined>(capacity)
    this.#sink = sink
  }

  deliver(tick: number, m: Message): void {
    this.#add({ tick, node: m.to, kind: 'deliver', detail: m })
  }

  ready(tick: number, node: NodeId, rd: Ready): void {
    this.#add({ tick, node, kind: 'ready', detail: rd })
  }

  note(tick: number, node: NodeId, text: string): void {
    this.#add({ tick, node, kind: 'note', detail: text })
  }

  /** The stored events, oldest first, formatted. */
  lines(): string[] {
    const out: string[] = []
    for (let i = 0; i < this.#capacity; i++) {
      const event = this.#ring[(this.#next + i) % this.#capacity]
      if (event !== undefined) out.push(formatEvent(event))
    }
    return out
  }

  #add(event: TraceEvent): void {
    this.#ring[this.#next] = event
    this.#next = (this.#next + 1) % this.#capacity
    if (this.#sink !== undefined) this.#sink(formatEvent(event))
  }
}

function formatEvent(event: TraceEvent): string {
  const head = `t${String(event.tick).padStart(5)} n${event.node}`
  switch (event.kind) {
    case 'deliver':
      return `${head} <- ${formatMessage(event.detail as Message)}`
    case 'ready':
      return `${head} ready ${formatReady(event.detail as Ready)}`
    case 'note':
      return `${head} ${event.detail as string}`
  }
}

export function formatMessage(m: Message): string {
  const head = `${m.from}>${m.to} ${m.type} t${m.term}`
  switch (m.type) {
    case 'app':
      return `${head} prev ${m.index}/${m.logTerm} +${m.entries.length} commit ${m.commit}`
    case 'appResp':
      return m.reject
        ? `${head} reject ${m.index} hint ${m.rejectHint}/${m.logTerm}`
        : `${head} ok ${m.index}`
    case 'vote':
    case 'preVote':
      return `${head} last ${m.lastLogIndex}/${m.lastLogTerm}${m.force ? ' force' : ''}`
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'reject' : 'grant'}`
    case 'heartbeat':
      return `${head} commit ${m.commit} round ${m.readRound}`
    case 'heartbeatResp':
      return `${head} round ${m.readRound}`
    case 'snap':
      return `${head} snapshot ${m.snapshot.meta.index}/${m.snapshot.meta.term}`
    case 'prop':
      return `${head} +${m.entries.length}`
    case 'readIndex':
      return `${head} ${m.ctx}`
    case 'readIndexResp':
      return `${head} ${m.ctx} index ${m.index}`
    case 'timeoutNow':
      return head
    case 'transferLeader':
      return `${head} to ${m.transferee}`
  }
}

function formatReady(rd: Ready): string {
  const parts: string[] = []
  if (rd.softState) parts.push(`${rd.softState.role} (leader ${rd.softState.leader})`)
  if (rd.hardState) parts.push(`hs t${rd.hardState.term} v${rd.hardState.vote} c${rd.hardState.commit}`)
  if (rd.snapshot) parts.push(`snapshot ${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`)
  if (rd.entries.length > 0) parts.push(`persist ${spanOf(rd.entries)}`)
  if (rd.committedEntries.length > 0) parts.push(`apply ${spanOf(rd.committedEntries)}`)
  if (rd.messages.length > 0) parts.push(`send ${rd.messages.length}`)
  if (rd.readStates.length > 0)
    parts.push(`reads ${rd.readStates.map((r) => `${r.ctx}@${r.index}`).join(',')}`)
  return parts.join(', ')
}

function spanOf(entries: readonly { index: number; term: number }[]): string {
  const first = entries[0] as { index: number; term: number }
  const last = entries[entries.length - 1] as { index: number; term: number }
  return first === last
    ? `${first.index}/${first.term}`
    : `${first.index}/${first.term}..${last.index}/${last.term}`
}
