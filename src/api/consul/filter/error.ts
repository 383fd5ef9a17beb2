/**
 * FilterError: everything wrong with a `?filter=` expression, at parse time (syntax, a limit, an
 * unknown selector, an operator the field does not support, a value that does not convert, a bad
 * regular expression) or at evaluation time (the expression does not fit the data, which a schema
 * rules out in advance). Consul answers all of these 400 with the message as a plain-text body.
 *
 * Messages follow go-bexpr's shape so that a client's error handling sees what it knows:
 *   Failed to create boolean expression evaluator: 1:13 (12): no match found, expected: "==" or "!="
 * where 1:13 is line and column (counted in characters from 1) and (12) the offset in UTF-8 bytes
 * from 0, as pigeon, go-bexpr's parser generator, reports them.
 */

export interface FilterPosition {
  /** 1-based line. */
  readonly line: number
  /** 1-based column, counted in Unicode code points. */
  readonly column: number
  /** 0-based offset in UTF-8 bytes. */
  readonly offset: number
}

export type FilterErrorStage = 'parse' | 'evaluate'

const stagePrefix: Record<FilterErrorStage, string> = {
  parse: 'Failed to create boolean expression evaluator',
  evaluate: 'Failed to evaluate filter',
}

export class FilterError extends Error {
  readonly stage: FilterErrorStage
  /** Where in the expression the fault is; null for faults of the whole (its length, its terms). */
  readonly position: FilterPosition | null
  /** What the parser would have accepted at `position`; empty when the fault is not a syntax one. */
  readonly expected: readonly string[]
  /** The message without the stage prefix and position. */
  readonly reason: string

  constructor(
    stage: FilterErrorStage,
    reason: string,
    position: FilterPosition | null = null,
    expected: readonly string[] = [],
  ) {
    const where = position === null ? '' : `${position.line}:${position.column} (${position.offset}): `
    super(`${stagePrefix[stage]}: ${where}${reason}`)
    this.name = 'FilterError'
    this.stage = stage
    this.position = position
    this.expected = expected
    this.reason = reason
  }
}

export function isFilterError(error: unknown): error is FilterError {
  return error instanceof FilterError
}

/** The position of UTF-16 index `index` in `text`. Computed only when an error is raised. */
export function positionAt(text: string, index: number): FilterPosition {
  let line = 1
  let column = 1
  let offset = 0
  for (let i = 0; i < index && i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x0a) {
      line++
      column = 1
      offset++
      continue
    }
    const pair = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && isLowSurrogate(text, i + 1)
    column++
    if (pair) {
      offset += 4
      i++
    } else offset += code < 0x80 ? 1 : code < 0x800 ? 2 : 3
  }
  return { line, column, offset }
}

function isLowSurrogate(text: string, i: number): boolean {
  const code = text.charCodeAt(i)
  return code >= 0xdc00 && code <= 0xdfff
}

/** `"a", "b" or "c"`, the way pigeon lists what it expected. */
export function expectedList(expected: readonly string[]): string {
  if (expected.length <= 1) return expected.join('')
  return `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}`
}
