/**
 * Watch streams as the watch checker reads them: what a watcher asked for, which events match it,
 * how events are identified and compared, and which write produced a value.
 *
 * A watch's invocation value is a WatchRequest. history.ts names only `fromRevision`; `key` and
 * `recursive` are optional here: the key defaults to the op's `key` (a watch with no key at all
 * watches every key), and `recursive` defaults to true (the key and everything under it, as the
 * runner's watchers follow a directory); `recursive: false` watches that one key only. A `final`
 * op's invocation value may carry the same fields to say what its event list covers (default: the
 * op's key and everything under it, or every key, from its first event's revision on).
 *
 * Keys are compared without leading or trailing slashes ('/a/b' and 'a/b' are the same key). An
 * event is identified by (revision, key): in etcd v2 a revision (modifiedIndex) names one event,
 * and allowing several keys per revision costs nothing. Values: undefined and null are the same.
 */
import type { PairedOp, WatchEvent } from '../history.ts'

export interface WatchRequest {
  fromRevision: number
  key?: string
  recursive?: boolean
}

export interface WatchFilter {
  fromRevision: number
  /** Normalized key; undefined: every key. */
  key: string | undefined
  recursive: boolean
}

export function normalizeKey(key: string): string {
  return key.replace(/^\/+|\/+$/g, '')
}

/** The filter of a watch (or final) invocation; undefined when its value is not a WatchRequest. */
export function filterOf(pair: PairedOp, fromRevisionDefault?: number): WatchFilter | undefined {
  const raw = pair.invoke.value
  const request = typeof raw === 'object' && raw !== null ? (raw as Partial<WatchRequest>) : {}
  const fromRevision = typeof request.fromRevision === 'number' ? request.fromRevision : fromRevisionDefault
  if (fromRevision === undefined) return undefined
  const key = typeof request.key === 'string' ? request.key : pair.invoke.key
  return {
    fromRevision,
    key: key === undefined ? undefined : normalizeKey(key),
    recursive: request.recursive !== false,
  }
}

export function matchesKey(filter: WatchFilter, eventKey: string): boolean {
  if (filter.key === undefined) return true
  const key = normalizeKey(eventKey)
  if (key === filter.key) return true
  return filter.recursive && (filter.key === '' || key.startsWith(`${filter.key}/`))
}

export function matches(filter: WatchFilter, event: WatchEvent): boolean {
  return event.revision >= filter.fromRevision && matchesKey(filter, event.key)
}

export function eventId(event: WatchEvent): string {
  return `${event.revision}\u0000${normalizeKey(event.key)}`
}

export function sameEvent(a: WatchEvent, b: WatchEvent): boolean {
  return (
    a.revision === b.revision &&
    normalizeKey(a.key) === normalizeKey(b.key) &&
    a.action === b.action &&
    (a.value ?? null) === (b.value ?? null)
  )
}

export function isWatchEvent(value: unknown): value is WatchEvent {
  if (typeof value !== 'object' || value === null) return false
  const event = value as Partial<WatchEvent>
  return (
    typeof event.revision === 'number' &&
    typeof event.key === 'string' &&
    typeof event.action === 'string' &&
    (event.value === undefined || event.value === null || typeof event.value === 'string')
  )
}

export function describeEvent(event: WatchEvent): string {
  const value = event.value === undefined || event.value === null ? '' : ` ${JSON.stringify(event.value)}`
  return `${event.action} ${event.key}${value} @${event.revision}`
}

/** Which write/cas operations wrote each value (the value of a write, the new value of a cas). */
export function writesByValue(pairs: readonly PairedOp[]): Map<string, PairedOp[]> {
  const writers = new Map<string, PairedOp[]>()
  for (const pair of pairs) {
    const { f, value } = pair.invoke
    const written = f === 'write' ? value : f === 'cas' && Array.isArray(value) ? value[1] : undefined
    if (typeof written !== 'string') continue
    const list = writers.get(written) ?? []
    list.push(pair)
    writers.set(written, list)
  }
  return writers
}
