/**
 * Proves that service registration bodies are read as Consul's agent reads them: defaults (ID =
 * Name, Weights {1, 1}, no tags, no meta), CamelCase or snake_case keys case-insensitively (also
 * inside Weights and TaggedAddresses, never inside Meta), generated check ids `service:<id>` and
 * `service:<id>:<n>` with names "Service '<name>' check", Consul's Meta rules, every named limit
 * refused with CATALOG_INVALID naming the field, embedded checks refused with CHECK_INVALID naming
 * `Check.` or `Checks[i].`, and that serviceBody gives back a body that parses to the same record.
 */
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import {
  addressBytesMax,
  metaKeyBytesMax,
  metaValueBytesMax,
  parseServiceDefinition,
  serviceBody,
  serviceChecksMax,
  serviceIdBytesMax,
  serviceMetaMax,
  serviceTagsMax,
  tagBytesMax,
  taggedAddressesMax,
  weightMax,
} from './service-definition.ts'

function refusal(input: unknown, code: 'CATALOG_INVALID' | 'CHECK_INVALID' = 'CATALOG_INVALID'): string {
  try {
    parseServiceDefinition(input, { intervalMsMin: 10 })
  } catch (error) {
    if (!isCairnError(error, code)) throw error
    return (error as Error).message
  }
  throw new Error('the body was accepted')
}

const ttl = { TTL: '10s' }

describe('defaults and key spellings', () => {
  it('a body with only a Name gets Consul defaults', () => {
    const { service, checks, warnings } = parseServiceDefinition({ Name: 'web' })
    expect(service).toEqual({
      ID: 'web',
      Service: 'web',
      Tags: [],
      Address: '',
      TaggedAddresses: {},
      Meta: {},
      Port: 0,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Kind: '',
    })
    expect(checks).toEqual([])
    expect(warnings).toEqual([])
  })

  it('snake_case and any case name the same fields; Meta keys stay as given', () => {
    const { service } = parseServiceDefinition({
      NAME: 'web',
      id: 'web-1',
      tags: ['v1', 'primary'],
      address: '10.0.0.5',
      port: 8080,
      meta: { Version_Tag: '1.2', 'build-id': 'x' },
      weights: { passing: 10, WARNING: 2 },
      enable_tag_override: true,
      tagged_addresses: {
        lan: { address: '10.0.0.5', PORT: 8080 },
        wan_ipv4: { Address: '1.2.3.4', Port: 80 },
      },
    })
    expect(service).toEqual({
      ID: 'web-1',
      Service: 'web',
      Tags: ['v1', 'primary'],
      Address: '10.0.0.5',
      TaggedAddresses: {
        lan: { Address: '10.0.0.5', Port: 8080 },
        wan_ipv4: { Address: '1.2.3.4', Port: 80 },
      },
      Meta: { Version_Tag: '1.2', 'build-id': 'x' },
      Port: 8080,
      Weights: { Passing: 10, Warning: 2 },
      EnableTagOverride: true,
      Kind: '',
    })
  })

  it('empty values Go clients send for unused fields count as not given, mesh fields included', () => {
    const { service } = parseServiceDefinition({
      Name: 'web',
      ID: '',
      Tags: null,
      Port: 0,
      Meta: {},
      Weights: null,
      EnableTagOverride: false,
      Kind: '',
      Proxy: null,
      Connect: {},
      Namespace: '',
      Check: {},
      Checks: [],
    })
    expect(service.ID).toBe('web')
    expect(service.Weights).toEqual({ Passing: 1, Warning: 1 })
  })

  it('serviceBody(record) parses back to the same record', () => {
    const { service } = parseServiceDefinition({
      Name: 'db',
      ID: 'db-2',
      Tags: ['a'],
      Address: 'db.internal',
      Port: 5432,
      Meta: { role: 'replica' },
      Weights: { Passing: 3, Warning: 0 },
      EnableTagOverride: true,
      TaggedAddresses: { lan: { Address: '10.1.1.1', Port: 5432 } },
    })
    expect(parseServiceDefinition(serviceBody(service)).service).toEqual(service)
  })
})

