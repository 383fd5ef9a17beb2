/**
 * Key paths of the tree: cleaning, validation, parents, hidden names.
 *
 * A clean key is what Go's `path.Clean(path.Join("/", p))` returns (etcd v2 cleans every key that
 * way): absolute, no empty, `.` or `..` segments, no trailing slash; the root is `/`. Every key
 * stored in the keyspace is clean and within kvLimits.keyBytesMax and keySegmentsMax.
 */
import { KvError } from './kv-error.ts'
import { kvLimits, utf8Bytes } from './limits.ts'

export const rootKey = '/'

/** Go's path.Clean(path.Join("/", raw)). */
export function cleanKey(raw: string): string {
  if (isAlreadyClean(raw)) return raw
  const out: string[] = []
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') out.pop()
    else out.push(segment)
  }
  return '/' + out.join('/')
}

/**
 * Whether raw is clean as it is (the common case): one scan and no allocation, where splitting and
 * joining cost about 2 µs per keys request in a CPU profile of local reads (2026-11-26).
 */
function isAlreadyClean(raw: string): boolean {
  if (raw === rootKey) return true
  if (raw.charCodeAt(0) !== 47) return false
  let start = 1
  for (let i = 1; i <= raw.length; i++) {
    if (i < raw.length && raw.charCodeAt(i) !== 47) continue
    const length = i - start
    if (length === 0) return false // '//' or a trailing '/'
    const dot = raw.charCodeAt(start) === 46
    if (dot && (length === 1 || (length === 2 && raw.charCodeAt(start + 1) === 46))) return false
    start = i + 1
  }
  return true
}

export function isCleanKey(key: string): boolean {
  return key === cleanKey(key)
}

/** Segments of a clean key (`/` has none). */
export function segmentCount(key: string): number {
  if (key === rootKey) return 0
  let count = 0
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 47) count++
  return count
}

/** Throws KV_KEY_INVALID unless the clean key is within the key limits. */
export function checkKeyLimits(key: string, index: number): void {
  if (key.length > kvLimits.keyBytesMax || utf8Bytes(key) > kvLimits.keyBytesMax) {
    throw new KvError('KV_KEY_INVALID', `key longer than ${kvLimits.keyBytesMax} bytes`, index)
  }
  if (segmentCount(key) > kvLimits.keySegmentsMax) {
    throw new KvError('KV_KEY_INVALID', `key deeper than ${kvLimits.keySegmentsMax} segments`, index)
  }
}

/** Cleans a key given by a client (etcd v2 style) and checks its limits. */
export function normalizeKey(raw: string, index: number): string {
  const key = cleanKey(raw)
  checkKeyLimits(key, index)
  return key
}

/** The parent of a clean key other than the root. */
export function parentKey(key: string): string {
  const slash = key.lastIndexOf('/')
  return slash === 0 ? rootKey : key.slice(0, slash)
}

export function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1)
}

/** A key whose last segment starts with `_` is hidden from directory listings (still readable). */
export function isHiddenName(name: string): boolean {
  return name.charCodeAt(0) === 95
}

/** Whether `key` lies strictly below `dir` in the tree. */
export function isUnder(key: string, dir: string): boolean {
  if (dir === rootKey) return key !== rootKey
  return key.length > dir.length && key.charCodeAt(dir.length) === 47 && key.startsWith(dir)
}

/**
 * etcd's isHidden(watchPath, keyPath): an event at `key` below `watched` is hidden from a recursive
 * watcher when some segment after the watched path starts with `_`.
 */
export function isHiddenBelow(watched: string, key: string): boolean {
  const rest = watched === rootKey ? key : key.slice(watched.length)
  return rest.includes('/_')
}

/** The key itself, then each ancestor up to and including the root. */
export function* selfAndAncestors(key: string): Generator<string> {
  let current = key
  yield current
  while (current !== rootKey) {
    current = parentKey(current)
    yield current
  }
}

/** The smallest string greater than every string that starts with `prefix` ('\0' if none). */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i)
    if (code < 0xffff) return prefix.slice(0, i) + String.fromCharCode(code + 1)
  }
  return '\0'
}
