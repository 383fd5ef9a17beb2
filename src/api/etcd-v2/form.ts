/**
 * The request as etcd's parseKeyRequest saw it: the key from the URL path, the parameters from the
 * query string and (PUT, POST) an application/x-www-form-urlencoded body, merged as Go's
 * r.Form merges them (body values first, then the query's), so FormValue's "first value" rule
 * takes a body value over a query value.
 *
 * Only PUT and POST bodies are read, as Go's ParseForm reads only POST, PUT and PATCH bodies (PATCH
 * is 405 here): etcd ignores the body of a GET or DELETE, so `DELETE -d prevValue=x` deletes.
 *
 * What Go's url.ParseQuery refuses, etcd answers with 210 "Invalid POST form" and Go's error as the
 * cause, index 0, and so does this (KV_INVALID_FORM): a malformed percent-escape (`invalid URL
 * escape "%zz"`) or a `;` in a pair (`invalid semicolon separator in query`), in the body or in the
 * query, the body's error first. Pure functions.
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

/** Whether etcd reads a form body for this method (Go's ParseForm: POST, PUT and PATCH only). */
export function readsFormBody(method: string): boolean {
  return method === 'PUT' || method === 'POST'
}

/** r.Form: form-body values, then query values, per name (callers pass a body only if readsFormBody). */
export function mergeForm(body: unknown, url: string): V2Form {
  // No prototype: a parameter named __proto__, constructor or toString is just an unknown name,
  // which etcd ignores (with {} it read Object.prototype's members and the request failed as 500).
  const form: Record<string, string[]> = Object.create(null)
  if (typeof body === 'string' && body !== '') addParams(form, body)
  const queryAt = url.indexOf('?')
  if (queryAt >= 0) addParams(form, url.slice(queryAt + 1))
  return form
}

/**
 * What decoding can change: '%' and '+' (percent-decoding, '+' as space), and lone surrogates
 * (URLSearchParams encodes its input as UTF-8, which makes each one U+FFFD); and ';', which Go
 * refuses (formError).
 */
const needsDecoding = /[%+;\uD800-\uDFFF]/
/** A '%' not followed by two hex digits. */
const badEscape = /%(?![0-9A-Fa-f]{2})/

/**
 * The error Go's url.ParseQuery returns for `text`, or undefined. Go goes through every pair
 * (split on '&'): a pair with ';' sets the semicolon error, over any earlier one; otherwise the
 * name, then the value (split at the first '='), is unescaped and the first escape error is kept.
 * An escape error quotes the bad escape: '%' and at most two characters after it.
 */
function formError(text: string): string | undefined {
  if (!text.includes('%') && !text.includes(';')) return undefined
  let error: string | undefined
  for (const pair of text.split('&')) {
    if (pair.includes(';')) {
      error = 'invalid semicolon separator in query'
      continue
    }
    if (error !== undefined) continue
    const eq = pair.indexOf('=')
    for (const part of eq < 0 ? [pair] : [pair.slice(0, eq), pair.slice(eq + 1)]) {
      const bad = badEscape.exec(part)
      if (bad !== null) {
        error = `invalid URL escape ${JSON.stringify(part.slice(bad.index, bad.index + 3))}`
        break
      }
    }
  }
  return error
}

/**
 * Adds the pairs of application/x-www-form-urlencoded `text` to `form`, exactly as iterating
 * `new URLSearchParams(text)` gives them; throws KV_INVALID_FORM where Go's ParseQuery fails.
 * Text with nothing to decode, which is what clients send for plain values, is split here:
 * URLSearchParams' parse, which decodes character by character, was 4-5 % of a leader's time
 * under writes of 256-byte values (--cpu-prof).
 */
export function addParams(form: Record<string, string[]>, text: string): void {
  if (needsDecoding.test(text)) {
    const error = formError(text)
    if (error !== undefined) throw new KvError('KV_INVALID_FORM', error, 0)
    for (const [name, value] of new URLSearchParams(text)) (form[name] ??= []).push(value)
    return
  }
  // The URL standard's parse: one leading '?' is dropped (URLSearchParams' constructor), the rest
  // split on '&', empty pieces skipped, each split at its first '=' (none: the value is '').
  let start = text.charCodeAt(0) === 0x3f ? 1 : 0
  while (start < text.length) {
    let end = text.indexOf('&', start)
    if (end < 0) end = text.length
    if (end > start) {
      // '=' looked for within the pair only: a search to the text's end for every pair would be
      // quadratic in a body of many pairs without one.
      const pair = text.slice(start, end)
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      ;(form[name] ??= []).push(eq < 0 ? '' : pair.slice(eq + 1))
    }
    start = end + 1
  }
}
