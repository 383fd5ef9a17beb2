/**
 * Proves parseFilter and Filter.matches against go-bexpr's behaviour, as Consul's docs and
 * go-bexpr's sources state it: every operator on every kind of field, precedence (`not` over `and`
 * over `or`), quoting and bare values, the ANY semantics of selectors through lists, the answers
 * for missing keys, errors with their positions, schemas, and the limits.
 */
import { describe, expect, it } from 'vitest'
import {
  agentCheckSchema,
  agentServiceSchema,
  type FieldSchema,
  type FieldType,
  FilterError,
  healthCheckSchema,
  healthEntrySchema,
  nodeSchema,
  parseFilter,
  serviceNodeSchema,
} from './index.ts'
import { expressionBytesMax, nestingDepthMax, regexPatternBytesMax, termsMax } from './limits.ts'

const serfCheck = {
  Node: 'n1',
  CheckID: 'serfHealth',
  Name: 'Serf Health Status',
  Status: 'passing',
  Notes: '',
  Output: 'Agent alive and reachable',
  ServiceID: '',
  ServiceName: '',
  ServiceTags: [],
  Type: '',
}
const webCheck = {
  ...serfCheck,
  CheckID: 'service:web-1',
  Name: 'web HTTP',
  Status: 'warning',
  Output: '',
  ServiceID: 'web-1',
  ServiceName: 'web',
  ServiceTags: ['v1', 'primary'],
  Type: 'http',
}
const entry = {
  Node: {
    ID: '40e4a748-2192-161a-0510-9bf59fe950b5',
    Node: 'n1',
    Address: '10.0.0.1',
    Datacenter: 'dc1',
    TaggedAddresses: { lan: '10.0.0.1' },
    Meta: { zone: 'a', 'my-key': 'x', blank: '' },
  },
  Service: {
    ID: 'web-1',
    Service: 'web',
    Tags: ['v1', 'primary'],
    Address: '',
    Meta: { version: '2' },
    Port: 80,
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Kind: '',
  },
  Checks: [serfCheck, webCheck],
}

function check(expression: string, value: unknown = entry): boolean {
  return parseFilter(expression).matches(value)
}

function parseError(expression: string, fields?: FieldSchema): FilterError {
  try {
    parseFilter(expression, fields === undefined ? {} : { fields })
  } catch (error) {
    if (error instanceof FilterError) return error
    throw error
  }
  throw new Error(`expected ${JSON.stringify(expression)} to be refused`)
}

type Case = [expression: string, expected: boolean]

describe('operators on strings', () => {
  const cases: Case[] = [
    ['Service.Service == web', true],
    ['Service.Service == "web"', true],
    ['Service.Service==web', true],
    ['Service.Service == "Web"', false],
    ['Service.Service != web', false],
    ['Service.Service != api', true],
    ['eb in Service.Service', true], // in / contains on a string: substring
    ['"we" in Service.Service', true],
    ['Service.Service contains "eb"', true],
    ['Service.Service contains "x"', false],
    ['"x" not in Service.Service', true],
    ['Service.Service not contains eb', false],
    ['"" in Service.Service', true],
    ['Service.Service matches "^w.b$"', true],
    ['Node.Node matches "^n[0-9]+$"', true],
    ['Service.Service matches "^api"', false],
    ['Service.Service not matches "^api"', true],
    ['Service.Address is empty', true],
    ['Service.Address is not empty', false],
    ['Service.Service is empty', false],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression)).toBe(expected))
})

describe('operators on numbers and booleans: the literal converts to the field type', () => {
  const cases: Case[] = [
    ['Service.Port == 80', true],
    ['Service.Port == "80"', true],
    ['Service.Port == `80`', true],
    ['Service.Port != 81', true],
    ['Service.Port == -80', false],
    ['Service.Weights.Passing == 1', true],
    ['Service.EnableTagOverride == false', true],
    ['Service.EnableTagOverride == F', true],
    ['Service.EnableTagOverride == 0', true],
    ['Service.EnableTagOverride == "False"', true],
    ['Service.EnableTagOverride == true', false],
    ['Service.EnableTagOverride != true', true],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression)).toBe(expected))
})

