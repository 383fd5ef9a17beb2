/**
 * Fuzzes the fleet API with fast-check over real HTTP: random paths, query strings and bodies
 * (JSON-ish values, Unit-like objects with hostile options and unit text, raw bytes) never get a
 * 500 or a non-fleet error shape, and a refused request (any 4xx) never changes the units/ records.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FleetTestApi, startFleetApi, unitsSnapshot } from '../src/api/fleet/test-support.ts'

let api: FleetTestApi
beforeAll(async () => {
  api = await startFleetApi()
  await fetch(`${api.url}/fleet/v1/units/web@.service`, {
    method: 'PUT',
    body: JSON.stringify({ text: '[Service]\nExecStart=/bin/echo %i\n' }),
  })
  await fetch(`${api.url}/fleet/v1/units/a.service`, {
    method: 'PUT',
    body: JSON.stringify({ desiredState: 'loaded', text: '[Service]\nExecStart=/bin/true\n' }),
  })
})
afterAll(async () => api.close())

const names = fc.oneof(
  fc.constantFrom(
    'a.service',
    'web@.service',
    'web@1.service',
    'b.service',
    'x@y@.service',
    '.service',
    'a.timer',
  ),
  fc.string({ maxLength: 40 }),
  fc.stringMatching(/^[A-Za-z0-9:_.@%-]{0,30}\.service$/),
)

const optionText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    'Unit',
    'Service',
    'X-Fleet',
    'X-Cairn',
    'ExecStart',
    '/bin/true',
    '%i',
    'a\\',
    'x\ny',
    '[Unit]',
  ),
)
const option = fc.record({ section: optionText, name: optionText, value: optionText }, { requiredKeys: [] })
const unitText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc
    .array(
      fc.constantFrom(
        '[Service]',
        'ExecStart=/bin/true',
        'ExecStart=',
        '[X-Fleet]',
        'Global=maybe',
        'MachineOf=%H',
        '\\',
      ),
      {
        maxLength: 8,
      },
    )
    .map((lines) => lines.join('\n')),
)
const unitBody = fc.record(
  {
    name: fc.oneof(names, fc.integer()),
    desiredState: fc.oneof(fc.constantFrom('inactive', 'loaded', 'launched', 'running', ''), fc.anything()),
    options: fc.oneof(fc.array(option, { maxLength: 5 }), fc.anything()),
    text: fc.oneof(unitText, fc.anything()),
  },
  { requiredKeys: [] },
)
const body = fc.oneof(
  unitBody.map((b) => JSON.stringify(b)),
  fc.json(),
  fc.string({ maxLength: 100 }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
)
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?replace=true',
    '?replace=x',
    '?nextPageToken=abc',
    '?lines=5',
    '?follow=no',
    '?machineID=&unitName=a',
  ),
  fc.string({ maxLength: 30 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}`),
)
const path = fc.oneof(
  names.map((n) => `/fleet/v1/units/${encodeURIComponent(n)}`),
  names.map((n) => `/fleet/v1/units/${encodeURIComponent(n)}/status`),
  names.map((n) => `/fleet/v1/journal/${encodeURIComponent(n)}`),
  fc.constantFrom(
    '/fleet/v1/units',
    '/fleet/v1/state',
    '/fleet/v1/machines',
    '/fleet/v1/',
    '/fleet/v1/units/',
  ),
)

describe('fleet API fuzz', () => {
  it("never answers 500, always in fleet's error shape; a refused request changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'),
        path,
        query,
        body,
        async (method, p, q, b) => {
          const before = await unitsSnapshot(api.store)
          const res = await fetch(`${api.url}${p}${q}`, {
            method,
            ...(method === 'PUT' || method === 'POST' ? { body: b } : {}),
            signal: AbortSignal.timeout(5_000),
          })
          const text = await res.text()
          expect(res.status, `${method} ${p}${q}: ${text}`).toBeLessThan(500)
          if (res.status >= 400) {
            expect(JSON.parse(text)).toEqual({ error: { code: res.status, message: expect.any(String) } })
            expect(await unitsSnapshot(api.store)).toEqual(before)
          }
        },
      ),
      { numRuns: 400 },
    )
  })
})
