/**
 * Parsing a filter expression: go-bexpr's grammar (grammar/grammar.peg), read by hand.
 *
 *   input      = ws? or ws? EOF
 *   or         = and (ws "or" ws and)*
 *   and        = unary (ws "and" ws unary)*
 *   unary      = "not" ws unary | "(" ws? or ws? ")" | match
 *   match      = selector ws? ("==" | "!=") ws? value
 *              | selector ws ("contains" | "not" ws "contains" | "matches" | "not" ws "matches") ws value
 *              | selector ws "is" ws ("not" ws)? "empty"
 *              | value ws ("in" | "not" ws "in") ws selector
 *   selector   = ident ("." ident | "[" ws? string ws? "]")*
 *   ident      = [A-Za-z] [A-Za-z0-9_]*
 *   value      = selector (its dotted text) | number | string
 *   number     = "-"? ("0" | [1-9][0-9]*) ("." [0-9]+)?, followed by ws, ")" or EOF
 *   string     = '"' Go-escaped text '"' | '`' raw text '`'
 *   ws         = [ \t\r\n]+
 *
 * As in go-bexpr, keywords need whitespace around them (`a == 1 and(b == 2)` is refused), `not`
 * binds tighter than `and`, and `and` tighter than `or`.
 *
 * Bounds: the caller has checked expressionBytesMax. The parser recurses only into parentheses and
 * `not`, each counted against nestingDepthMax, so its stack is bounded; `and`/`or` chains are
 * loops. Terms are counted against termsMax. The cursor moves back only to re-read the whitespace
 * before a word that turned out not to be `and`/`or` (at most twice per run of whitespace), so
 * parsing is linear in the expression.
 *
 * Errors: a FilterError at the first fault, with its position and what was expected there.
 */
import { expectedList, FilterError, positionAt } from './error.ts'
import { type FilterNode, type MatchOperator, type MatchTerm, selectorText } from './expression.ts'
import { nestingDepthMax, regexPatternBytesMax, termsMax } from './limits.ts'
import { type Literal, literalOf, readString } from './literal.ts'
import { compileRegex, type RegexProgram } from './regex-program.ts'
import { RegexSyntaxError } from './regex-syntax.ts'
import { type FieldSchema, operatorsOf, resolveSelector, typeName } from './schema.ts'

interface Selector {
  readonly path: string[]
  readonly at: number
}

interface Value {
  readonly literal: Literal
  readonly at: number
}

const termExpected = ['"("', '"not"', 'a selector', 'a value']
const operatorExpected = ['"=="', '"!="', '"contains"', '"in"', '"is"', '"matches"', '"not"']

export function parseExpression(text: string, schema: FieldSchema | null): FilterNode {
  return new ExpressionParser(text, schema).parse()
}

class ExpressionParser {
  readonly #text: string
  readonly #schema: FieldSchema | null
  #at = 0
  #depth = 0
  #terms = 0

  constructor(text: string, schema: FieldSchema | null) {
    this.#text = text
    this.#schema = schema
  }

