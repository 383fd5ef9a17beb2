import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KvError } from '../../kv/kv-error.ts'
import { addParams, mergeForm } from './form.ts'

/** What the route used before the split of plain text: every pair of URLSearchParams, in order. */
function reference(text: string): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null)
  for (const [name, value] of new URLSearchParams(text)) (form[name] ??= []).push(value)
  return form
}

function parsed(text: string): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null)
  addParams(form, text)
  return form
}

const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c)

/** Go's unescape of one name or value: its first bad escape, as Go's EscapeError quotes it. */
function goUnescapeError(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '%') continue
    if (i + 2 >= s.length || !isHex(s[i + 1]) || !isHex(s[i + 2])) {
      return `invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`
    }
    i += 2
  }
  return undefined
}

/** Go's url.ParseQuery's error for `text`, written after its loop (net/url, Go 1.17 and later). */
function goParseQueryError(text: string): string | undefined {
  let err: string | undefined
  let rest = text
  while (rest !== '') {
    const amp = rest.indexOf('&')
    const key = amp < 0 ? rest : rest.slice(0, amp)
    rest = amp < 0 ? '' : rest.slice(amp + 1)
    if (key.includes(';')) {
      err = 'invalid semicolon separator in query'
      continue
    }
    if (key === '') continue
    const eq = key.indexOf('=')
    const e1 = goUnescapeError(eq < 0 ? key : key.slice(0, eq))
    const e2 = e1 ?? (eq < 0 ? undefined : goUnescapeError(key.slice(eq + 1)))
    if (e2 !== undefined && err === undefined) err = e2
  }
  return err
}

/** addParams' outcome: the pairs, or the cause of its KV_INVALID_FORM. */
function outcome(text: string): Record<string, string[]> | { cause: string } {
  try {
    return parsed(text)
  } catch (error) {
    expect(error).toBeInstanceOf(KvError)
    expect((error as KvError).code).toBe('KV_INVALID_FORM')
    return { cause: (error as KvError).etcdCause }
  }
}

/** What etcd makes of `text`: Go's error, else (no error) the pairs URLSearchParams gives. */
function expected(text: string): Record<string, string[]> | { cause: string } {
  // A leading '?' is not Go's (a body never starts with one from a client); skip it as addParams does.
  const err = goParseQueryError(text.startsWith('?') ? text.slice(1) : text)
  return err === undefined ? reference(text) : { cause: err }
}

// Pieces that exercise the separators, the decoded characters and some text.
const piece = fc.constantFrom(
  '&',
  ';',
  '%4',
  '%%',
  '=',
  '?',
  '%',
  '+',
  '%41',
  '%zz',
  'a',
  'value',
  'é',
  '日',
  '\uD800',
  '\uDC00',
  '😀',
  ' ',
  '__proto__',
)

describe('addParams', () => {
  it("gives exactly the pairs URLSearchParams gives, in order, for any text Go's ParseQuery accepts, and Go's error otherwise", () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const text = pieces.join('')
        expect(outcome(text)).toEqual(expected(text))
      }),
      { numRuns: 5_000 },
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        expect(outcome(text)).toEqual(expected(text))
      }),
    )
  })

  it("refuses what etcd refuses, with Go's error as the cause", () => {
    expect(outcome('value=%zz')).toEqual({ cause: 'invalid URL escape "%zz"' })
    expect(outcome('value=a%2')).toEqual({ cause: 'invalid URL escape "%2"' })
    expect(outcome('value=%zz%2')).toEqual({ cause: 'invalid URL escape "%zz"' })
    expect(outcome('val%zzue=1')).toEqual({ cause: 'invalid URL escape "%zz"' })
    expect(outcome('value=a;b')).toEqual({ cause: 'invalid semicolon separator in query' })
    // The semicolon's error replaces an earlier escape error (Go sets it unconditionally).
    expect(outcome('a=%zz&b=;')).toEqual({ cause: 'invalid semicolon separator in query' })
    expect(outcome('value=a%C3')).toEqual({ value: ['a\uFFFD'] })
    expect(outcome('value=1&&&=2')).toEqual(reference('value=1&&&=2'))
  })

  it('handles the cases the split itself decides', () => {
    expect(parsed('?a=1&&b&=2&c==3&')).toEqual(reference('?a=1&&b&=2&c==3&'))
    expect(parsed('??a=1')).toEqual({ '?a': ['1'] })
    expect(parsed('value=x&value=y')).toEqual({ value: ['x', 'y'] })
    expect(parsed('')).toEqual({})
    expect(parsed('?')).toEqual({})
  })
})

describe('mergeForm', () => {
  it("refuses the body's error before the query's", () => {
    expect(() => mergeForm('value=%zz', '/v2/keys/a?x=;')).toThrow('invalid URL escape "%zz"')
    expect(() => mergeForm('value=ok', '/v2/keys/a?x=;')).toThrow('invalid semicolon separator in query')
  })

  it('puts body values before query values, per name', () => {
    const form = mergeForm('value=body&ttl=5', '/v2/keys/a?value=query&dir=false')
    expect(form.value).toEqual(['body', 'query'])
    expect(form.ttl).toEqual(['5'])
    expect(form.dir).toEqual(['false'])
    expect(Object.getPrototypeOf(form)).toBeNull()
  })
})

describe('addParams on a large hostile body', () => {
  it('stays linear: 500,000 pairs without "=" and one with it', () => {
    const text = `${'a&'.repeat(500_000)}b=1`
    const form: Record<string, string[]> = Object.create(null)
    addParams(form, text)
    expect(form.a).toHaveLength(500_000)
    expect(form.b).toEqual(['1'])
  })
})