describe('operators on lists and maps', () => {
  const cases: Case[] = [
    ['v1 in Service.Tags', true], // membership
    ['"v1" in Service.Tags', true],
    ['`v1` in Service.Tags', true],
    ['Service.Tags contains v1', true],
    ['Service.Tags contains "v"', false], // elements are compared whole
    ['v3 not in Service.Tags', true],
    ['Service.Tags not contains primary', false],
    ['Service.Tags is empty', false],
    ['Service.Tags is not empty', true],
    ['zone in Node.Meta', true], // on a map: has the key
    ['"a" in Node.Meta', false], // keys, not values
    ['Node.Meta contains rack', false],
    ['Node.Meta not contains rack', true],
    ['Node.Meta is empty', false],
    ['Node.Meta.zone == a', true],
    ['Node.Meta["my-key"] == x', true],
    ['Node.Meta[ `my-key` ] == "x"', true],
    ['Node.Meta.blank is empty', true],
    ['Checks is empty', false],
    ['Checks is not empty', true],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression)).toBe(expected))

  it('compares list elements of other JSON types after converting the literal to each', () => {
    const value = { List: [80, true, 'x', null, { a: 1 }] }
    expect(check('80 in List', value)).toBe(true)
    expect(check('"true" in List', value)).toBe(true)
    expect(check('x in List', value)).toBe(true)
    expect(check('81 in List', value)).toBe(false)
    expect(check('a in List', value)).toBe(false)
  })
})

describe('missing keys, missing fields and null: go-bexpr answers as for a missing map key', () => {
  const absent = [
    'Node.Meta.rack',
    'Node.Meta["no-such"]',
    'Service.Nope',
    'Nope.Deeper.Still',
    'Service.Tags',
  ]
  const cases: [operator: string, expected: boolean][] = [
    ['== a', false],
    ['!= a', true],
    ['contains a', false],
    ['not contains a', true],
    ['matches "."', false],
    ['not matches "."', true],
    ['is empty', true],
    ['is not empty', false],
  ]
  const nullTags = { ...entry, Service: { ...entry.Service, Tags: null } }
  for (const selector of absent) {
    it.each(cases)(`${selector} %s → %s`, (operator, expected) => {
      expect(check(`${selector} ${operator}`, nullTags)).toBe(expected)
    })
  }

  it('does not reach inherited properties', () => {
    expect(check('Service.constructor is empty')).toBe(true)
    expect(check('toString in Node.Meta')).toBe(false)
    expect(check('Node.Meta["__proto__"] is empty')).toBe(true)
  })
})

describe('selectors through a list of objects hold if they hold for ANY element', () => {
  const cases: Case[] = [
    ['Checks.Status == passing', true],
    ['Checks.Status == critical', false],
    ['Checks.Status != passing', true], // the web check is not passing
    ['Checks.Status != warning', true], // the serf check is not warning
    ['not (Checks.Status == warning)', false], // not the same as the line above
    ['Checks.ServiceTags contains v1', true],
    ['Checks.Output is empty', true],
    ['Checks.CheckID == serfHealth and Checks.Status == warning', true], // two different elements
    ['Checks.Nope == x', false],
    ['Checks.Nope != x', true],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression)).toBe(expected))

  it('over an empty list, every term is false, negative ones included', () => {
    const none = { ...entry, Checks: [] }
    for (const expression of [
      'Checks.Status == passing',
      'Checks.Status != passing',
      'Checks.Status is empty',
      'Checks.Status not matches "x"',
    ]) {
      expect(check(expression, none)).toBe(false)
    }
    expect(check('Checks is empty', none)).toBe(true)
    expect(check('not (Checks.Status == passing)', none)).toBe(true)
  })

  it('walks lists inside lists, and deeply nested data without overflowing the stack', () => {
    expect(check('Items.Name == b', { Items: [[{ Name: 'a' }], [[{ Name: 'b' }]]] })).toBe(true)
    let deep: unknown = { Name: 'x' }
    for (let i = 0; i < 200_000; i++) deep = [deep]
    expect(check('Name == x', deep)).toBe(true)
    expect(check('Name == y', deep)).toBe(false)
  })
})