describe('embedded checks', () => {
  it('one check gets the id service:<id> and the name "Service \'<name>\' check"', () => {
    const { checks } = parseServiceDefinition({ Name: 'web', ID: 'web-1', Check: ttl })
    expect(checks.map((c) => [c.definition.id, c.definition.name, c.definition.serviceId])).toEqual([
      ['service:web-1', "Service 'web' check", 'web-1'],
    ])
    expect(checks[0]?.body).toEqual({
      TTL: '10s',
      ID: 'service:web-1',
      Name: "Service 'web' check",
      ServiceID: 'web-1',
    })
  })

  it('several checks are numbered from 1, Check first then Checks; given ids and names are kept', () => {
    const { checks } = parseServiceDefinition(
      {
        Name: 'web',
        Check: ttl,
        Checks: [
          { TCP: '127.0.0.1:80', Interval: '10s' },
          { check_id: 'mine', name: 'My check', ttl: '5s' },
          { HTTP: 'http://127.0.0.1/health', Interval: '1s' },
        ],
      },
      { intervalMsMin: 10 },
    )
    expect(checks.map((c) => [c.definition.id, c.definition.name, c.definition.kind])).toEqual([
      ['service:web:1', "Service 'web' check", 'ttl'],
      ['service:web:2', "Service 'web' check", 'tcp'],
      ['mine', 'My check', 'ttl'],
      ['service:web:4', "Service 'web' check", 'http'],
    ])
  })

  it('a check body parses again to the same definition (what the agent persists)', () => {
    const { checks } = parseServiceDefinition({
      Name: 'web',
      Checks: [{ HTTP: 'http://127.0.0.1/h', Interval: '10ms', Header: { A: ['b'] } }],
    })
    const again = parseServiceDefinition({ Name: 'web', Checks: [checks[0]?.body] })
    expect(again.checks[0]?.definition).toEqual(checks[0]?.definition)
  })

  it('a short Interval is raised with a warning that names the check', () => {
    const { warnings } = parseServiceDefinition({ Name: 'web', Checks: [{ TCP: 'h:1', Interval: '1ms' }] })
    expect(warnings).toEqual(['Checks[0]: Interval raised to the minimum, 1000 ms'])
  })

  it.each([
    [{ Name: 'web', Check: { Interval: '10s' } }, 'Check.exactly one of'],
    [{ Name: 'web', Checks: [ttl, { TCP: 'nope', Interval: '1s' }] }, 'Checks[1].TCP: expected'],
    [{ Name: 'web', Checks: [ttl, 'x'] }, 'Checks[1]: expected a JSON object'],
    [{ Name: 'web', Checks: ttl }, 'Checks: expected a list'],
    [
      {
        Name: 'web',
        Checks: [
          { ...ttl, ID: 'a' },
          { ...ttl, CheckID: 'a' },
        ],
      },
      'Checks[1].ID: "a" is used twice',
    ],
    [{ Name: 'web', Checks: [{ ...ttl, ServiceID: 'other' }] }, 'Checks[0].ServiceID: "other" differs'],
    [{ Name: 'web', Checks: [{ ...ttl, ID: 'a', CheckID: 'b' }] }, 'Checks[0].CheckID: differs from ID'],
    [{ Name: 'web', Checks: [{ ...ttl, ID: 'serfHealth' }] }, "Checks[0].ID: serfHealth is the catalog's"],
    [
      { Name: 'web', Checks: [{ ...ttl, ID: '_node_maintenance' }] },
      'Checks[0].ID: _node_maintenance is reserved',
    ],
    [
      { Name: 'web', Check: { Args: ['/bin/true'], Interval: '1s' } },
      'Check.Args: script checks are disabled',
    ],
    [{ Name: 'web', Check: { ...ttl, GRPC: 'h:1' } }, 'Check.GRPC: not supported yet'],
  ])('refuses a bad check with CHECK_INVALID naming it: %j', (body, message) => {
    expect(refusal(body, 'CHECK_INVALID')).toContain(message)
  })

  it(`refuses more than serviceChecksMax (${serviceChecksMax}) checks`, () => {
    const checks = Array.from({ length: serviceChecksMax + 1 }, () => ttl)
    expect(refusal({ Name: 'web', Checks: checks })).toContain('more than 64 checks')
    expect(parseServiceDefinition({ Name: 'web', Checks: checks.slice(1) }).checks).toHaveLength(
      serviceChecksMax,
    )
  })
})

