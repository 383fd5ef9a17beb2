/**
 * The syntax of `matches` patterns: the part of RE2 (Go's regexp/syntax) that filters use, read
 * into a small tree that regex-program.ts compiles for a linear-time matcher.
 *
 * Why not JavaScript's RegExp: it backtracks, so a short pattern such as `(a+)+$` takes
 * exponential time on a long string, and no length limit prevents that; its syntax also differs
 * from Go's (`$`, `\s`, flags). This reader accepts Go's syntax and refuses, with a message, what
 * RE2 itself does not have (backreferences, look-around) and the few RE2 features left out here
 * (Unicode classes `\pL`, `\C`). Everything accepted matches as Go's regexp does, except that case
 * folding under (?i) uses simple lower/upper case mapping rather than Unicode folding orbits.
 *
 * Supported: literals; `.`; `[...]` with ranges, negation, `\d\w\s` and `[:alpha:]` classes;
 * `\d \D \w \W \s \S`; `^ $ \A \z \b \B`; groups `(...)`, `(?:...)`, `(?P<n>...)`, `(?<n>...)`;
 * flags `(?imsU)`, `(?i:...)`, `(?-i)`; alternation; `* + ? {n} {n,} {n,m}` and their lazy forms
 * (laziness is irrelevant to a yes/no match); escapes `\a \f \t \n \r \v \xHH \x{H..} \123 \Q..\E`
 * and any escaped ASCII punctuation.
 *
 * The pattern is at most regexPatternBytesMax bytes, which bounds the recursion of this parser.
 */
import { regexRepeatMax } from './limits.ts'

export type Assertion = 'textStart' | 'textEnd' | 'lineStart' | 'lineEnd' | 'wordBoundary' | 'notWordBoundary'

export interface CharClass {
  /** Inclusive code point ranges, flattened: [lo0, hi0, lo1, hi1, ...]. */
  readonly ranges: readonly number[]
  readonly negated: boolean
  /** (?i): a character also matches when its simple lower or upper case is in the ranges. */
  readonly fold: boolean
}

export type RegexNode =
  | { readonly kind: 'empty' }
  | { readonly kind: 'class'; readonly cls: CharClass }
  | { readonly kind: 'any'; readonly newline: boolean }
  | { readonly kind: 'assert'; readonly assertion: Assertion }
  | { readonly kind: 'concat'; readonly items: readonly RegexNode[] }
  | { readonly kind: 'alternate'; readonly items: readonly RegexNode[] }
  /** max -1: unbounded. */
  | { readonly kind: 'repeat'; readonly item: RegexNode; readonly min: number; readonly max: number }

export class RegexSyntaxError extends Error {
  /** UTF-16 index in the pattern. */
  readonly index: number

  constructor(reason: string, index: number) {
    super(reason)
    this.name = 'RegexSyntaxError'
    this.index = index
  }
}

interface Flags {
  /** i */
  readonly fold: boolean
  /** s: `.` matches `\n` too. */
  readonly dotNewline: boolean
  /** m: `^` and `$` match at line breaks too. */
  readonly multiline: boolean
}

const codeMax = 0x10ffff
const digitRanges = [0x30, 0x39]
const wordRanges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a]
// RE2's \s is [\t\n\f\r ]: no \v, unlike Perl's and JavaScript's.
const spaceRanges = [0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20]
const perlClasses: Readonly<Record<string, readonly number[]>> = {
  d: digitRanges,
  w: wordRanges,
  s: spaceRanges,
}
const posixClasses: Readonly<Record<string, readonly number[]>> = {
  alnum: [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a],
  alpha: [0x41, 0x5a, 0x61, 0x7a],
  ascii: [0x00, 0x7f],
  blank: [0x09, 0x09, 0x20, 0x20],
  cntrl: [0x00, 0x1f, 0x7f, 0x7f],
  digit: digitRanges,
  graph: [0x21, 0x7e],
  lower: [0x61, 0x7a],
  print: [0x20, 0x7e],
  punct: [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e],
  space: [0x09, 0x0d, 0x20, 0x20],
  upper: [0x41, 0x5a],
  word: wordRanges,
  xdigit: [0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
}
const simpleEscapes: Readonly<Record<string, number>> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 }

export function parseRegex(pattern: string): RegexNode {
  return new RegexParser(pattern).parse()
}

