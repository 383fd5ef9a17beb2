/**
 * Properties of parseFilter and Filter.matches over random input:
 * - any string (random text, or a soup of the language's own tokens) either parses or is refused
 *   with a FilterError, quickly; a filter that parses then evaluates or fails with a FilterError,
 *   never anything else;
 * - on random well-formed expressions and random entries, `not (E)` is the negation of E (or
 *   both fail alike), and rendering E with the fewest parentheses its precedence needs means the
 *   same as rendering it with parentheses around everything.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FilterError, healthEntrySchema, parseFilter } from './index.ts'

const sampleEntries: unknown[] = [
  {
    Node: { Node: 'n1', Meta: { zone: 'a' } },
    Service: { Service: 'web', Tags: ['v1'], Meta: { version: '2' }, Port: 80, EnableTagOverride: false },
    Checks: [{ Status: 'passing', ServiceTags: [] }],
  },
  { Service: null, Checks: [] },
  'not an object',
  [1, 'two', { Three: [3] }],
  null,
]

/** Runs `work`, expecting it to succeed or throw a FilterError; returns the result or the error. */
function outcome<T>(work: () => T): T | FilterError {
  try {
    return work()
  } catch (error) {
    if (error instanceof FilterError) return error
    throw error
  }
}

function survives(text: string): void {
  const started = performance.now()
  for (const fields of [undefined, healthEntrySchema]) {
    const filter = outcome(() => parseFilter(text, fields === undefined ? {} : { fields }))
    if (filter instanceof FilterError) continue
    for (const entry of sampleEntries) outcome(() => filter.matches(entry))
  }
  expect(performance.now() - started).toBeLessThan(250)
}

const tokens = [
  'Service',
  'Checks',
  'Meta',
  'Tags',
  'Status',
  'Port',
  '.',
  '[',
  ']',
  '"',
  '`',
  '\\',
  '(',
  ')',
  ' ',
  '\n',
  'and',
  'or',
  'not',
  'in',
  'contains',
  'matches',
  'is',
  'empty',
  '==',
  '!=',
  '=',
  '0',
  '80',
  '-',
  '1.5',
  'v1',
  'é',
  '😀',
  '"v1"',
  '`x`',
  '"\\u00e9"',
  '"\\x41"',
  '"(a+)+$"',
  '"[a-"',
  '"(?i)web"',
  '"\\\\1"',
]

describe('no input makes parseFilter or matches throw anything but FilterError, or take long', () => {
  it('random text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), survives), { numRuns: 3000 })
  })

  it('random soups of the language’s tokens', () => {
    const soup = fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((parts) => parts.join(''))
    const spaced = fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((parts) => parts.join(' '))
    fc.assert(fc.property(fc.oneof(soup, spaced), survives), { numRuns: 5000 })
  })
})

type Expression =
  | { readonly kind: 'term'; readonly text: string }
  | { readonly kind: 'not'; readonly operand: Expression }
  | { readonly kind: 'and' | 'or'; readonly left: Expression; readonly right: Expression }

const selectors = [
  'Service.Service',
  'Service.Port',
  'Service.Tags',
  'Service.Meta.version',
  'Service.Meta["my-key"]',
  'Service.EnableTagOverride',
  'Node.Meta.zone',
  'Node.Meta',
  'Checks.Status',
  'Checks.ServiceTags',
  'Nope.Field',
]
const values = ['"v1"', 'v1', '80', '`2`', 'passing', '"a"', 'true', '""', 'web']
const patterns = ['"^w"', '"1$"', '"(?i)PASS"', '"a|2"', '""']

const term: fc.Arbitrary<Expression> = fc
  .tuple(fc.constantFrom(...selectors), fc.constantFrom(...values), fc.constantFrom(...patterns), fc.nat(9))
  .map(([s, v, p, form]) => {
    const texts = [
      `${s} == ${v}`,
      `${s} != ${v}`,
      `${v} in ${s}`,
      `${v} not in ${s}`,
      `${s} contains ${v}`,
      `${s} not contains ${v}`,
      `${s} matches ${p}`,
      `${s} not matches ${p}`,
      `${s} is empty`,
      `${s} is not empty`,
    ]
    return { kind: 'term', text: texts[form]! }
  })

const expression: fc.Arbitrary<Expression> = fc.letrec<{ e: Expression }>((tie) => ({
  e: fc.oneof(
    { maxDepth: 5, depthIdentifier: 'expression' },
    term,
    tie('e').map((operand): Expression => ({ kind: 'not', operand })),
    fc
      .tuple(fc.constantFrom('and' as const, 'or' as const), tie('e'), tie('e'))
      .map(([kind, left, right]): Expression => ({ kind, left, right })),
  ),
})).e

/** Parentheses around every operand. */
function renderFull(e: Expression): string {
  if (e.kind === 'term') return e.text
  if (e.kind === 'not') return `not (${renderFull(e.operand)})`
  return `(${renderFull(e.left)}) ${e.kind} (${renderFull(e.right)})`
}

/** Only the parentheses precedence needs: or (1) < and (2) < not (3). */
function renderLean(e: Expression, context = 0): string {
  if (e.kind === 'term') return e.text
  if (e.kind === 'not') return `not ${renderLean(e.operand, 3)}`
  const own = e.kind === 'or' ? 1 : 2
  const text = `${renderLean(e.left, own)} ${e.kind} ${renderLean(e.right, own)}`
  return context > own ? `(${text})` : text
}

const word = fc.constantFrom('', 'v1', 'web', 'passing', 'a', '2', '80')
const stringMap = fc.option(fc.dictionary(fc.constantFrom('version', 'zone', 'my-key'), word), { nil: null })
const stringList = fc.option(fc.array(word, { maxLength: 3 }), { nil: null })
const randomEntry = fc.record(
  {
    Node: fc.record({ Meta: stringMap }, { requiredKeys: [] }),
    Service: fc.record(
      {
        Service: word,
        Port: fc.constantFrom(80, 2, 0),
        Tags: stringList,
        Meta: stringMap,
        EnableTagOverride: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    Checks: fc.array(fc.record({ Status: word, ServiceTags: stringList }, { requiredKeys: [] }), {
      maxLength: 3,
    }),
  },
  { requiredKeys: [] },
)

function evaluation(text: string, entry: unknown): boolean | 'error' {
  const result = outcome(() => parseFilter(text).matches(entry))
  return result instanceof FilterError ? 'error' : result
}

describe('meaning on random well-formed expressions and entries', () => {
  it('not (E) is the negation of E', () => {
    fc.assert(
      fc.property(expression, randomEntry, (e, entry) => {
        const text = renderLean(e)
        const plain = evaluation(text, entry)
        const negated = evaluation(`not (${text})`, entry)
        expect(negated).toBe(plain === 'error' ? 'error' : !plain)
      }),
      { numRuns: 3000 },
    )
  })

  it('precedence: the lean rendering means what the fully parenthesized one does', () => {
    fc.assert(
      fc.property(expression, randomEntry, (e, entry) => {
        expect(evaluation(renderLean(e), entry)).toBe(evaluation(renderFull(e), entry))
      }),
      { numRuns: 3000 },
    )
  })
})
