/**
 * The description of a member carried in a membership change's `context` (opaque to the core).
 * The node driver reads it to learn peer addresses; the state machine records it for member lists.
 * Decoding is untrusted-input safe: anything malformed is refused with a typed error.
 */
import { pack, unpack } from 'msgpackr'
import { CairnError } from '../errors.ts'

export interface MemberContext {
  name: string
  peerUrls: string[]
  clientUrls: string[]
}

/** Limits on what one member description may hold (the kv state machine checks the same). */
export const memberContextLimits = {
  memberNameBytesMax: 256,
  memberUrlsMax: 16,
  memberUrlBytesMax: 1024,
} as const
const { memberNameBytesMax, memberUrlsMax, memberUrlBytesMax } = memberContextLimits

export function encodeMemberContext(member: MemberContext): Uint8Array {
  return pack({ name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls })
}

export function decodeMemberContext(bytes: Uint8Array): MemberContext {
  let value: unknown
  try {
    value = unpack(bytes)
  } catch {
    throw new CairnError('MEMBER_CONTEXT_INVALID', 'not msgpack')
  }
  if (typeof value !== 'object' || value === null)
    throw new CairnError('MEMBER_CONTEXT_INVALID', 'not an object')
  const { name, peerUrls, clientUrls } = value as Record<string, unknown>
  if (typeof name !== 'string' || Buffer.byteLength(name) > memberNameBytesMax) {
    throw new CairnError('MEMBER_CONTEXT_INVALID', 'bad name')
  }
  return { name, peerUrls: checkUrls(peerUrls, 'peerUrls'), clientUrls: checkUrls(clientUrls, 'clientUrls') }
}

function checkUrls(urls: unknown, field: string): string[] {
  if (!Array.isArray(urls) || urls.length > memberUrlsMax)
    throw new CairnError('MEMBER_CONTEXT_INVALID', field)
  for (const url of urls) {
    if (typeof url !== 'string' || url.length > memberUrlBytesMax) {
      throw new CairnError('MEMBER_CONTEXT_INVALID', field)
    }
  }
  return urls as string[]
}

/** Parses a peer URL (`http://host:port` or `host:port`) into a TCP address. */
export function peerAddress(url: string): { host: string; port: number } | undefined {
  const match = /^(?:[a-z]+:\/\/)?(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port < 1 || port > 65535) return undefined
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
}
