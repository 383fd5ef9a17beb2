/**
 * systemd's word splitting, as used by Environment=, ExecStart= and the list keys of [X-Fleet].
 *
 * Words are separated by unquoted whitespace (space, tab). A double or single quote starts a quoted
 * run that ends at the same quote; quotes may sit inside a word (`A="x y"` is the word `A=x y`), as
 * systemd's extract_first_word does with EXTRACT_UNQUOTE. C escapes are decoded inside and outside
 * quotes (EXTRACT_CUNESCAPE): \a \b \f \n \r \t \v \\ \" \' \s (space) \xHH and \NNN (octal).
 *
 * Invariants:
 * - Output words never contain NUL (`\x00` and `\000` are refused) and there are at most
 *   `wordsMax` of them; an unterminated quote or an unknown escape is a ValueFault.
 * - Work is linear in the input length.
 */
import { ValueFault } from './unit-error.ts'

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
  "'": "'",
  s: ' ',
}

function isBlank(c: string): boolean {
  return c === ' ' || c === '\t'
}

/** Decodes the escape starting at text[i] === '\\'; returns the character and the index after it. */
function decodeEscape(text: string, i: number): [string, number] {
  const c = text[i + 1]
  if (c === undefined) throw new ValueFault('a backslash ends the value')
  const simple = Object.hasOwn(simpleEscapes, c) ? simpleEscapes[c] : undefined
  if (simple !== undefined) return [simple, i + 2]
  let code: number
  let next: number
  if (c === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
    code = Number.parseInt(text.slice(i + 2, i + 4), 16)
    next = i + 4
  } else if (/^[0-7]{3}$/.test(text.slice(i + 1, i + 4))) {
    code = Number.parseInt(text.slice(i + 1, i + 4), 8)
    next = i + 4
  } else {
    throw new ValueFault(`unknown escape \\${c}`)
  }
  if (code === 0 || code > 0xff) throw new ValueFault('an escape decodes to NUL or past \\377')
  return [String.fromCharCode(code), next]
}

/** Splits `text` into unquoted, unescaped words. At most `wordsMax` words. */
export function splitWords(text: string, wordsMax: number): string[] {
  const words: string[] = []
  let i = 0
  while (i < text.length) {
    while (i < text.length && isBlank(text[i]!)) i++
    if (i >= text.length) break
    if (words.length >= wordsMax) throw new ValueFault(`more than ${wordsMax} words`)
    let word = ''
    let quote: string | undefined
    while (i < text.length) {
      const c = text[i]!
      if (quote === undefined && isBlank(c)) break
      if (c === '\\') {
        const [decoded, next] = decodeEscape(text, i)
        word += decoded
        i = next
      } else if (quote === undefined && (c === '"' || c === "'")) {
        quote = c
        i++
      } else if (c === quote) {
        quote = undefined
        i++
      } else {
        word += c
        i++
      }
    }
    if (quote !== undefined) throw new ValueFault(`unterminated ${quote} quote`)
    words.push(word)
  }
  return words
}
