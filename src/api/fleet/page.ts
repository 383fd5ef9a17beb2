/**
 * Paged listings over one key range: fleet's `nextPageToken`. A token is opaque to clients; here
 * it is base64url of `{"after": <the last key returned, relative to the prefix>}`, so a page
 * starts exactly after the previous one whatever was written in between (no item is shown twice,
 * none that existed throughout is skipped).
 *
 * Invariants: a page holds at most fleetLimits.pageSize items; each read asks for at most
 * pageScanChunk keys; a malformed token is FLEET_REQUEST_INVALID before anything is read.
 * A token is given whenever the page is full and keys remain, so the last page may be empty.
 */
import { prefixRange } from '../../catalog/records.ts'
import type { KvStore } from '../../kv/kv-store.ts'
import type { KeyValue } from '../../kv/mvcc.ts'
import { invalid } from './http.ts'
import { fleetLimits } from './limits.ts'

export function encodePageToken(after: string): string {
  return Buffer.from(JSON.stringify({ after }), 'utf8').toString('base64url')
}

/** The key a page starts after ('' for the first page). */
export function decodePageToken(token: string | undefined): string {
  if (token === undefined || token === '') return ''
  if (token.length > fleetLimits.pageTokenCharsMax || !/^[A-Za-z0-9_-]+$/.test(token))
    throw invalid('invalid value for nextPageToken')
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    const after = (parsed as { after?: unknown } | null)?.after
    if (typeof after === 'string' && after !== '') return after
  } catch {
    // falls through to the refusal below
  }
  throw invalid('invalid value for nextPageToken')
}

export interface Page<T> {
  items: T[]
  nextPageToken: string | undefined
}

/**
 * One page of the items under `prefix` after the relative key `after`: `pick` turns a key into an
 * item or undefined (left out). Reads in chunks until the page is full or the range ends.
 */
export async function readPage<T>(
  store: Pick<KvStore, 'range'>,
  prefix: string,
  after: string,
  pick: (kv: KeyValue) => T | undefined,
): Promise<Page<T>> {
  const { rangeEnd } = prefixRange(prefix)
  const items: T[] = []
  let from = after === '' ? prefix : `${prefix}${after}\0`
  for (;;) {
    const result = await store.range({ key: from, rangeEnd, limit: fleetLimits.pageScanChunk })
    for (let i = 0; i < result.kvs.length; i++) {
      const kv = result.kvs[i]!
      const item = pick(kv)
      if (item === undefined) continue
      items.push(item)
      if (items.length === fleetLimits.pageSize) {
        const remains = i < result.kvs.length - 1 || result.more
        return { items, nextPageToken: remains ? encodePageToken(kv.key.slice(prefix.length)) : undefined }
      }
    }
    const last = result.kvs.at(-1)
    if (!result.more || last === undefined) return { items, nextPageToken: undefined }
    from = `${last.key}\0`
  }
}
