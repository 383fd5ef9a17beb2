/**
 * parseFilter: a `?filter=` expression (hashicorp/go-bexpr's language, as Consul's HTTP API takes
 * it) turned into a predicate over the entries an endpoint is about to return.
 *
 *   const filter = parseFilter('Service.Meta.version == "2" and Checks.Status != critical', {
 *     fields: healthEntrySchema,
 *   })
 *   const kept = entries.filter((entry) => filter.matches(entry))
 *
 * Both steps throw only FilterError (answer 400 with its message as a plain-text body). With a
 * schema, every fault that go-bexpr reports when creating the evaluator is reported here at parse
 * time; matches can then only fail on data that does not fit the schema.
 *
 * Pure: no I/O, no clock, no randomness. A Filter holds no state between calls and may be shared.
 * docs/consul-filter.md is the page for users.
 */
import { FilterError } from './error.ts'
import { evaluate } from './evaluator.ts'
import type { FilterNode } from './expression.ts'
import { expressionBytesMax } from './limits.ts'
import { parseExpression } from './parser.ts'
import type { FieldSchema } from './schema.ts'

export interface FilterOptions {
  /** The fields of the entries filtered: unknown selectors, unsupported operators and unconvertible values become parse errors. */
  readonly fields?: FieldSchema
}

export interface Filter {
  /** The expression as given. */
  readonly text: string
  /** Whether `entry` (a JSON-like value, as it will be serialized) passes the filter. */
  matches(entry: unknown): boolean
}

export function parseFilter(text: string, options: FilterOptions = {}): Filter {
  // Every UTF-16 unit is at least one UTF-8 byte: the cheap test first, so a huge string is not scanned.
  if (text.length > expressionBytesMax || Buffer.byteLength(text, 'utf8') > expressionBytesMax) {
    throw new FilterError(
      'parse',
      `the expression is longer than ${expressionBytesMax} bytes (expressionBytesMax)`,
    )
  }
  return new ParsedFilter(text, parseExpression(text, options.fields ?? null))
}

class ParsedFilter implements Filter {
  readonly text: string
  readonly #root: FilterNode

  constructor(text: string, root: FilterNode) {
    this.text = text
    this.#root = root
  }

  matches(entry: unknown): boolean {
    return evaluate(this.#root, entry, this.text)
  }
}