  parse(): FilterNode {
    this.#skipSpace()
    const root = this.#or()
    this.#skipSpace()
    if (this.#at < this.#text.length) throw this.#unexpected(['end of input'])
    return root
  }

  #or(): FilterNode {
    const operands = [this.#and()]
    while (this.#keywordAfterSpace('or')) operands.push(this.#and())
    return operands.length === 1 ? operands[0]! : { kind: 'or', operands }
  }

  #and(): FilterNode {
    const operands = [this.#unary()]
    while (this.#keywordAfterSpace('and')) operands.push(this.#unary())
    return operands.length === 1 ? operands[0]! : { kind: 'and', operands }
  }

  #unary(): FilterNode {
    if (this.#wordAt('not')) {
      const after = this.#text.charCodeAt(this.#at + 3)
      if (isSpace(after)) {
        this.#enter()
        this.#at += 3
        this.#skipSpace()
        const operand = this.#unary()
        this.#depth--
        return { kind: 'not', operand }
      }
      if (after === 0x28) throw this.#syntax(this.#at + 3, ['whitespace after "not"'])
    }
    if (this.#text[this.#at] === '(') {
      this.#enter()
      this.#at++
      this.#skipSpace()
      const inner = this.#or()
      this.#skipSpace()
      if (this.#text[this.#at] !== ')') throw this.#unexpected(['")"'])
      this.#at++
      this.#depth--
      return inner
    }
    return this.#match()
  }

  #match(): FilterNode {
    const start = this.#at
    const code = this.#text.charCodeAt(start)
    if (isIdentStart(code)) return this.#matchFromSelector(this.#selector())
    if (code === 0x22 || code === 0x60 || code === 0x2d || isDigit(code)) {
      const value = this.#value()
      return this.#valueInSelector(value)
    }
    throw this.#syntax(start, termExpected)
  }

  /** After a selector: `== v`, `!= v`, `contains v`, `matches v`, `is [not] empty`, or it was a value for `in`. */
  #matchFromSelector(selector: Selector): MatchTerm {
    const beforeSpace = this.#at
    this.#skipSpace()
    const two = this.#text.slice(this.#at, this.#at + 2)
    if (two === '==' || two === '!=') {
      this.#at += 2
      this.#skipSpace()
      return this.#term(selector, two, two, this.#value())
    }
    if (this.#at === beforeSpace) throw this.#syntax(this.#at, ['"=="', '"!="', '"."', '"["', 'whitespace'])
    const wordAt = this.#at
    const word = this.#word()
    switch (word) {
      case 'contains':
        this.#requireSpace(word)
        return this.#term(selector, 'in', word, this.#value())
      case 'matches':
        this.#requireSpace(word)
        return this.#term(selector, 'matches', word, this.#value())
      case 'is':
        this.#requireSpace(word)
        return this.#isEmpty(selector)
      case 'in':
        this.#requireSpace(word)
        return this.#term(this.#selector(), 'in', word, valueOfSelector(selector))
      case 'not':
        this.#requireSpace(word)
        return this.#matchNot(selector)
      default:
        throw this.#syntax(wordAt, operatorExpected)
    }
  }

  /** After `selector not `: `contains v`, `matches v`, or (the selector was a value) `in selector`. */
  #matchNot(selector: Selector): MatchTerm {
    const wordAt = this.#at
    const word = this.#word()
    switch (word) {
      case 'contains':
        this.#requireSpace(word)
        return this.#term(selector, 'not in', 'not contains', this.#value())
      case 'matches':
        this.#requireSpace(word)
        return this.#term(selector, 'not matches', 'not matches', this.#value())
      case 'in':
        this.#requireSpace(word)
        return this.#term(this.#selector(), 'not in', 'not in', valueOfSelector(selector))
      default:
        throw this.#syntax(wordAt, ['"contains"', '"in"', '"matches"'])
    }
  }

  #isEmpty(selector: Selector): MatchTerm {
    const wordAt = this.#at
    const word = this.#word()
    if (word === 'empty') return this.#term(selector, 'is empty', 'is empty', null)
    if (word === 'not') {
      this.#requireSpace(word)
      const emptyAt = this.#at
      if (this.#word() === 'empty') return this.#term(selector, 'is not empty', 'is not empty', null)
      throw this.#syntax(emptyAt, ['"empty"'])
    }
    throw this.#syntax(wordAt, ['"empty"', '"not"'])
  }

  /** `value in selector` / `value not in selector`, the value being a string or a number. */
  #valueInSelector(value: Value): MatchTerm {
    if (this.#skipSpace() === 0) throw this.#syntax(this.#at, ['whitespace'])
    const wordAt = this.#at
    const word = this.#word()
    if (word === 'in') {
      this.#requireSpace(word)
      return this.#term(this.#selector(), 'in', 'in', value)
    }
    if (word === 'not') {
      this.#requireSpace(word)
      const inAt = this.#at
      if (this.#word() !== 'in') throw this.#syntax(inAt, ['"in"'])
      this.#requireSpace('in')
      return this.#term(this.#selector(), 'not in', 'not in', value)
    }
    throw this.#syntax(wordAt, ['"in"', '"not"'])
  }

  #selector(): Selector {
    const at = this.#at
    if (!isIdentStart(this.#text.charCodeAt(at))) throw this.#syntax(at, ['a selector'])
    const path = [this.#word()]
    for (;;) {
      const c = this.#text[this.#at]
      if (c === '.') {
        if (!isIdentStart(this.#text.charCodeAt(this.#at + 1))) {
          throw this.#syntax(this.#at + 1, ['an identifier ([A-Za-z][A-Za-z0-9_]*)'])
        }
        this.#at++
        path.push(this.#word())
      } else if (c === '[') {
        this.#at++
        this.#skipSpace()
        const quote = this.#text[this.#at]
        if (quote !== '"' && quote !== '`') throw this.#syntax(this.#at, ['a quoted map key'])
        path.push(this.#string())
        this.#skipSpace()
        if (this.#text[this.#at] !== ']') throw this.#syntax(this.#at, ['"]"'])
        this.#at++
      } else return { path, at }
    }
  }

  #value(): Value {
    const at = this.#at
    const code = this.#text.charCodeAt(at)
    if (isIdentStart(code)) return valueOfSelector(this.#selector())
    if (code === 0x22 || code === 0x60) return { literal: literalOf(this.#string()), at }
    const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?/y
    number.lastIndex = at
    if (number.exec(this.#text) === null) {
      throw this.#syntax(at, ['a value (a quoted string, a number or a bare word)'])
    }
    const end = number.lastIndex
    const after = this.#text.charCodeAt(end)
    if (end < this.#text.length && !isSpace(after) && after !== 0x29) {
      const expected = ['whitespace', '")"', 'end of input']
      throw new FilterError(
        'parse',
        'rule "number": Invalid number literal',
        positionAt(this.#text, end),
        expected,
      )
    }
    this.#at = end
    return { literal: literalOf(this.#text.slice(at, end)), at }
  }

  #string(): string {
    const read = readString(this.#text, this.#at)
    if (!read.ok)
      throw new FilterError('parse', `rule "string": ${read.reason}`, positionAt(this.#text, read.at))
    this.#at = read.end
    return read.value
  }

  #term(selector: Selector, operator: MatchOperator, spelled: string, value: Value | null): MatchTerm {
    this.#terms++
    if (this.#terms > termsMax) {
      throw new FilterError(
        'parse',
        `Number of match expressions (${this.#terms}) exceeds the limit (${termsMax}, termsMax)`,
        positionAt(this.#text, selector.at),
      )
    }
    if (this.#schema !== null) this.#check(selector, operator, spelled, value)
    const regex = operator === 'matches' || operator === 'not matches' ? this.#regex(value!) : null
    const at = value === null ? selector.at : Math.min(selector.at, value.at)
    return {
      kind: 'match',
      selector: selector.path,
      operator,
      spelled,
      value: value?.literal ?? null,
      regex,
      at,
    }
  }

  #regex(value: Value): RegexProgram {
    const pattern = value.literal.raw
    const failure = (reason: string) =>
      new FilterError(
        'parse',
        `Failed to compile regular expression ${JSON.stringify(pattern)}: ${reason}`,
        positionAt(this.#text, value.at),
      )
    if (Buffer.byteLength(pattern, 'utf8') > regexPatternBytesMax) {
      throw failure(`longer than ${regexPatternBytesMax} bytes (regexPatternBytesMax)`)
    }
    try {
      return compileRegex(pattern)
    } catch (error) {
      if (error instanceof RegexSyntaxError) throw failure(`error parsing regexp: ${error.message}`)
      throw error
    }
  }

  /** go-bexpr's validation against the field configuration (validate.go). */
  #check(selector: Selector, operator: MatchOperator, spelled: string, value: Value | null): void {
    const name = selectorText(selector.path)
    const resolved = resolveSelector(this.#schema!, selector.path)
    if (!resolved.ok) {
      const prefix = selectorText(selector.path.slice(0, resolved.segments))
      throw new FilterError('parse', `Selector "${prefix}" is not valid`, positionAt(this.#text, selector.at))
    }
    const supported = operatorsOf(resolved.type)
    if (!supported.includes(operator)) {
      const list = supported.length === 0 ? 'no operators' : supported.join(', ')
      throw new FilterError(
        'parse',
        `Invalid match operator "${spelled}" for selector "${name}": ${typeName(resolved.type)} supports ${list}`,
        positionAt(this.#text, selector.at),
      )
    }
    if (value === null) return
    const type = resolved.type
    if (
      (type === 'number' && value.literal.number === null) ||
      (type === 'boolean' && value.literal.boolean === null)
    ) {
      throw new FilterError(
        'parse',
        `Failed to coerce value ${JSON.stringify(value.literal.raw)} for selector "${name}": not ${typeName(type)}`,
        positionAt(this.#text, value.at),
      )
    }
  }

  /** Whitespace, then `word` followed by whitespace: consumes all three. Otherwise consumes nothing. */
  #keywordAfterSpace(word: string): boolean {
    const save = this.#at
    if (this.#skipSpace() > 0 && this.#wordAt(word)) {
      this.#at += word.length
      this.#requireSpace(word)
      return true
    }
    this.#at = save
    return false
  }

  #requireSpace(after: string): void {
    if (this.#skipSpace() === 0) throw this.#syntax(this.#at, [`whitespace after "${after}"`])
  }

  /** `word` at the cursor, not followed by another identifier character. */
  #wordAt(word: string): boolean {
    return (
      this.#text.startsWith(word, this.#at) && !isIdentPart(this.#text.charCodeAt(this.#at + word.length))
    )
  }

  /** Consumes identifier characters ([A-Za-z0-9_]) at the cursor and returns them ('' if none). */
  #word(): string {
    const start = this.#at
    while (isIdentPart(this.#text.charCodeAt(this.#at))) this.#at++
    return this.#text.slice(start, this.#at)
  }

  #skipSpace(): number {
    const start = this.#at
    while (isSpace(this.#text.charCodeAt(this.#at))) this.#at++
    return this.#at - start
  }

  #enter(): void {
    this.#depth++
    if (this.#depth > nestingDepthMax) {
      throw new FilterError(
        'parse',
        `expression nests deeper than ${nestingDepthMax} levels of parentheses and "not" (nestingDepthMax)`,
        positionAt(this.#text, this.#at),
      )
    }
  }

  /** A term ended and something else than `and`, `or` or `closing` follows. */
  #unexpected(closing: string[]): FilterError {
    if (this.#at >= this.#text.length) return this.#syntax(this.#at, closing)
    const spaced = this.#at > 0 && isSpace(this.#text.charCodeAt(this.#at - 1))
    return this.#syntax(this.#at, spaced ? ['"and"', '"or"', ...closing] : ['whitespace', ...closing])
  }

  #syntax(at: number, expected: string[]): FilterError {
    const found = at >= this.#text.length ? 'end of input' : JSON.stringify(this.#text.slice(at, at + 12))
    return new FilterError(
      'parse',
      `no match found, expected: ${expectedList(expected)}; found ${found}`,
      positionAt(this.#text, at),
      expected,
    )
  }
}

function valueOfSelector(selector: Selector): Value {
  return { literal: literalOf(selectorText(selector.path)), at: selector.at }
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

function isIdentStart(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)
}

function isIdentPart(code: number): boolean {
  return isIdentStart(code) || isDigit(code) || code === 0x5f
}