describe('refusals: CATALOG_INVALID naming the field', () => {
  const long = (n: number) => 'x'.repeat(n)
  const meta = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))
  it.each([
    ['not an object', [], 'expected a JSON object'],
    ['no Name', { ID: 'x' }, 'Name is required'],
    ['Name not a string', { Name: 5 }, 'Name: expected a string'],
    ['Name "."', { Name: '.' }, 'Name may not be'],
    ['control character in Name', { Name: 'we\nb' }, 'Name: contains a control character'],
    ['ID too long', { Name: 'web', ID: long(serviceIdBytesMax + 1) }, `ID: longer than ${serviceIdBytesMax}`],
    ['Name too long for an ID', { Name: long(serviceIdBytesMax + 1) }, 'ID (from Name): longer than'],
    ['unknown field', { Name: 'web', Colour: 'red' }, 'Colour: unknown field'],
    ['a key given twice', { Name: 'web', name: 'web2' }, 'name: given twice'],
    ['mesh field', { Name: 'web', Proxy: { DestinationServiceName: 'x' } }, 'Proxy: not supported'],
    ['mesh Kind', { Name: 'web', Kind: 'connect-proxy' }, 'Kind: only typical services'],
    ['Tags not a list', { Name: 'web', Tags: 'a' }, 'Tags: expected a list'],
    ['a tag not a string', { Name: 'web', Tags: ['a', 1] }, 'Tags[1]: expected a string'],
    [
      'too many tags',
      { Name: 'web', Tags: Array(serviceTagsMax + 1).fill('t') },
      `more than ${serviceTagsMax} tags`,
    ],
    ['a long tag', { Name: 'web', Tags: [long(tagBytesMax + 1)] }, `Tags[0]: longer than ${tagBytesMax}`],
    ['Port as a string', { Name: 'web', Port: '80' }, 'Port: expected a whole number'],
    ['Port too big', { Name: 'web', Port: 65_536 }, 'Port: expected a whole number in 0..65535'],
    ['Port negative', { Name: 'web', Port: -1 }, 'Port: expected'],
    ['Address not a string', { Name: 'web', Address: 1 }, 'Address: expected a string'],
    ['Address 0.0.0.0', { Name: 'web', Address: '0.0.0.0' }, 'the unspecified address'],
    ['Address ::', { Name: 'web', Address: '::' }, 'the unspecified address'],
    ['Address too long', { Name: 'web', Address: long(addressBytesMax + 1) }, 'Address: longer than'],
    ['Address with a space', { Name: 'web', Address: 'a b' }, 'Address: contains whitespace'],
    ['Meta not an object', { Name: 'web', Meta: ['a'] }, 'Meta: expected an object'],
    [
      'too many Meta pairs',
      { Name: 'web', Meta: meta(serviceMetaMax + 1) },
      `more than ${serviceMetaMax} pairs`,
    ],
    [
      'long Meta key',
      { Name: 'web', Meta: { [long(metaKeyBytesMax + 1)]: 'v' } },
      `longer than ${metaKeyBytesMax}`,
    ],
    [
      'long Meta value',
      { Name: 'web', Meta: { k: long(metaValueBytesMax + 1) } },
      `Meta.k: longer than ${metaValueBytesMax}`,
    ],
    ['Meta key with a dot', { Name: 'web', Meta: { 'a.b': 'v' } }, 'may only hold letters'],
    ['reserved Meta prefix', { Name: 'web', Meta: { 'consul-x': 'v' } }, 'prefix "consul-" is reserved'],
    ['Meta value not a string', { Name: 'web', Meta: { k: 1 } }, 'Meta.k: expected a string'],
    ['Weights not an object', { Name: 'web', Weights: 3 }, 'Weights: expected an object'],
    [
      'Weights.Passing 0',
      { Name: 'web', Weights: { Warning: 1 } },
      'Weights.Passing: expected a whole number in 1..',
    ],
    ['Weights too big', { Name: 'web', Weights: { Passing: weightMax + 1 } }, 'Weights.Passing'],
    ['Weights.Warning negative', { Name: 'web', Weights: { Passing: 1, Warning: -1 } }, 'Weights.Warning'],
    [
      'Weights unknown key',
      { Name: 'web', Weights: { Passing: 1, Critical: 1 } },
      'Weights.Critical: unknown field',
    ],
    [
      'EnableTagOverride not a boolean',
      { Name: 'web', EnableTagOverride: 'yes' },
      'EnableTagOverride: expected true',
    ],
    [
      'TaggedAddresses entry not an object',
      { Name: 'web', TaggedAddresses: { lan: '1.2.3.4' } },
      'TaggedAddresses.lan: expected',
    ],
    [
      'TaggedAddresses without Address',
      { Name: 'web', TaggedAddresses: { lan: { Port: 1 } } },
      'TaggedAddresses.lan.Address: required',
    ],
    [
      'TaggedAddresses bad Port',
      { Name: 'web', TaggedAddresses: { lan: { Address: 'h', Port: 1e6 } } },
      'TaggedAddresses.lan.Port',
    ],
    [
      'too many TaggedAddresses',
      {
        Name: 'web',
        TaggedAddresses: Object.fromEntries(
          Array.from({ length: taggedAddressesMax + 1 }, (_, i) => [`n${i}`, { Address: 'h' }]),
        ),
      },
      `more than ${taggedAddressesMax} names`,
    ],
  ])('%s', (_what, body, message) => {
    expect(refusal(body)).toContain(message)
  })

  it('the limits themselves are accepted', () => {
    const { service } = parseServiceDefinition({
      Name: 'web',
      ID: long(serviceIdBytesMax),
      Tags: Array(serviceTagsMax).fill(long(tagBytesMax)),
      Meta: { ...meta(serviceMetaMax - 1), [long(metaKeyBytesMax)]: long(metaValueBytesMax) },
      Weights: { Passing: weightMax, Warning: weightMax },
      Port: 65_535,
    })
    expect(service.Tags).toHaveLength(serviceTagsMax)
    expect(Object.keys(service.Meta)).toHaveLength(serviceMetaMax)
  })
})
