/**
 * The request as etcd's parseKeyRequest saw it: the key from the URL path, the parameters from the
 * query string and (PUT/POST/DELETE) an application/x-www-form-urlencoded body, merged as Go's
 * r.Form merges them (body values first, then the query's), so FormValue's "first value" rule
 * takes a body value over a query value.
 *
 * Pure functions; malformed percent-encoding is a 210 "Invalid POST form" (KV_INVALID_FORM).
 */
import { KvError } from '../../kv/kv-error.ts'
import type { V2Form } from '../../kv/v2-request.ts'

export const keysPrefix = '/v2/keys'

/** The key after /v2/keys in a raw request URL (percent-decoded; '' or '/' means the root). */
export function keyOfUrl(url: string, index: number): string {
  const queryAt = url.indexOf('?')
  const path = (queryAt < 0 ? url : url.slice(0, queryAt)).slice(keysPrefix.length)
  try {
    return decodeURIComponent(path)
  } catch {
    throw new KvError('KV_INVALID_FORM', 'malformed percent-encoding in the key', index)
  }
}

/** r.Form: form-body values, then query values, per name. */
export function mergeForm(body: unknown, url: string): V2Form {
  // No prototype: a parameter named __proto__, constructor or toString is just an unknown name,
  // which etcd ignores (with {} it read Object.prototype's members and the request failed as 500).
  const form: Record<string, string[]> = Object.create(null)
  const add = (params: URLSearchParams) => {
    for (const [name, value] of params) (form[name] ??= []).push(value)
  }
  if (typeof body === 'string' && body !== '') add(new URLSearchParams(body))
  const queryAt = url.indexOf('?')
  if (queryAt >= 0) add(new URLSearchParams(url.slice(queryAt + 1)))
  return form
}
