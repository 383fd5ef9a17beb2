/**
 * The cluster's members as the state machine records them (for /v2/members and `cairn member list`).
 *
 * A conf entry's opaque `context` carries the member's attributes {name, peerUrls, clientUrls},
 * msgpack-encoded with encodeMemberContext. Applying the entry records the change: addVoter adds
 * the member or promotes a learner, addLearner adds a learner, removeNode forgets it. Founders'
 * bootstrap entries carry a context when the driver gives one (raft/core/bootstrap.ts `contextOf`);
 * a member recorded without one, or whose addresses change, is updated through a `member.update`
 * command. Member changes use no keyspace revision (etcd 2.x
 * stored members as keys and so spent indexes on them; Cairn does not).
 *
 * Invariants: ids are positive safe integers; attributes are within the kvLimits member limits;
 * a context that does not decode is recorded as empty attributes (deterministic on every member,
 * never a crash).
 */
import type { ConfChange } from '../raft/core/types.ts'
import {
  decodeMemberContext as decodeContext,
  encodeMemberContext as encodeContext,
} from '../raft/member-context.ts'
import { FieldReader, stringList } from './field-reader.ts'
import { kvLimits } from './limits.ts'

/**
 * A member id as operators see it (hex, as etcd shows ids: 1 to 14 digits, so it fits a safe
 * integer), or undefined for anything else. The one parser for ids in URLs, queries and arguments.
 */
export function memberIdFromHex(text: string): number | undefined {
  return /^[0-9a-fA-F]{1,14}$/.test(text) ? Number.parseInt(text, 16) : undefined
}

export interface MemberAttributes {
  name: string
  peerUrls: string[]
  clientUrls: string[]
}

export interface Member extends MemberAttributes {
  id: number
  isLearner: boolean
}

/** The one member-context codec is the raft layer's (the driver reads peer addresses from it). */
export function encodeMemberContext(attributes: MemberAttributes): Uint8Array {
  return encodeContext(readAttributes(attributes, 'member context', 0))
}

/** The attributes in a conf entry's context, or undefined when it is absent or malformed. */
export function decodeMemberContext(context: Uint8Array | undefined): MemberAttributes | undefined {
  if (context === undefined || context.byteLength === 0) return undefined
  try {
    return decodeContext(context)
  } catch {
    return undefined
  }
}

/** Reads and bounds member attributes from untrusted data (missing fields are empty). */
export function readAttributes(value: unknown, where: string, index: number): MemberAttributes {
  const reader = new FieldReader(value, where, 'KV_COMMAND_INVALID', index)
  return {
    name: reader.optionalString('name', kvLimits.memberNameBytesMax) ?? '',
    peerUrls: [...stringList(reader, 'peerUrls', kvLimits.memberUrlsMax, kvLimits.memberUrlBytesMax)],
    clientUrls: [...stringList(reader, 'clientUrls', kvLimits.memberUrlsMax, kvLimits.memberUrlBytesMax)],
  }
}

export class MemberTable {
  #members = new Map<number, Member>()

  get size(): number {
    return this.#members.size
  }

  get(id: number): Member | undefined {
    return this.#members.get(id)
  }

  /** Records an applied membership change; returns the member as it now is (undefined if removed). */
  applyConfChange(change: ConfChange): Member | undefined {
    const attributes = decodeMemberContext(change.context)
    const existing = this.#members.get(change.nodeId)
    if (change.type === 'removeNode') {
      this.#members.delete(change.nodeId)
      return undefined
    }
    const member: Member = existing ?? {
      id: change.nodeId,
      name: '',
      peerUrls: [],
      clientUrls: [],
      isLearner: change.type === 'addLearner',
    }
    if (change.type === 'addVoter') member.isLearner = false
    if (attributes !== undefined) Object.assign(member, attributes)
    this.#members.set(change.nodeId, member)
    return { ...member }
  }

  /** Sets the given attributes of an existing member; returns it, or undefined if unknown. */
  update(id: number, attributes: Partial<MemberAttributes>): Member | undefined {
    const member = this.#members.get(id)
    if (member === undefined) return undefined
    if (attributes.name !== undefined) member.name = attributes.name
    if (attributes.peerUrls !== undefined) member.peerUrls = [...attributes.peerUrls]
    if (attributes.clientUrls !== undefined) member.clientUrls = [...attributes.clientUrls]
    return { ...member }
  }

  /** Every member, by id (copies). */
  list(): Member[] {
    return [...this.#members.values()].sort((a, b) => a.id - b.id).map((m) => ({ ...m }))
  }

  restore(members: readonly Member[]): void {
    this.#members = new Map(members.map((m) => [m.id, { ...m }]))
  }
}
