/**
 * validateMessage: the gate between untrusted bytes and the Raft core.
 *
 * A pure function from any decoded value to a well-formed Message or undefined. It never throws on
 * plain data (what msgpackr produces: objects, arrays, strings, numbers, bigints, booleans, null,
 * undefined, Uint8Arrays, Dates, Sets, Errors). What "well-formed" means, for every message type:
 *   - `type` is one of the Message union's types, and every field of that type is present with its
 *     type: counts (index, term, commit, ...) are non-negative safe integers; node ids (from, to,
 *     transferee, voters, learners, a conf change's nodeId) are positive safe integers; flags are
 *     booleans; `ctx` is a string; bytes (entry data, conf change context, snapshot data) are
 *     Uint8Arrays (a Buffer is one).
 *   - entries: an array of { index, term, type: 'normal' | 'conf', data, change }, with `change`
 *     present exactly when type is 'conf'. In an 'app' they follow its `index` contiguously
 *     (entries[i].index === index + 1 + i), as the core's log requires.
 *   - snapshot: { meta: { index, term, confState: { voters, learners } }, data }.
 * The result is a fresh object holding only the known fields (unknown fields are dropped, so
 * nothing a peer adds reaches the core); byte arrays are passed through, not copied.
 *
 * Checks that need the receiver's state (is the term current, does the append conflict with
 * committed entries, is a heartbeat's commit within our log) are the core's job, not this one's.
 */
import type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  Message,
  NodeId,
  Snapshot,
  SnapshotMeta,
} from '../core/types.ts'

type Fields = { readonly [key: string]: unknown }

function isFields(x: unknown): x is Fields {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array)
}

/** A non-negative safe integer: indexes, terms, counts, lengths. */
export function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

export function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0
}

function isBytes(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array
}

const confChangeTypes: ReadonlySet<unknown> = new Set<ConfChangeType>([
  'addVoter',
  'addLearner',
  'removeNode',
])

function validateConfChange(x: unknown): ConfChange | undefined {
  if (!isFields(x) || !confChangeTypes.has(x.type) || !isNodeId(x.nodeId)) return undefined
  const change: ConfChange = { type: x.type as ConfChangeType, nodeId: x.nodeId }
  if (x.context !== undefined) {
    if (!isBytes(x.context)) return undefined
    change.context = x.context
  }
  return change
}

function validateEntry(x: unknown): Entry | undefined {
  if (!isFields(x) || !isCount(x.index) || !isCount(x.term) || !isBytes(x.data)) return undefined
  if (x.type === 'normal') {
    if (x.change !== undefined) return undefined
    return { index: x.index, term: x.term, type: 'normal', data: x.data }
  }
  if (x.type !== 'conf') return undefined
  const change = validateConfChange(x.change)
  if (change === undefined) return undefined
  return { index: x.index, term: x.term, type: 'conf', data: x.data, change }
}

function validateEntries(x: unknown): Entry[] | undefined {
  if (!Array.isArray(x)) return undefined
  const entries: Entry[] = new Array(x.length)
  for (let i = 0; i < x.length; i++) {
    const entry = validateEntry(x[i])
    if (entry === undefined) return undefined
    entries[i] = entry
  }
  return entries
}

function followsContiguously(index: number, entries: readonly Entry[]): boolean {
  for (let i = 0; i < entries.length; i++) if ((entries[i] as Entry).index !== index + 1 + i) return false
  return true
}

function validateNodeIds(x: unknown): NodeId[] | undefined {
  if (!Array.isArray(x)) return undefined
  for (let i = 0; i < x.length; i++) if (!isNodeId(x[i])) return undefined
  return x.slice() as NodeId[]
}

function validateConfState(x: unknown): ConfState | undefined {
  if (!isFields(x)) return undefined
  const voters = validateNodeIds(x.voters)
  const learners = validateNodeIds(x.learners)
  if (voters === undefined || learners === undefined) return undefined
  return { voters, learners }
}