describe('precedence: not binds tighter than and, and tighter than or', () => {
  // T: Service.Service == web (true); F: Service.Port == 1 (false).
  const T = 'Service.Service == web'
  const F = 'Service.Port == 1'
  const cases: Case[] = [
    [`${T} or ${F} and ${F}`, true], // T or (F and F); (T or F) and F would be false
    [`${F} and ${F} or ${T}`, true], // (F and F) or T
    [`${F} and (${F} or ${T})`, false],
    [`not ${T} and ${F}`, false], // (not T) and F; not (T and F) would be true
    [`not ${F} or ${F}`, true],
    [`not ${T} or ${T}`, true], // (not T) or T; not (T or T) would be false
    [`not not ${T}`, true],
    [`not (${T} and ${F})`, true],
    [`(${T})`, true],
    [`((${F}) or (${T}))`, true],
    [`${T} and ${T} and ${T} and ${F}`, false],
    [`${F} or ${F} or ${F} or ${T}`, true],
    [` \t\r\n${T}\n `, true],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression)).toBe(expected))
})

describe('values', () => {
  const value = {
    S: 'a\tb',
    Q: 'say "hi"',
    B: 'back\\slash',
    U: 'é😀',
    D: 'foo.bar',
    N: '-1.5',
    R: 'a\\tb',
    L: 'a\nb',
  }
  const cases: Case[] = [
    ['S == "a\\tb"', true], // Go escapes in double quotes
    ['R == `a\\tb`', true], // raw in backticks
    ['S == `a\\tb`', false],
    ['L == `a\r\nb`', true], // Go drops carriage returns from raw strings
    ['Q == "say \\"hi\\""', true], // \" is accepted (go-bexpr refuses it)
    ['Q == `say "hi"`', true],
    ['B == "back\\\\slash"', true],
    ['U == "\\u00e9\\U0001F600"', true],
    ['S == "a\\011b"', true], // octal
    ['D == foo.bar', true], // a bare selector-like value is its dotted text
    ['N == -1.5', true],
    ['"1.5" in N', true],
  ]
  it.each(cases)('%s → %s', (expression, expected) => expect(check(expression, value)).toBe(expected))
})

