/**
 * The parsed form of a filter expression.
 *
 * Invariants: `and` and `or` hold at least two operands and never directly hold a node of their own
 * kind (chains are flat, so only parentheses and `not` add depth, and depth <= nestingDepthMax);
 * a term's `value` is null exactly for `is empty` / `is not empty`; `regex` is set exactly for
 * `matches` / `not matches`.
 */
import type { Literal } from './literal.ts'
import type { RegexProgram } from './regex-program.ts'

/** `S contains v` is read as `v in S`, and `S not contains v` as `v not in S`, as in go-bexpr. */
export type MatchOperator =
  | '=='
  | '!='
  | 'in'
  | 'not in'
  | 'matches'
  | 'not matches'
  | 'is empty'
  | 'is not empty'

export interface MatchTerm {
  readonly kind: 'match'
  /** The selector's path: `Service.Meta["my-key"]` is ['Service', 'Meta', 'my-key']. */
  readonly selector: readonly string[]
  readonly operator: MatchOperator
  /** The operator as written (`contains`, `not contains` or the operator itself), for messages. */
  readonly spelled: string
  readonly value: Literal | null
  readonly regex: RegexProgram | null
  /** UTF-16 index in the expression where the term starts, for positions in evaluation errors. */
  readonly at: number
}

export type FilterNode =
  | MatchTerm
  | { readonly kind: 'not'; readonly operand: FilterNode }
  | { readonly kind: 'and'; readonly operands: readonly FilterNode[] }
  | { readonly kind: 'or'; readonly operands: readonly FilterNode[] }

/** `Service.Meta.version`: the dotted form go-bexpr prints. */
export function selectorText(path: readonly string[]): string {
  return path.join('.')
}
