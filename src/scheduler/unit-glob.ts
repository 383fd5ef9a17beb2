/**
 * Conflicts= globs, with Go's path.Match syntax as fleet used it:
 *
 *   *          any run of characters          ?        any one character
 *   [abc]      one of a, b, c                 [a-z]    a range        [^a-z]  not in the range
 *   \c         the character c literally
 *
 * Invariants:
 * - A pattern is compiled once; malformed ones (unterminated class, empty class, a trailing
 *   backslash, an unescaped `-` or `]` where a range character belongs) are a ValueFault, as Go's
 *   ErrBadPattern.
 * - Unit names contain no `/`, so Go's "`*` does not cross a separator" rule never applies: `/` is an
 *   ordinary character here.
 * - Matching is O(pattern × name) (one backtrack point for the last `*`), never exponential.
 */
import { ValueFault } from './unit-error.ts'

type GlobToken =
  | { kind: 'star' }
  | { kind: 'any' }
  | { kind: 'char'; c: string }
  | { kind: 'class'; negated: boolean; ranges: Array<[string, string]> }

export interface UnitGlob {
  readonly pattern: string
  readonly tokens: readonly GlobToken[]
}

/** Compiles a glob. Throws ValueFault when the pattern is malformed. */
export function compileGlob(pattern: string): UnitGlob {
  const chars = Array.from(pattern)
  const tokens: GlobToken[] = []
  let i = 0
  while (i < chars.length) {
    const c = chars[i]!
    if (c === '*') {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' })
      i++
    } else if (c === '?') {
      tokens.push({ kind: 'any' })
      i++
    } else if (c === '\\') {
      const next = chars[i + 1]
      if (next === undefined) throw new ValueFault('a glob ends with a backslash')
      tokens.push({ kind: 'char', c: next })
      i += 2
    } else if (c === '[') {
      i = compileClass(chars, i + 1, tokens)
    } else {
      tokens.push({ kind: 'char', c })
      i++
    }
  }
  return { pattern, tokens }
}

/** Reads a class body starting after `[`; returns the index after its `]`. */
function compileClass(chars: string[], start: number, tokens: GlobToken[]): number {
  let i = start
  const negated = chars[i] === '^'
  if (negated) i++
  const ranges: Array<[string, string]> = []
  const rangeChar = (): string => {
    const c = chars[i]
    if (c === undefined) throw new ValueFault('a [ class is not closed')
    if (c === '-' || c === ']') throw new ValueFault(`"${c}" must be escaped inside a [ class`)
    if (c !== '\\') {
      i++
      return c
    }
    const escaped = chars[i + 1]
    if (escaped === undefined) throw new ValueFault('a glob ends with a backslash')
    i += 2
    return escaped
  }
  do {
    const lo = rangeChar()
    let hi = lo
    if (chars[i] === '-') {
      i++
      hi = rangeChar()
    }
    ranges.push([lo, hi])
  } while (chars[i] !== ']' && i < chars.length)
  if (chars[i] !== ']') throw new ValueFault('a [ class is not closed')
  tokens.push({ kind: 'class', negated, ranges })
  return i + 1
}

function tokenMatches(token: GlobToken, c: string): boolean {
  if (token.kind === 'any') return true
  if (token.kind === 'char') return token.c === c
  if (token.kind === 'class') {
    const inside = token.ranges.some(([lo, hi]) => lo <= c && c <= hi)
    return inside !== token.negated
  }
  return false
}

/** Whether `name` matches the whole glob. */
export function globMatches(glob: UnitGlob, name: string): boolean {
  const chars = Array.from(name)
  const tokens = glob.tokens
  let t = 0
  let n = 0
  let starToken = -1
  let starName = 0
  while (n < chars.length) {
    const token = tokens[t]
    if (token?.kind === 'star') {
      starToken = t++
      starName = n
    } else if (token !== undefined && tokenMatches(token, chars[n]!)) {
      t++
      n++
    } else if (starToken >= 0) {
      t = starToken + 1
      n = ++starName
    } else {
      return false
    }
  }
  while (tokens[t]?.kind === 'star') t++
  return t === tokens.length
}