export function validateSnapshotMeta(x: unknown): SnapshotMeta | undefined {
  if (!isFields(x) || !isCount(x.index) || !isCount(x.term)) return undefined
  const confState = validateConfState(x.confState)
  if (confState === undefined) return undefined
  return { index: x.index, term: x.term, confState }
}

function validateSnapshot(x: unknown): Snapshot | undefined {
  if (!isFields(x) || !isBytes(x.data)) return undefined
  const meta = validateSnapshotMeta(x.meta)
  return meta === undefined ? undefined : { meta, data: x.data }
}

export function validateMessage(x: unknown): Message | undefined {
  if (!isFields(x) || !isNodeId(x.from) || !isNodeId(x.to) || !isCount(x.term)) return undefined
  const { from, to, term } = x
  switch (x.type) {
    case 'app': {
      if (!isCount(x.index) || !isCount(x.logTerm) || !isCount(x.commit)) return undefined
      const entries = validateEntries(x.entries)
      if (entries === undefined || !followsContiguously(x.index, entries)) return undefined
      const app: Message = {
        type: 'app',
        from,
        to,
        term,
        index: x.index,
        logTerm: x.logTerm,
        entries,
        commit: x.commit,
      }
      if (x.commitOnly === true) app.commitOnly = true
      return app
    }
    case 'appResp':
      if (!isCount(x.index) || typeof x.reject !== 'boolean' || !isCount(x.rejectHint) || !isCount(x.logTerm))
        return undefined
      return {
        type: 'appResp',
        from,
        to,
        term,
        index: x.index,
        reject: x.reject,
        rejectHint: x.rejectHint,
        logTerm: x.logTerm,
      }
    case 'vote':
    case 'preVote':
      if (!isCount(x.lastLogIndex) || !isCount(x.lastLogTerm) || typeof x.force !== 'boolean')
        return undefined
      return {
        type: x.type,
        from,
        to,
        term,
        lastLogIndex: x.lastLogIndex,
        lastLogTerm: x.lastLogTerm,
        force: x.force,
      }
    case 'voteResp':
    case 'preVoteResp':
      if (typeof x.reject !== 'boolean') return undefined
      return { type: x.type, from, to, term, reject: x.reject }
    default:
      return validateOtherMessage(x, from, to, term)
  }
}

/** The second half of validateMessage's switch, split to keep functions short. */
function validateOtherMessage(x: Fields, from: NodeId, to: NodeId, term: number): Message | undefined {
  switch (x.type) {
    case 'heartbeat':
      if (!isCount(x.commit) || !isCount(x.readRound)) return undefined
      return { type: 'heartbeat', from, to, term, commit: x.commit, readRound: x.readRound }
    case 'heartbeatResp':
      if (!isCount(x.readRound)) return undefined
      return { type: 'heartbeatResp', from, to, term, readRound: x.readRound }
    case 'snap': {
      const snapshot = validateSnapshot(x.snapshot)
      return snapshot === undefined ? undefined : { type: 'snap', from, to, term, snapshot }
    }
    case 'prop': {
      const entries = validateEntries(x.entries)
      return entries === undefined ? undefined : { type: 'prop', from, to, term, entries }
    }
    case 'readIndex':
      if (typeof x.ctx !== 'string') return undefined
      return { type: 'readIndex', from, to, term, ctx: x.ctx }
    case 'readIndexResp':
      if (typeof x.ctx !== 'string' || !isCount(x.index)) return undefined
      return { type: 'readIndexResp', from, to, term, ctx: x.ctx, index: x.index }
    case 'timeoutNow':
      return { type: 'timeoutNow', from, to, term }
    case 'transferLeader':
      if (!isNodeId(x.transferee)) return undefined
      return { type: 'transferLeader', from, to, term, transferee: x.transferee }
    default:
      return undefined
  }
}
