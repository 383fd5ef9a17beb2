/**
 * Proves that check definitions are read as Consul's agent reads them (CamelCase or snake_case,
 * defaults: ID = Name, Timeout 10s, Method GET, Status critical, OutputMaxSize 4096), that exactly
 * one kind is required with its own fields only, that every named limit is enforced with a
 * CHECK_INVALID naming the field, and that script checks need enableScriptChecks.
 */
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../../errors.ts'
import { parseCheckDefinition } from './definition.ts'
import { argsMax, bodyBytesMax, headersMax, outputBytesMaxLimit } from './limits.ts'

function refusal(input: unknown, options = {}): string {
  try {
    parseCheckDefinition(input, options)
  } catch (error) {
    expect(isCairnError(error, 'CHECK_INVALID')).toBe(true)
    return (error as Error).message
  }
  throw new Error('the definition was accepted')
}

describe('defaults and shapes', () => {
  it('an HTTP check gets Consul defaults', () => {
    const { definition, warnings } = parseCheckDefinition({
      Name: 'web',
      HTTP: 'http://127.0.0.1:80/h',
      Interval: '10s',
    })
    expect(definition).toEqual({
      id: 'web',
      name: 'web',
      serviceId: '',
      notes: '',
      status: 'critical',
      outputBytesMax: 4096,
      deregisterCriticalAfterMs: undefined,
      kind: 'http',
      url: 'http://127.0.0.1/h',
      method: 'GET',
      headers: {},
      body: '',
      disableRedirects: false,
      intervalMs: 10_000,
      timeoutMs: 10_000,
      successBeforePassing: 0,
      failuresBeforeCritical: 0,
    })
    expect(warnings).toEqual([])
  })

  it('reads every HTTP field, snake_case too', () => {
    const { definition } = parseCheckDefinition({
      check_id: 'c1',
      name: 'web',
      service_id: 'web-1',
      notes: 'n',
      status: 'passing',
      http: 'https://example.test/x',
      method: 'POST',
      header: { 'X-A': ['1', '2'] },
      body: '{}',
      disable_redirects: true,
      interval: '1m',
      timeout: '250ms',
      success_before_passing: 2,
      failures_before_critical: 3,
      output_max_size: 100,
      deregister_critical_service_after: '90m',
    })
    expect(definition).toMatchObject({
      id: 'c1',
      serviceId: 'web-1',
      status: 'passing',
      method: 'POST',
      headers: { 'X-A': ['1', '2'] },
      body: '{}',
      disableRedirects: true,
      intervalMs: 60_000,
      timeoutMs: 250,
      successBeforePassing: 2,
      failuresBeforeCritical: 3,
      outputBytesMax: 100,
      deregisterCriticalAfterMs: 5_400_000,
    })
  })

  it("keeps headers named like Object's members", () => {
    const Header = JSON.parse('{"__proto__":["p"],"constructor":["c"],"X-A":["a"]}') as unknown
    const { definition } = parseCheckDefinition({ Name: 'h', HTTP: 'http://a/', Interval: '1s', Header })
    if (definition.kind !== 'http') throw new Error('not an HTTP check')
    expect(Object.entries(definition.headers)).toEqual([
      ['__proto__', ['p']],
      ['constructor', ['c']],
      ['X-A', ['a']],
    ])
  })

  it('reads TCP addresses, v4, names and bracketed v6', () => {
    const tcp = (TCP: string) => parseCheckDefinition({ Name: 't', TCP, Interval: '5s' }).definition
    expect(tcp('127.0.0.1:22')).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 22 })
    expect(tcp('db.internal:5432')).toMatchObject({ host: 'db.internal', port: 5432 })
    expect(tcp('[::1]:8080')).toMatchObject({ host: '::1', port: 8080 })
  })

  it('reads TTL checks and script checks (Args or ScriptArgs) when enabled', () => {
    expect(parseCheckDefinition({ Name: 't', TTL: '30s' }).definition).toMatchObject({
      kind: 'ttl',
      ttlMs: 30_000,
    })
    const script = parseCheckDefinition(
      { Name: 's', ScriptArgs: ['/bin/true', '-x'], Interval: '5s' },
      { enableScriptChecks: true },
    )
    expect(script.definition).toMatchObject({ kind: 'script', args: ['/bin/true', '-x'], timeoutMs: 10_000 })
  })

  it('raises a short Interval and DeregisterCriticalServiceAfter to their minimums, with warnings', () => {
    const { definition, warnings } = parseCheckDefinition({
      Name: 'w',
      TCP: 'h:1',
      Interval: '100ms',
      DeregisterCriticalServiceAfter: '10s',
    })
    expect(definition).toMatchObject({ intervalMs: 1000, deregisterCriticalAfterMs: 60_000 })
    expect(warnings).toHaveLength(2)
    const lowered = parseCheckDefinition({ Name: 'w', TCP: 'h:1', Interval: '20ms' }, { intervalMsMin: 10 })
    expect(lowered.definition).toMatchObject({ intervalMs: 20 })
    expect(lowered.warnings).toEqual([])
  })

  it('empty values sent by Go clients count as not given', () => {
    const { definition } = parseCheckDefinition({
      Name: 'e',
      ID: '',
      TTL: '5s',
      HTTP: '',
      TCP: '',
      Args: [],
      Interval: '',
      Header: {},
      GRPC: '',
      TLSSkipVerify: false,
      Status: '',
      OutputMaxSize: 0,
    })
    expect(definition).toMatchObject({ id: 'e', kind: 'ttl', status: 'critical', outputBytesMax: 4096 })
  })
})