describe('syntax errors name the position and what was expected', () => {
  const cases: [expression: string, position: string, message: RegExp][] = [
    ['foo', '1:4 (3)', /no match found, expected: "==", "!=", ".*" or whitespace; found end of input/],
    ['', '1:1 (0)', /expected: "\(", "not", a selector or a value/],
    ['Service.Port == 1.2.3', '1:20 (19)', /rule "number": Invalid number literal/],
    ['Address == 10.10.10.10', '1:17 (16)', /rule "number": Invalid number literal/], // Consul issue 9441
    ['Service.Port == 080', '1:18 (17)', /Invalid number literal/],
    ['Service.Service == "web', '1:20 (19)', /rule "string": Unterminated string literal/],
    ['Service.Service == `web', '1:20 (19)', /Unterminated string literal/],
    ['Service.Service == "a\\qb"', '1:22 (21)', /invalid escape sequence "\\\\q"/],
    ['Service.Service == "a\nb"', '1:22 (21)', /may not hold a newline/],
    ['Service.Service == "\\xff"', '1:21 (20)', /byte escapes above/],
    ['(Service.Service == web', '1:24 (23)', /expected: "\)"; found end of input/],
    ['(Service.Service == web x', '1:25 (24)', /expected: "and", "or" or "\)"/],
    ['Service.Service == web)', '1:23 (22)', /expected: whitespace or end of input/],
    ['Service.Service == web foo', '1:24 (23)', /expected: "and", "or" or end of input; found "foo"/],
    ['Service.Service == "web"and x == 1', '1:25 (24)', /expected: whitespace or end of input/],
    ['Service.Service == web and', '1:27 (26)', /whitespace after "and"/],
    ['Service.Service == web and ', '1:28 (27)', /a selector/],
    ['not(Service.Service == web)', '1:4 (3)', /whitespace after "not"/],
    ['Service.Service = web', '1:17 (16)', /"=="/],
    ['Service.Service equals web', '1:17 (16)', /"==", "!=", "contains", "in", "is", "matches" or "not"/],
    ['Service.Tags is full', '1:17 (16)', /"empty" or "not"/],
    ['Service.Tags is not full', '1:21 (20)', /"empty"/],
    ['Service.Tags not has v1', '1:18 (17)', /"contains", "in" or "matches"/],
    ['"v1" on Service.Tags', '1:6 (5)', /"in" or "not"/],
    ['"v1" in "Service"', '1:9 (8)', /a selector/],
    ['Service. == x', '1:9 (8)', /an identifier/],
    ['Service.0 == x', '1:9 (8)', /an identifier/],
    ['Service.Meta[version] == x', '1:14 (13)', /a quoted map key/],
    ['Service.Meta["version" == x', '1:24 (23)', /"\]"/],
    ['Service.Service == ', '1:20 (19)', /a value/],
    ['Service.Service ==\n  web and\nfoo', '3:4 (32)', /"==", "!="/],
    ['Node.Meta.é == "é" foo', '1:11 (10)', /an identifier/],
    ['Node.Meta.x == "é" foo', '1:20 (20)', /expected: "and", "or" or end of input/],
  ]
  it.each(cases)('%j at %s', (expression, position, message) => {
    const error = parseError(expression)
    expect(error.stage).toBe('parse')
    expect(error.message).toContain(`Failed to create boolean expression evaluator: ${position}: `)
    expect(error.message).toMatch(message)
    if (/no match found|number/.test(error.message)) expect(error.expected.length).toBeGreaterThan(0)
  })

  it('reports a bad regular expression at the pattern, with Go-style wording', () => {
    const error = parseError('Service.Service matches "(a"')
    expect(error.message).toBe(
      'Failed to create boolean expression evaluator: 1:25 (24): Failed to compile regular expression "(a": ' +
        'error parsing regexp: missing closing )',
    )
    expect(parseError('Service.Service matches "(a)\\\\1"').message).toMatch(
      /backreferences are not supported/,
    )
    expect(parseError('Service.Service not matches "(?<=a)b"').message).toMatch(/look-around/)
  })
})

