/**
 * Values in an expression: reading quoted strings, and converting a value's text to the type of
 * the field it is compared with.
 *
 * go-bexpr keeps every value as text (`Raw`) and converts it once it knows the field's Go type
 * (strconv.ParseInt, ParseFloat, ParseBool); so `Service.Port == 80`, `Service.Port == "80"` and
 * `Service.Meta.version == 2` all work. A Literal carries the text and both conversions, computed
 * once at parse time; null means "does not convert", which is an error only if the field turns
 * out to be a number or a boolean.
 *
 * Strings follow Go's strconv.Unquote: backticks are raw (no escapes; carriage returns dropped),
 * double quotes take Go's escapes and may not hold a raw newline. One addition: `\"` is accepted
 * (go-bexpr's grammar ends the string at any `"`, so there it is always an error).
 */

export interface Literal {
  /** The value as go-bexpr sees it: the unquoted string, the number's text, or a bare word. */
  readonly raw: string
  /** `raw` as a number (decimal integer or float), or null. */
  readonly number: number | null
  /** `raw` as Go's strconv.ParseBool reads it, or null. */
  readonly boolean: boolean | null
}

export function literalOf(raw: string): Literal {
  return { raw, number: coerceNumber(raw), boolean: coerceBoolean(raw) }
}

const decimalNumber = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

/**
 * Decimal only. Go's ParseInt(raw, 0, 64) also reads 0x, 0o and 0b prefixes and takes a leading 0
 * as octal; Consul's numeric fields (ports, weights, indexes) are never written that way.
 */
export function coerceNumber(raw: string): number | null {
  if (!decimalNumber.test(raw)) return null
  const value = Number(raw)
  return Number.isFinite(value) ? value : null
}

const booleanWords: ReadonlyMap<string, boolean> = new Map([
  ['1', true],
  ['t', true],
  ['T', true],
  ['TRUE', true],
  ['true', true],
  ['True', true],
  ['0', false],
  ['f', false],
  ['F', false],
  ['FALSE', false],
  ['false', false],
  ['False', false],
])

/** Exactly the spellings strconv.ParseBool accepts. */
export function coerceBoolean(raw: string): boolean | null {
  return booleanWords.get(raw) ?? null
}

export type StringRead =
  | { readonly ok: true; readonly value: string; readonly end: number }
  | { readonly ok: false; readonly reason: string; readonly at: number }

/** Reads the quoted string starting at `start` (a `"` or a backtick); `end` is past the closing quote. */
export function readString(text: string, start: number): StringRead {
  return text[start] === '`' ? readRawString(text, start) : readQuotedString(text, start)
}

function readRawString(text: string, start: number): StringRead {
  const close = text.indexOf('`', start + 1)
  if (close < 0) return { ok: false, reason: 'Unterminated string literal', at: start }
  return { ok: true, value: text.slice(start + 1, close).replaceAll('\r', ''), end: close + 1 }
}

const simpleEscapes: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
}

function readQuotedString(text: string, start: number): StringRead {
  let value = ''
  let at = start + 1
  for (;;) {
    const close = text.indexOf('"', at)
    const backslash = text.indexOf('\\', at)
    if (close < 0) return { ok: false, reason: 'Unterminated string literal', at: start }
    if (backslash < 0 || close < backslash) {
      const tail = text.slice(at, close)
      if (tail.includes('\n')) return newlineInString(text, at)
      return { ok: true, value: value + tail, end: close + 1 }
    }
    const plain = text.slice(at, backslash)
    if (plain.includes('\n')) return newlineInString(text, at)
    const escaped = readEscape(text, backslash)
    if (!escaped.ok) return escaped
    value += plain + escaped.value
    at = escaped.end
  }
}

function newlineInString(text: string, from: number): StringRead {
  return { ok: false, reason: 'a double-quoted string may not hold a newline', at: text.indexOf('\n', from) }
}

/** One escape sequence at `at` (the backslash), as Go's strconv.UnquoteChar reads it. */
function readEscape(text: string, at: number): StringRead {
  const letter = text[at + 1]
  if (letter === undefined) return { ok: false, reason: 'Unterminated string literal', at }
  const simple = simpleEscapes[letter]
  if (simple !== undefined) return { ok: true, value: simple, end: at + 2 }
  const digitsByLetter: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 }
  const hexDigits = digitsByLetter[letter]
  if (hexDigits !== undefined) {
    const digits = text.slice(at + 2, at + 2 + hexDigits)
    if (digits.length !== hexDigits || !/^[0-9a-fA-F]+$/.test(digits)) return badEscape(text, at)
    return codePointEscape(text, at, Number.parseInt(digits, 16), letter === 'x', at + 2 + hexDigits)
  }
  if (letter >= '0' && letter <= '7') {
    const digits = text.slice(at + 1, at + 4)
    if (!/^[0-7]{3}$/.test(digits)) return badEscape(text, at)
    return codePointEscape(text, at, Number.parseInt(digits, 8), true, at + 4)
  }
  return badEscape(text, at)
}

function codePointEscape(text: string, at: number, code: number, byte: boolean, end: number): StringRead {
  if (byte && code > 0xff) return badEscape(text, at)
  // Go writes \x80..\xff and \200..\377 as single raw bytes, which are not UTF-8 text: refused.
  if (byte && code >= 0x80) {
    return { ok: false, reason: 'byte escapes above \\x7f are not supported', at }
  }
  if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return badEscape(text, at)
  return { ok: true, value: String.fromCodePoint(code), end }
}

function badEscape(text: string, at: number): StringRead {
  return { ok: false, reason: `invalid escape sequence ${JSON.stringify(text.slice(at, at + 2))}`, at }
}