/** Ranges of the code points not in `ranges` (which must be sorted and disjoint). */
export function complementRanges(ranges: readonly number[]): number[] {
  const out: number[] = []
  let next = 0
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i]! > next) out.push(next, ranges[i]! - 1)
    next = ranges[i + 1]! + 1
  }
  if (next <= codeMax) out.push(next, codeMax)
  return out
}

class RegexParser {
  readonly #p: string
  #at = 0
  #flags: Flags = { fold: false, dotNewline: false, multiline: false }

  constructor(pattern: string) {
    this.#p = pattern
  }

  parse(): RegexNode {
    const node = this.#alternate()
    if (this.#at < this.#p.length) throw new RegexSyntaxError('unexpected )', this.#at)
    return node
  }

  #alternate(): RegexNode {
    const items = [this.#concat()]
    while (this.#p[this.#at] === '|') {
      this.#at++
      items.push(this.#concat())
    }
    return items.length === 1 ? items[0]! : { kind: 'alternate', items }
  }

  #concat(): RegexNode {
    const items: RegexNode[] = []
    for (;;) {
      const c = this.#p[this.#at]
      if (c === undefined || c === '|' || c === ')') break
      const atom = this.#atom()
      if (atom !== null) items.push(this.#quantified(atom))
    }
    if (items.length === 0) return { kind: 'empty' }
    return items.length === 1 ? items[0]! : { kind: 'concat', items }
  }

  /** An atom, or null for a flag directive such as `(?i)`, which only changes the flags. */
  #atom(): RegexNode | null {
    const c = this.#p[this.#at]!
    switch (c) {
      case '(':
        return this.#group()
      case '[':
        return { kind: 'class', cls: this.#class() }
      case '.':
        this.#at++
        return { kind: 'any', newline: this.#flags.dotNewline }
      case '^':
        this.#at++
        return { kind: 'assert', assertion: this.#flags.multiline ? 'lineStart' : 'textStart' }
      case '$':
        this.#at++
        return { kind: 'assert', assertion: this.#flags.multiline ? 'lineEnd' : 'textEnd' }
      case '\\':
        return this.#escape()
      case '*':
      case '+':
      case '?':
        throw new RegexSyntaxError(`missing argument to repetition operator: \`${c}\``, this.#at)
      case '{':
        if (this.#repeatSpec() !== null) {
          throw new RegexSyntaxError('missing argument to repetition operator: `{`', this.#at)
        }
        this.#at++
        return this.#literal(0x7b)
      default: {
        const code = this.#p.codePointAt(this.#at)!
        this.#at += code > 0xffff ? 2 : 1
        return this.#literal(code)
      }
    }
  }

  #literal(code: number): RegexNode {
    return { kind: 'class', cls: { ranges: [code, code], negated: false, fold: this.#flags.fold } }
  }

  #quantified(atom: RegexNode): RegexNode {
    const start = this.#at
    const repeat = this.#quantifier()
    if (repeat === null) return atom
    if (this.#p[this.#at] === '?') this.#at++ // lazy: the same yes/no answer
    if (this.#quantifier() !== null) {
      const text = this.#p.slice(start, this.#at)
      throw new RegexSyntaxError(`invalid nested repetition operator: \`${text}\``, start)
    }
    return { kind: 'repeat', item: atom, min: repeat.min, max: repeat.max }
  }

  /** Consumes `*`, `+`, `?` or a valid `{n,m}`; null (consuming nothing) when none is next. */
  #quantifier(): { min: number; max: number } | null {
    const c = this.#p[this.#at]
    if (c === '*' || c === '+' || c === '?') {
      this.#at++
      return c === '*' ? { min: 0, max: -1 } : c === '+' ? { min: 1, max: -1 } : { min: 0, max: 1 }
    }
    if (c !== '{') return null
    const spec = this.#repeatSpec()
    if (spec === null) return null
    if (spec.min > regexRepeatMax || spec.max > regexRepeatMax || (spec.max !== -1 && spec.max < spec.min)) {
      throw new RegexSyntaxError(`invalid repeat count: \`${this.#p.slice(this.#at, spec.end)}\``, this.#at)
    }
    this.#at = spec.end
    return { min: spec.min, max: spec.max }
  }

  /** Reads `{n}`, `{n,}` or `{n,m}` at the cursor without consuming it; null if it is not one (then `{` is literal). */
  #repeatSpec(): { min: number; max: number; end: number } | null {
    const match = /\{(\d+)(,(\d*))?\}/y
    match.lastIndex = this.#at
    const found = match.exec(this.#p)
    if (found === null) return null
    const min = Number(found[1])
    const max = found[2] === undefined ? min : found[3] === '' ? -1 : Number(found[3])
    return { min, max, end: match.lastIndex }
  }

  #group(): RegexNode | null {
    const open = this.#at
    this.#at++
    const saved = this.#flags
    if (this.#p[this.#at] === '?') {
      const directive = this.#groupPrefix(open)
      if (directive === 'flags-only') return null
    }
    const inner = this.#alternate()
    if (this.#p[this.#at] !== ')') throw new RegexSyntaxError('missing closing )', open)
    this.#at++
    this.#flags = saved
    return inner
  }

  /**
   * Reads what follows `(?`: `:`, a name, or flags. Returns 'flags-only' for `(?i)` (the flags then
   * hold to the end of the enclosing group), else 'group' with the cursor at the group's body.
   */
  #groupPrefix(open: number): 'flags-only' | 'group' {
    const rest = this.#p.slice(this.#at + 1, this.#at + 3)
    if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!') {
      throw new RegexSyntaxError(
        `invalid or unsupported Perl syntax: \`(?${rest.startsWith('<') ? rest : rest[0]}\` (look-around)`,
        open,
      )
    }
    const named = /\?P?<([A-Za-z0-9_]+)>/y
    named.lastIndex = this.#at
    if (named.exec(this.#p) !== null) {
      this.#at = named.lastIndex
      return 'group'
    }
    if (rest.startsWith('P') || rest.startsWith('<'))
      throw new RegexSyntaxError('invalid named capture', open)
    const flags = /\?([imsU]*)(?:-([imsU]*))?([:)])/y
    flags.lastIndex = this.#at
    const found = flags.exec(this.#p)
    if (
      found === null ||
      (found[1] === '' && found[2] === undefined && found[3] === ')') ||
      found[2] === ''
    ) {
      throw new RegexSyntaxError(
        `invalid or unsupported Perl syntax: \`${this.#p.slice(open, open + 3)}\``,
        open,
      )
    }
    this.#at = flags.lastIndex
    this.#flags = applyFlags(this.#flags, found[1]!, found[2] ?? '')
    return found[3] === ')' ? 'flags-only' : 'group'
  }

  #escape(): RegexNode {
    const letter = this.#p[this.#at + 1]
    const assertions: Readonly<Record<string, Assertion>> = {
      A: 'textStart',
      z: 'textEnd',
      b: 'wordBoundary',
      B: 'notWordBoundary',
    }
    const assertion = letter === undefined ? undefined : assertions[letter]
    if (assertion !== undefined) {
      this.#at += 2
      return { kind: 'assert', assertion }
    }
    const perl = this.#perlClass()
    if (perl !== null) return { kind: 'class', cls: { ranges: perl, negated: false, fold: false } }
    if (letter === 'Q') return this.#quoted()
    return this.#literal(this.#escapedChar())
  }

  /** `\d \D \w \W \s \S` at the cursor: consumes it and returns its ranges; else null. */
  #perlClass(): number[] | null {
    const letter = this.#p[this.#at + 1]
    if (letter === undefined) return null
    const ranges = perlClasses[letter.toLowerCase()]
    if (ranges === undefined || !/[dwsDWS]/.test(letter)) return null
    this.#at += 2
    return letter === letter.toLowerCase() ? [...ranges] : complementRanges(ranges)
  }

  /** `\Q...\E`: everything up to `\E` (or the end) is literal. */
  #quoted(): RegexNode {
    const start = this.#at + 2
    const end = this.#p.indexOf('\\E', start)
    const text = this.#p.slice(start, end < 0 ? this.#p.length : end)
    this.#at = end < 0 ? this.#p.length : end + 2
    const items = Array.from(text, (char) => this.#literal(char.codePointAt(0)!))
    if (items.length === 0) return { kind: 'empty' }
    return items.length === 1 ? items[0]! : { kind: 'concat', items }
  }

  /** One escaped character at the cursor (the backslash): consumes it and returns its code point. */
  #escapedChar(): number {
    const start = this.#at
    const letter = this.#p[start + 1]
    if (letter === undefined) throw new RegexSyntaxError('trailing backslash at end of expression', start)
    const simple = simpleEscapes[letter]
    if (simple !== undefined) {
      this.#at += 2
      return simple
    }
    if (letter === 'x') return this.#hexEscape(start)
    if (letter >= '0' && letter <= '7') return this.#octalEscape(start)
    const code = letter.charCodeAt(0)
    if (code < 0x80 && !/[A-Za-z0-9]/.test(letter)) {
      this.#at += 2
      return code
    }
    const why =
      letter === 'p' || letter === 'P'
        ? ' (Unicode classes are not supported)'
        : /[1-9]/.test(letter)
          ? ' (backreferences are not supported)'
          : ''
    throw new RegexSyntaxError(`invalid escape sequence: \`\\${letter}\`${why}`, start)
  }

  #hexEscape(start: number): number {
    const hex = /x(?:\{([0-9A-Fa-f]{1,8})\}|([0-9A-Fa-f]{2}))/y
    hex.lastIndex = start + 1
    const found = hex.exec(this.#p)
    const code = found === null ? Number.NaN : Number.parseInt(found[1] ?? found[2]!, 16)
    if (!(code <= codeMax)) throw new RegexSyntaxError('invalid escape sequence: `\\x`', start)
    this.#at = hex.lastIndex
    return code
  }

  /** Go: `\0` takes up to two more octal digits; `\1`..`\7` only if another digit follows (else a backreference). */
  #octalEscape(start: number): number {
    const octal = /[0-7]{1,3}/y
    octal.lastIndex = start + 1
    const digits = octal.exec(this.#p)![0]
    if (digits.length === 1 && digits !== '0') {
      throw new RegexSyntaxError(
        `invalid escape sequence: \`\\${digits}\` (backreferences are not supported)`,
        start,
      )
    }
    this.#at = start + 1 + digits.length
    return Number.parseInt(digits, 8)
  }

  #class(): CharClass {
    const open = this.#at
    this.#at++
    const negated = this.#p[this.#at] === '^'
    if (negated) this.#at++
    const ranges: number[] = []
    let first = true
    for (;;) {
      const c = this.#p[this.#at]
      if (c === undefined) throw new RegexSyntaxError('missing closing ]', open)
      if (c === ']' && !first) {
        this.#at++
        break
      }
      first = false
      if (this.#posixClass(ranges)) continue
      const perl = c === '\\' ? this.#perlClass() : null
      if (perl !== null) {
        ranges.push(...perl)
        continue
      }
      const lo = this.#classChar()
      let hi = lo
      if (this.#p[this.#at] === '-' && this.#p[this.#at + 1] !== ']' && this.#at + 1 < this.#p.length) {
        const dash = this.#at
        this.#at++
        hi = this.#classChar()
        if (hi < lo) throw new RegexSyntaxError('invalid character class range', dash)
      }
      ranges.push(lo, hi)
    }
    return { ranges: normalizeRanges(ranges), negated, fold: this.#flags.fold }
  }

  /** `[:alpha:]` or `[:^alpha:]` inside a class: adds its ranges and returns true; else false. */
  #posixClass(ranges: number[]): boolean {
    if (!this.#p.startsWith('[:', this.#at)) return false
    const close = this.#p.indexOf(':]', this.#at + 2)
    if (close < 0) return false
    const name = this.#p.slice(this.#at + 2, close)
    const negated = name.startsWith('^')
    const found = posixClasses[negated ? name.slice(1) : name]
    if (found === undefined)
      throw new RegexSyntaxError(`invalid character class range: \`[:${name}:]\``, this.#at)
    ranges.push(...(negated ? complementRanges(found) : found))
    this.#at = close + 2
    return true
  }

  #classChar(): number {
    if (this.#p[this.#at] === '\\') return this.#escapedChar()
    const code = this.#p.codePointAt(this.#at)!
    this.#at += code > 0xffff ? 2 : 1
    return code
  }
}

function applyFlags(flags: Flags, set: string, clear: string): Flags {
  const value = (letter: string, current: boolean) =>
    clear.includes(letter) ? false : set.includes(letter) ? true : current
  return {
    fold: value('i', flags.fold),
    dotNewline: value('s', flags.dotNewline),
    multiline: value('m', flags.multiline),
  }
}

/** Sorted, merged, disjoint ranges: what complementRanges needs and what matching scans. */
function normalizeRanges(ranges: readonly number[]): number[] {
  const pairs: [number, number][] = []
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!])
  pairs.sort((a, b) => a[0] - b[0])
  const out: number[] = []
  for (const [lo, hi] of pairs) {
    const last = out.length - 1
    if (last > 0 && lo <= out[last]! + 1) out[last] = Math.max(out[last]!, hi)
    else out.push(lo, hi)
  }
  return out
}