describe('refusals (CHECK_INVALID naming the field)', () => {
  it.each([
    ['not an object', [], 'expected a JSON object'],
    ['no name', { TTL: '5s' }, 'Name: required'],
    ['no kind', { Name: 'x' }, 'exactly one of'],
    ['two kinds', { Name: 'x', HTTP: 'http://a/', TCP: 'a:1', Interval: '1s' }, 'got HTTP and TCP'],
    ['no Interval', { Name: 'x', TCP: 'a:1' }, 'Interval: required'],
    ['zero Interval', { Name: 'x', TCP: 'a:1', Interval: '0s' }, 'Interval: must be greater'],
    ['bad Interval', { Name: 'x', TCP: 'a:1', Interval: '10' }, 'Interval: missing unit'],
    ['Interval past timers', { Name: 'x', TCP: 'a:1', Interval: '600h' }, 'Interval: longer than'],
    ['Interval on TTL', { Name: 'x', TTL: '5s', Interval: '5s' }, 'exclude each other'],
    ['Timeout on TTL', { Name: 'x', TTL: '5s', Timeout: '5s' }, 'Timeout: not used by TTL checks'],
    ['zero TTL', { Name: 'x', TTL: '0s' }, 'TTL: must be greater'],
    [
      'Header on TCP',
      { Name: 'x', TCP: 'a:1', Interval: '1s', Header: { A: ['b'] } },
      'Header: not used by TCP',
    ],
    ['bad Status', { Name: 'x', TTL: '5s', Status: 'ok' }, 'Status: expected passing'],
    ['unknown field', { Name: 'x', TTL: '5s', Bogus: 1 }, 'Bogus: unknown field'],
    ['twice', { Name: 'x', name: 'y', TTL: '5s' }, 'given twice'],
    ['ID and CheckID differ', { Name: 'x', ID: 'a', CheckID: 'b', TTL: '5s' }, 'CheckID: differs from ID'],
    ['gRPC', { Name: 'x', GRPC: 'a:1', Interval: '1s' }, 'GRPC: not supported yet'],
    [
      'TLSSkipVerify',
      { Name: 'x', HTTP: 'https://a/', Interval: '1s', TLSSkipVerify: true },
      'TLSSkipVerify',
    ],
    ['not a URL', { Name: 'x', HTTP: 'nope', Interval: '1s' }, 'HTTP: not a URL'],
    ['ftp URL', { Name: 'x', HTTP: 'ftp://a/', Interval: '1s' }, 'only http and https'],
    [
      'bad Method',
      { Name: 'x', HTTP: 'http://a/', Interval: '1s', Method: 'GE T' },
      'Method: not an HTTP method',
    ],
    [
      'Header as strings',
      { Name: 'x', HTTP: 'http://a/', Interval: '1s', Header: { A: 'b' } },
      'list of strings',
    ],
    ['Header CRLF', { Name: 'x', HTTP: 'http://a/', Interval: '1s', Header: { A: ['b\r\nC: d'] } }, 'CR, LF'],
    ['TCP without port', { Name: 'x', TCP: 'host', Interval: '1s' }, 'TCP: expected "host:port"'],
    ['TCP port 0', { Name: 'x', TCP: 'host:0', Interval: '1s' }, 'TCP: expected'],
    ['TCP port too big', { Name: 'x', TCP: 'host:65536', Interval: '1s' }, 'TCP: expected'],
    ['TCP bare v6', { Name: 'x', TCP: '::1:80', Interval: '1s' }, 'TCP: expected'],
    [
      'negative count',
      { Name: 'x', TCP: 'a:1', Interval: '1s', FailuresBeforeCritical: -1 },
      'FailuresBeforeCritical',
    ],
    [
      'fractional count',
      { Name: 'x', TCP: 'a:1', Interval: '1s', SuccessBeforePassing: 1.5 },
      'SuccessBeforePassing',
    ],
    [
      'OutputMaxSize too big',
      { Name: 'x', TTL: '1s', OutputMaxSize: outputBytesMaxLimit + 1 },
      'OutputMaxSize',
    ],
    ['legacy Script', { Name: 'x', Script: 'true', Interval: '1s' }, 'Script: not supported'],
  ])('%s', (_label, input, reason) => {
    expect(refusal(input, { enableScriptChecks: true })).toContain(reason)
  })

  it('refuses script checks unless enableScriptChecks is set', () => {
    const input = { Name: 's', Args: ['/bin/true'], Interval: '1s' }
    expect(refusal(input)).toContain('Args: script checks are disabled')
    expect(refusal(input, { enableScriptChecks: false })).toContain('--enable-script-checks')
  })

  it('enforces the size limits', () => {
    const http = { Name: 'x', HTTP: 'http://a/', Interval: '1s' }
    const headers = Object.fromEntries(Array.from({ length: headersMax + 1 }, (_, i) => [`H${i}`, ['v']]))
    expect(refusal({ ...http, Header: headers })).toContain(`more than ${headersMax} names`)
    expect(refusal({ ...http, Body: 'x'.repeat(bodyBytesMax + 1) })).toContain('Body: longer than')
    const args = Array.from({ length: argsMax + 1 }, () => 'a')
    expect(refusal({ Name: 's', Args: args, Interval: '1s' }, { enableScriptChecks: true })).toContain(
      `more than ${argsMax} arguments`,
    )
    expect(refusal({ Name: 'n'.repeat(300), TTL: '1s' })).toContain('Name: longer than')
  })
})
