/**
 * Evaluating a parsed expression against one JSON-like entry, with go-bexpr's semantics
 * (evaluate.go, v0.1.2, the release Consul ships):
 *
 * - Walking a selector: an object steps to its own property (never an inherited one); a list
 *   applies the rest of the selector to each element and the term holds if it holds for ANY
 *   element, whatever the operator. So `Checks.Status != passing` means "some check is not
 *   passing", and over an empty list every term, `!=` and `is empty` included, is false.
 * - Missing, and null: a property that is absent or null anywhere along the selector ends the walk
 *   with go-bexpr's answer for a missing map key: `==`, `in`, `matches`, `is not empty` are false;
 *   `!=`, `not in`, `not matches`, `is empty` are true (nothing equals, contains or matches what is
 *   not there, and it is empty). A null list or map (a nil slice or map in Go) is so empty.
 * - Where the selector ends, by the value's JSON type:
 *     string   == != (exact), in/contains (substring), matches (search), is empty
 *     number   == != after converting the literal (`Port == 80`, `Port == "80"`)
 *     boolean  == != after converting the literal as strconv.ParseBool (`true`, `T`, `1`...)
 *     array    in/contains (an element equals the literal, converted to that element's type),
 *              is empty
 *     object   in/contains (has the key), is empty (has no keys): a map, as JSON cannot tell a
 *              struct from a map (a schema can, and refuses these on objects)
 *   Anything else (`==` on a list, `matches` on a number, `in` on a boolean, a literal that does
 *   not convert, a selector that goes on past a string) is a FilterError, as go-bexpr returns an
 *   error. A schema rules all of these out at parse time, for data that fits the schema.
 *
 * Bounds: recursion follows `not`, `and`, `or`, so its depth is at most nestingDepthMax + 1; the
 * walk through lists is a loop with its own stack, so deeply nested data cannot overflow it.
 * `and`/`or` stop at the first operand that decides them, as go-bexpr does, so a faulty term that
 * is never reached raises nothing.
 */
import { FilterError, positionAt } from './error.ts'
import { type FilterNode, type MatchOperator, type MatchTerm, selectorText } from './expression.ts'

export function evaluate(node: FilterNode, datum: unknown, text: string): boolean {
  switch (node.kind) {
    case 'match':
      return matchTerm(node, datum, text)
    case 'not':
      return !evaluate(node.operand, datum, text)
    case 'and':
      for (const operand of node.operands) if (!evaluate(operand, datum, text)) return false
      return true
    case 'or':
      for (const operand of node.operands) if (evaluate(operand, datum, text)) return true
      return false
  }
}

/** go-bexpr's answer when the selector reaches nothing (NotPresentDisposition). */
function whenAbsent(operator: MatchOperator): boolean {
  return operator === '!=' || operator === 'not in' || operator === 'not matches' || operator === 'is empty'
}

function matchTerm(term: MatchTerm, datum: unknown, text: string): boolean {
  const path = term.selector
  const values: unknown[] = [datum]
  const depths: number[] = [0]
  while (values.length > 0) {
    const value = values.pop()
    const depth = depths.pop()!
    if (value === undefined || value === null) {
      if (whenAbsent(term.operator)) return true
    } else if (depth === path.length) {
      if (apply(term, value, text)) return true
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        values.push(value[i])
        depths.push(depth)
      }
    } else if (typeof value === 'object') {
      const key = path[depth]!
      if (!Object.hasOwn(value, key)) {
        if (whenAbsent(term.operator)) return true
        continue
      }
      values.push((value as Record<string, unknown>)[key])
      depths.push(depth + 1)
    } else {
      const at = selectorText(path.slice(0, depth))
      throw fault(
        term,
        text,
        `Value at selector "${at}" is ${kindOf(value)} and has no field "${path[depth]}"`,
      )
    }
  }
  return false
}

function apply(term: MatchTerm, value: unknown, text: string): boolean {
  switch (term.operator) {
    case '==':
      return equals(term, value, text)
    case '!=':
      return !equals(term, value, text)
    case 'in':
      return contains(term, value, text)
    case 'not in':
      return !contains(term, value, text)
    case 'matches':
      return regexMatches(term, value, text)
    case 'not matches':
      return !regexMatches(term, value, text)
    case 'is empty':
      return isEmpty(term, value, text)
    case 'is not empty':
      return !isEmpty(term, value, text)
  }
}

function equals(term: MatchTerm, value: unknown, text: string): boolean {
  const literal = term.value!
  switch (typeof value) {
    case 'string':
      return value === literal.raw
    case 'number':
      if (literal.number === null) throw coerceFault(term, text, 'a number')
      return value === literal.number
    case 'boolean':
      if (literal.boolean === null) throw coerceFault(term, text, 'a boolean')
      return value === literal.boolean
    default:
      throw operatorFault(term, value, text)
  }
}

function contains(term: MatchTerm, value: unknown, text: string): boolean {
  const literal = term.value!
  if (typeof value === 'string') return value.includes(literal.raw)
  if (Array.isArray(value)) {
    for (const element of value) {
      if (typeof element === 'string' && element === literal.raw) return true
      if (typeof element === 'number' && element === literal.number) return true
      if (typeof element === 'boolean' && element === literal.boolean) return true
    }
    return false
  }
  if (typeof value === 'object') return Object.hasOwn(value as object, literal.raw)
  throw operatorFault(term, value, text)
}

function regexMatches(term: MatchTerm, value: unknown, text: string): boolean {
  if (typeof value !== 'string') throw operatorFault(term, value, text)
  return term.regex!.test(value)
}

function isEmpty(term: MatchTerm, value: unknown, text: string): boolean {
  if (typeof value === 'string' || Array.isArray(value)) return value.length === 0
  if (typeof value === 'object') {
    for (const key in value) if (Object.hasOwn(value as object, key)) return false
    return true
  }
  throw operatorFault(term, value, text)
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  return `a ${typeof value}`
}

function fault(term: MatchTerm, text: string, reason: string): FilterError {
  return new FilterError('evaluate', reason, positionAt(text, term.at))
}

function operatorFault(term: MatchTerm, value: unknown, text: string): FilterError {
  const selector = selectorText(term.selector)
  return fault(
    term,
    text,
    `Invalid match operator "${term.spelled}" for selector "${selector}": it is ${kindOf(value)}`,
  )
}

function coerceFault(term: MatchTerm, text: string, kind: string): FilterError {
  const selector = selectorText(term.selector)
  return fault(
    term,
    text,
    `Failed to coerce value ${JSON.stringify(term.value!.raw)} for selector "${selector}": not ${kind}`,
  )
}