describe('without a schema, faults the data reveals are FilterErrors when evaluating', () => {
  const cases: [expression: string, message: RegExp][] = [
    ['Service.Tags == v1', /Invalid match operator "==" for selector "Service.Tags": it is a list/],
    ['Service.Meta != x', /Invalid match operator "!=" for selector "Service.Meta": it is an object/],
    ['Service.Port == abc', /Failed to coerce value "abc" for selector "Service.Port": not a number/],
    ['Service.EnableTagOverride == yes', /Failed to coerce value "yes" .* not a boolean/],
    ['Service.Port contains 8', /Invalid match operator "contains" .* it is a number/],
    ['Service.Port matches "8"', /Invalid match operator "matches" .* it is a number/],
    ['Service.EnableTagOverride is empty', /Invalid match operator "is empty" .* it is a boolean/],
    ['Service.Service.Name == x', /Value at selector "Service.Service" is a string and has no field "Name"/],
  ]
  it.each(cases)('%s', (expression, message) => {
    const filter = parseFilter(`Service.Port == 80 and ${expression}`)
    let caught: unknown
    try {
      filter.matches(entry)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(FilterError)
    expect((caught as FilterError).stage).toBe('evaluate')
    expect((caught as FilterError).message).toMatch(/^Failed to evaluate filter: 1:24 \(23\): /)
    expect((caught as FilterError).message).toMatch(message)
  })

  it('raises nothing for a term that and/or never reach', () => {
    expect(check('Service.Port == 1 and Service.Tags == v1')).toBe(false)
    expect(check('Service.Port == 80 or Service.Tags == v1')).toBe(true)
  })
})

describe('schemas', () => {
  const accepted = [
    'Service.Service == web',
    'Service.Meta.anything == x',
    'Service.Meta["any-key"] is empty',
    'Service.Tags contains v1',
    'Service.Port == 80',
    'Service.Weights.Warning != 2',
    'Service.EnableTagOverride == true',
    'Node.TaggedAddresses.lan == "10.0.0.1"',
    'lan in Node.TaggedAddresses',
    'Checks.Status == passing',
    'Checks.ServiceTags contains v1',
    'Checks is not empty',
  ]
  it.each(accepted)('healthEntrySchema accepts %s', (expression) => {
    expect(() => parseFilter(expression, { fields: healthEntrySchema })).not.toThrow()
  })

  const refused: [expression: string, position: string, message: string][] = [
    ['Service.Foo == x', '1:1 (0)', 'Selector "Service.Foo" is not valid'],
    ['Nope == x', '1:1 (0)', 'Selector "Nope" is not valid'],
    ['service.Service == web', '1:1 (0)', 'Selector "service" is not valid'],
    ['Service.Meta.a.b == x', '1:1 (0)', 'Selector "Service.Meta.a.b" is not valid'],
    ['Service.Tags.x == v1', '1:1 (0)', 'Selector "Service.Tags.x" is not valid'],
    ['Service.Port.x == 1', '1:1 (0)', 'Selector "Service.Port.x" is not valid'],
    ['Service.constructor == x', '1:1 (0)', 'Selector "Service.constructor" is not valid'],
    [
      'Service.Tags == v1',
      '1:1 (0)',
      'Invalid match operator "==" for selector "Service.Tags": a list of strings supports in, not in, is empty, is not empty',
    ],
    [
      'Service.Service == web or Service.Port contains 8',
      '1:27 (26)',
      'Invalid match operator "contains" for selector "Service.Port"',
    ],
    [
      'Service is empty',
      '1:1 (0)',
      'Invalid match operator "is empty" for selector "Service": an object supports no operators',
    ],
    [
      'Checks == x',
      '1:1 (0)',
      'Invalid match operator "==" for selector "Checks": a list of objects supports is empty',
    ],
    ['Service.Meta matches "x"', '1:1 (0)', 'Invalid match operator "matches" for selector "Service.Meta"'],
    [
      'Service.Port == abc',
      '1:17 (16)',
      'Failed to coerce value "abc" for selector "Service.Port": not a number',
    ],
    ['Service.EnableTagOverride == maybe', '1:30 (29)', 'Failed to coerce value "maybe"'],
  ]
  it.each(refused)('healthEntrySchema refuses %s', (expression, position, message) => {
    const error = parseError(expression, healthEntrySchema)
    expect(error.message).toContain(`Failed to create boolean expression evaluator: ${position}: ${message}`)
  })

  it('checks the selector before compiling the pattern', () => {
    expect(parseError('Nope matches "("', healthEntrySchema).message).toMatch(/Selector "Nope" is not valid/)
  })

  const schemas: [name: string, schema: FieldSchema, fields: string[]][] = [
    ['nodeSchema', nodeSchema, ['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'Meta']],
    [
      'healthCheckSchema',
      healthCheckSchema,
      [
        'Node',
        'CheckID',
        'Name',
        'Status',
        'Notes',
        'Output',
        'ServiceID',
        'ServiceName',
        'ServiceTags',
        'Type',
      ],
    ],
    [
      'agentCheckSchema',
      agentCheckSchema,
      [
        'Node',
        'CheckID',
        'Name',
        'Status',
        'Notes',
        'Output',
        'ServiceID',
        'ServiceName',
        'ServiceTags',
        'Type',
      ],
    ],
    [
      'agentServiceSchema',
      agentServiceSchema,
      [
        'ID',
        'Service',
        'Tags',
        'Meta',
        'Port',
        'Address',
        'Weights',
        'EnableTagOverride',
        'Kind',
        'Datacenter',
      ],
    ],
    [
      'serviceNodeSchema',
      serviceNodeSchema,
      [
        'ID',
        'Node',
        'Address',
        'Datacenter',
        'TaggedAddresses',
        'NodeMeta',
        'ServiceID',
        'ServiceName',
        'ServiceAddress',
        'ServicePort',
        'ServiceTags',
        'ServiceMeta',
        'ServiceWeights',
        'ServiceEnableTagOverride',
        'ServiceKind',
        'CreateIndex',
        'ModifyIndex',
      ],
    ],
    ['healthEntrySchema', healthEntrySchema, ['Node', 'Service', 'Checks']],
  ]
  it.each(schemas)('%s has exactly the documented fields, each usable', (_name, schema, fields) => {
    expect(Object.keys(schema).sort()).toEqual([...fields].sort())
    for (const [selector, type] of leaves(schema)) {
      const term = termFor(selector, type)
      if (term !== null) expect(() => parseFilter(term, { fields: schema })).not.toThrow()
    }
  })
})

/** Every selector a schema allows (a string map with one key), with its type. */
function leaves(schema: FieldSchema, prefix = ''): [string, FieldType][] {
  const out: [string, FieldType][] = []
  for (const [name, type] of Object.entries(schema)) {
    const selector = prefix + name
    out.push([selector, type])
    if (type === 'stringMap') out.push([`${selector}.key`, 'string'])
    if (typeof type === 'object')
      out.push(...leaves('object' in type ? type.object : type.objectList, `${selector}.`))
  }
  return out
}

/** A term the field supports; null for an object, which supports none (its fields are leaves too). */
function termFor(selector: string, type: FieldType): string | null {
  if (type === 'number') return `${selector} == 1`
  if (type === 'boolean') return `${selector} == true`
  if (type === 'string') return `${selector} matches "x"`
  if (type === 'stringList' || type === 'stringMap') return `x in ${selector}`
  return 'objectList' in type ? `${selector} is empty` : null
}

describe('limits', () => {
  it(`refuses an expression longer than expressionBytesMax (${expressionBytesMax}) bytes`, () => {
    const value = 'x'.repeat(expressionBytesMax - 'A == ""'.length)
    expect(() => parseFilter(`A == "${value}"`)).not.toThrow()
    expect(parseError(`A == "${value}x"`).message).toMatch(/longer than 4096 bytes \(expressionBytesMax\)/)
    expect(parseError(`A == "${value.slice(1)}é"`).message).toMatch(/expressionBytesMax/) // counted in UTF-8
    expect(parseError('A == 1 '.repeat(1_000_000)).message).toMatch(/expressionBytesMax/)
  })

  it(`refuses nesting deeper than nestingDepthMax (${nestingDepthMax})`, () => {
    const nested = (depth: number) => `${'('.repeat(depth)}A == 1${')'.repeat(depth)}`
    expect(check(nested(nestingDepthMax), { A: 1 })).toBe(true)
    expect(parseError(nested(nestingDepthMax + 1)).message).toMatch(/nests deeper than 32 .*nestingDepthMax/)
    expect(check(`${'not '.repeat(nestingDepthMax)}A == 1`, { A: 1 })).toBe(true)
    expect(parseError(`${'not '.repeat(nestingDepthMax + 1)}A == 1`).message).toMatch(/nestingDepthMax/)
    expect(parseError(`${'(not '.repeat(nestingDepthMax)}A == 1`).message).toMatch(/nestingDepthMax/)
    expect(parseError('('.repeat(4000)).message).toMatch(/nestingDepthMax/)
  })

  it(`refuses more than termsMax (${termsMax}) terms`, () => {
    const terms = (count: number) => Array.from({ length: count }, (_, i) => `A == ${i}`).join(' or ')
    expect(check(terms(termsMax), { A: termsMax - 1 })).toBe(true)
    expect(parseError(terms(termsMax + 1)).message).toBe(
      `Failed to create boolean expression evaluator: 1:${terms(termsMax).length + 5} (${terms(termsMax).length + 4}): ` +
        `Number of match expressions (${termsMax + 1}) exceeds the limit (${termsMax}, termsMax)`,
    )
  })

  it(`refuses a pattern longer than regexPatternBytesMax (${regexPatternBytesMax}) bytes`, () => {
    expect(() => parseFilter(`A matches "${'a'.repeat(regexPatternBytesMax)}"`)).not.toThrow()
    expect(parseError(`A matches "${'a'.repeat(regexPatternBytesMax + 1)}"`).message).toMatch(
      /regexPatternBytesMax/,
    )
  })
})
