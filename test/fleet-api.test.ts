/**
 * Proves the fleet v1 API over real HTTP (fastify on a random port) against a real LocalKvStore:
 * fleet's shapes and statuses for every route (units list/get/put/delete, state, machines), errors
 * as `{"error":{"code","message"}}`, paging with nextPageToken, immutability and ?replace, templates
 * (always inactive, new content recorded with `previous`) and instances (created from their
 * template by desiredState alone), currentState and machineID derived from the engine's assign/ and
 * the runner's states/ records (written here as the engine and runner would), Cairn's /status,
 * 404/405 in fleet's shape, and that concurrent writers never lose an update.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import {
  addMachine,
  assign,
  type FleetTestApi,
  markUnplaced,
  reportState,
  startFleetApi,
  unitsSnapshot,
  writeRollout,
} from '../src/api/fleet/test-support.ts'
import { machineKey } from '../src/catalog/records.ts'
import { decodeUnit, unitKey } from '../src/scheduler/records.ts'

const helloOptions = [
  { section: 'Unit', name: 'Description', value: 'Hello' },
  { section: 'Service', name: 'ExecStart', value: '/bin/sh -c "echo hi; sleep 100"' },
  { section: 'Unit', name: 'After', value: 'network-online.target' },
]
/** go-systemd's Serialize of helloOptions: sections grouped in order of first appearance. */
const helloText =
  '[Unit]\nDescription=Hello\nAfter=network-online.target\n\n[Service]\nExecStart=/bin/sh -c "echo hi; sleep 100"\n'

const webText = `[Unit]
Description=Web %i

[Service]
ExecStart=/usr/bin/node server.js --port=808%i
Restart=on-failure

[X-Fleet]
Conflicts=web@*.service
`
const webTextV2 = webText.replace('Restart=on-failure', 'Restart=always')

let api: FleetTestApi | undefined
afterEach(async () => {
  await api?.close()
  api = undefined
})

async function start(): Promise<FleetTestApi> {
  api = await startFleetApi()
  return api
}

interface Answer {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked against fleet's shapes field by field
  body: any
  headers: Headers
}

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const init: RequestInit = { method }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    init.headers = { 'content-type': 'application/json' }
  }
  const res = await fetch(`${api!.url}${path}`, init)
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

function expectFleetError(answer: Answer, status: number, message?: string | RegExp): void {
  expect(answer.status).toBe(status)
  expect(answer.body).toEqual({ error: { code: status, message: expect.any(String) } })
  if (message !== undefined) expect(answer.body.error.message).toMatch(message)
}

async function storedUnit(name: string) {
  const kv = (await api!.store.range({ key: unitKey(name) })).kvs[0]
  return kv === undefined ? undefined : decodeUnit(kv.value)
}

describe('PUT and GET /fleet/v1/units/<name>', () => {
  it("creates from options (201) and answers fleet Unit with the same options and fleet's hash", async () => {
    await start()
    const put = await call('PUT', '/fleet/v1/units/hello.service', {
      desiredState: 'launched',
      options: helloOptions,
    })
    expect(put.status).toBe(201)
    expect(put.body).toBeUndefined()
    const got = await call('GET', '/fleet/v1/units/hello.service')
    expect(got.status).toBe(200)
    expect(got.body).toEqual({
      name: 'hello.service',
      options: [helloOptions[0], helloOptions[2], helloOptions[1]],
      desiredState: 'launched',
      currentState: 'inactive',
    })
    const record = await storedUnit('hello.service')
    expect(record?.version?.text).toBe(helloText)
    expect(record?.version?.hash).toBe(createHash('sha1').update(helloText).digest('hex'))
  })

  it("accepts Cairn's `text` instead of options; the same content again changes nothing (204)", async () => {
    await start()
    expect(
      (await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'inactive', text: helloText }))
        .status,
    ).toBe(201)
    const before = await unitsSnapshot(api!.store)
    expect(
      (await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'inactive', text: helloText }))
        .status,
    ).toBe(204)
    expect(
      (
        await call('PUT', '/fleet/v1/units/hello.service', {
          options: helloOptions,
          desiredState: 'inactive',
        })
      ).status,
    ).toBe(204)
    expect(await unitsSnapshot(api!.store)).toEqual(before)
  })

  it('is immutable: other content is 409 unless ?replace=true, which writes the new version', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'launched', text: helloText })
    const before = await unitsSnapshot(api!.store)
    const other = helloText.replace('Hello', 'Hello again')
    expectFleetError(
      await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'launched', text: other }),
      409,
      /differs/,
    )
    expect(await unitsSnapshot(api!.store)).toEqual(before)
    const replaced = await call('PUT', '/fleet/v1/units/hello.service?replace=true', { text: other })
    expect(replaced.status).toBe(201)
    const record = await storedUnit('hello.service')
    expect(record).toMatchObject({ desiredState: 'launched', version: { text: other } })
    expect(record?.previous).toBeUndefined()
  })

  it('changes desiredState with {desiredState} alone (204), any state to any state', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'inactive', text: helloText })
    for (const state of ['launched', 'loaded', 'inactive', 'launched', 'inactive']) {
      expect((await call('PUT', '/fleet/v1/units/hello.service', { desiredState: state })).status).toBe(204)
      expect((await call('GET', '/fleet/v1/units/hello.service')).body.desiredState).toBe(state)
    }
  })

  it("answers fleet's 409s for missing fields and 400 for a missing desiredState on create", async () => {
    await start()
    expectFleetError(
      await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'launched' }),
      409,
      'unit does not exist and options field empty',
    )
    expectFleetError(
      await call('PUT', '/fleet/v1/units/hello.service', { options: helloOptions }),
      400,
      /desiredState is required/,
    )
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'loaded', options: helloOptions })
    expectFleetError(await call('PUT', '/fleet/v1/units/hello.service', {}), 409, /must provide desiredState/)
  })

  it('refuses an invalid unit with 400 and its file:line: key: message, and stores nothing', async () => {
    await start()
    const bad = '[Service]\nExecStart=/bin/true\nRestart=sometimes\n'
    const answer = await call('PUT', '/fleet/v1/units/bad.service', { desiredState: 'launched', text: bad })
    expectFleetError(answer, 400)
    expect(answer.body.error.message).toMatch(/^bad\.service:3: Restart: /)
    expect(answer.headers.get('x-cairn-error-code')).toBe('UNIT_INVALID')
    expect(await unitsSnapshot(api!.store)).toEqual([])
  })

  it('refuses bad requests with 400 and a clear message, changing nothing', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'loaded', text: helloText })
    const before = await unitsSnapshot(api!.store)
    const cases: Array<[string, unknown, RegExp]> = [
      ['/fleet/v1/units/hello.service', '{"desiredState":', /unable to decode body/],
      ['/fleet/v1/units/hello.service', '[1,2]', /want a JSON object/],
      ['/fleet/v1/units/hello.service', { desiredState: 'running' }, /invalid desiredState "running"/],
      [
        '/fleet/v1/units/hello.service',
        { name: 'other.service', desiredState: 'loaded' },
        /differs from unit name/,
      ],
      ['/fleet/v1/units/hello.timer', { desiredState: 'loaded', text: helloText }, /only \.service units/],
      ['/fleet/v1/units/a%2Fb.service', { desiredState: 'loaded' }, /A-Z a-z 0-9/],
      ['/fleet/v1/units/x.service', { desiredState: 'loaded', options: 'nope' }, /options: want an array/],
      [
        '/fleet/v1/units/x.service',
        {
          desiredState: 'loaded',
          options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true\n[X-Fleet]' }],
        },
        /line break/,
      ],
      [
        '/fleet/v1/units/x.service',
        { desiredState: 'loaded', options: [{ section: 'Unit', name: 'Description', value: 'a \\' }] },
        /backslash/,
      ],
      [
        '/fleet/v1/units/x.service',
        { desiredState: 'loaded', options: [{ section: 'Unit]', name: 'A', value: '' }] },
        /section/,
      ],
      [
        '/fleet/v1/units/x.service',
        { desiredState: 'loaded', text: helloText, options: helloOptions },
        /not both/,
      ],
      ['/fleet/v1/units/x.service', { desiredState: 'loaded', text: 7 }, /text: want a string/],
      ['/fleet/v1/units/hello.service?replace=maybe', { desiredState: 'loaded' }, /replace/],
    ]
    for (const [path, body, message] of cases) {
      const answer = await call('PUT', path, body)
      expectFleetError(answer, 400, message)
    }
    const huge = await call('PUT', '/fleet/v1/units/x.service', {
      desiredState: 'loaded',
      text: 'x'.repeat(600 * 1024),
    })
    expectFleetError(huge, 400, /bodyBytesMax/)
    const tooBig = await call('PUT', '/fleet/v1/units/x.service', {
      desiredState: 'loaded',
      text: `[Service]\nExecStart=/bin/true\n#${'x'.repeat(70 * 1024)}\n`,
    })
    expectFleetError(tooBig, 400, /fileBytesMax/)
    expect(await unitsSnapshot(api!.store)).toEqual(before)
  })

  it("takes names up to 256 characters (past fastify's 100-character parameters)", async () => {
    await start()
    const name = `${'a'.repeat(240)}.service`
    expect(
      (await call('PUT', `/fleet/v1/units/${name}`, { desiredState: 'loaded', text: helloText })).status,
    ).toBe(201)
    expect((await call('GET', `/fleet/v1/units/${name}`)).body.name).toBe(name)
    expectFleetError(await call('GET', `/fleet/v1/units/${'a'.repeat(260)}.service`), 400, /unitNameCharsMax/)
  })
})

describe('DELETE /fleet/v1/units/<name>', () => {
  it("destroys (204), then 404 in fleet's shape for DELETE and GET", async () => {
    await start()
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'launched', text: helloText })
    expect((await call('DELETE', '/fleet/v1/units/hello.service')).status).toBe(204)
    expectFleetError(await call('DELETE', '/fleet/v1/units/hello.service'), 404)
    const got = await call('GET', '/fleet/v1/units/hello.service')
    expectFleetError(got, 404, /does not exist/)
    expect(got.headers.get('x-cairn-error-code')).toBe('FLEET_UNIT_NOT_FOUND')
    expect(await unitsSnapshot(api!.store)).toEqual([])
  })
})

describe('templates and instances', () => {
  it('a template is always inactive; new content is accepted and keeps the old as previous', async () => {
    await start()
    expect(
      (await call('PUT', '/fleet/v1/units/web@.service', { desiredState: 'inactive', text: webText })).status,
    ).toBe(201)
    expectFleetError(
      await call('PUT', '/fleet/v1/units/web@.service', { desiredState: 'launched' }),
      400,
      /template/,
    )
    expect(
      (await call('PUT', '/fleet/v1/units/web@.service', { desiredState: 'inactive', text: webTextV2 }))
        .status,
    ).toBe(201)
    const record = await storedUnit('web@.service')
    expect(record).toMatchObject({
      desiredState: 'inactive',
      version: { text: webTextV2 },
      previous: { text: webText },
    })
    // The same content again is no change: previous stays.
    expect((await call('PUT', '/fleet/v1/units/web@.service', { text: webTextV2 })).status).toBe(204)
    expect((await storedUnit('web@.service'))?.previous?.text).toBe(webText)
  })

  it('checks a template as its instance @1 and an instance with its own name', async () => {
    await start()
    const bad = '[Service]\nExecStart=/bin/echo %H\n'
    expectFleetError(
      await call('PUT', '/fleet/v1/units/t@.service', { text: bad }),
      400,
      /^t@\.service:2: ExecStart: .*%H/,
    )
  })

  it('instances are created from their template by desiredState alone and show its options', async () => {
    await start()
    expectFleetError(
      await call('PUT', '/fleet/v1/units/web@1.service', { desiredState: 'launched' }),
      409,
      /template web@\.service is not submitted/,
    )
    expectFleetError(
      await call('PUT', '/fleet/v1/units/web@1.service', { desiredState: 'launched', text: webText }),
      409,
      /submit its template web@\.service first/,
    )
    await call('PUT', '/fleet/v1/units/web@.service', { desiredState: 'inactive', text: webText })
    expect((await call('PUT', '/fleet/v1/units/web@1.service', { desiredState: 'launched' })).status).toBe(
      201,
    )
    expect(
      (await call('PUT', '/fleet/v1/units/web@2.service', { desiredState: 'loaded', text: webText })).status,
    ).toBe(201)
    expectFleetError(
      await call('PUT', '/fleet/v1/units/web@3.service', { desiredState: 'loaded', text: webTextV2 }),
      409,
      /runs its template's file/,
    )
    expect(await storedUnit('web@1.service')).toEqual({
      name: 'web@1.service',
      desiredState: 'launched',
      template: 'web@.service',
      submittedMs: 1_700_000_000_000,
    })
    const got = await call('GET', '/fleet/v1/units/web@1.service')
    expect(got.body.options).toContainEqual({
      section: 'Service',
      name: 'ExecStart',
      value: '/usr/bin/node server.js --port=808%i',
    })
    expect(got.body.desiredState).toBe('launched')
  })

  it('a template with instances cannot be destroyed until they are', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/web@.service', { text: webText })
    await call('PUT', '/fleet/v1/units/web@1.service', { desiredState: 'launched' })
    expectFleetError(await call('DELETE', '/fleet/v1/units/web@.service'), 409, /template of web@1\.service/)
    expect((await call('DELETE', '/fleet/v1/units/web@1.service')).status).toBe(204)
    expect((await call('DELETE', '/fleet/v1/units/web@.service')).status).toBe(204)
  })
})

describe('GET /fleet/v1/units (paged)', () => {
  it('pages 100 at a time with nextPageToken, in name order, without repeats; both fields omitted when empty', async () => {
    await start()
    expect((await call('GET', '/fleet/v1/units')).body).toEqual({})
    const names = Array.from({ length: 230 }, (_, i) => `u${String(i).padStart(3, '0')}.service`)
    for (const name of names)
      await call('PUT', `/fleet/v1/units/${name}`, { desiredState: 'inactive', text: helloText })
    const seen: string[] = []
    let token: string | undefined
    const sizes: number[] = []
    do {
      const page = await call('GET', `/fleet/v1/units${token === undefined ? '' : `?nextPageToken=${token}`}`)
      expect(page.status).toBe(200)
      sizes.push(page.body.units.length)
      seen.push(...page.body.units.map((u: { name: string }) => u.name))
      token = page.body.nextPageToken
    } while (token !== undefined)
    expect(sizes).toEqual([100, 100, 30])
    expect(seen).toEqual(names)
  })

  it('refuses a malformed page token', async () => {
    await start()
    for (const token of [
      '%%%',
      'bm90IGpzb24',
      Buffer.from('{"after":3}').toString('base64url'),
      'a'.repeat(600),
    ])
      expectFleetError(await call('GET', `/fleet/v1/units?nextPageToken=${token}`), 400, /nextPageToken/)
  })
})

describe('currentState and machineID from assign/ and states/', () => {
  it("follow the engine's assignment and the runner's reports", async () => {
    await start()
    await call('PUT', '/fleet/v1/units/hello.service', { desiredState: 'launched', text: helloText })
    const unit = async () => (await call('GET', '/fleet/v1/units/hello.service')).body
    expect(await unit()).toMatchObject({ currentState: 'inactive' })
    expect((await unit()).machineID).toBeUndefined()

    await assign(api!.store, 'n2', 'hello.service', helloText, 'launched')
    expect(await unit()).toMatchObject({ currentState: 'inactive', machineID: 'n2' }) // not reported yet
    await reportState(api!.store, 'n2', 'hello.service', 'an older version')
    expect(await unit()).toMatchObject({ currentState: 'inactive' }) // a report on another version
    await reportState(api!.store, 'n2', 'hello.service', helloText, {
      activeState: 'activating',
      subState: 'start-pre',
    })
    expect(await unit()).toMatchObject({ currentState: 'launched', machineID: 'n2' })
    await reportState(api!.store, 'n2', 'hello.service', helloText, {
      activeState: 'failed',
      subState: 'failed',
    })
    expect(await unit()).toMatchObject({ currentState: 'launched' }) // it ran and exited
    await assign(api!.store, 'n2', 'hello.service', helloText, 'loaded')
    await reportState(api!.store, 'n2', 'hello.service', helloText, {
      activeState: 'inactive',
      subState: 'dead',
    })
    expect(await unit()).toMatchObject({ currentState: 'loaded', machineID: 'n2' })
  })

  it('a global unit shows the least advanced machine and no machineID', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/g.service', { desiredState: 'launched', text: helloText })
    await assign(api!.store, 'n1', 'g.service', helloText)
    await assign(api!.store, 'n2', 'g.service', helloText)
    await reportState(api!.store, 'n1', 'g.service', helloText)
    expect((await call('GET', '/fleet/v1/units/g.service')).body).toMatchObject({ currentState: 'inactive' })
    await reportState(api!.store, 'n2', 'g.service', helloText)
    const body = (await call('GET', '/fleet/v1/units/g.service')).body
    expect(body.currentState).toBe('launched')
    expect(body.machineID).toBeUndefined()
  })
})

describe('GET /fleet/v1/state and /fleet/v1/machines', () => {
  it('state lists UnitStates, filtered by machineID and unitName', async () => {
    await start()
    await reportState(api!.store, 'n1', 'a.service', 'A')
    await reportState(api!.store, 'n2', 'a.service', 'A', { activeState: 'failed', subState: 'failed' })
    await reportState(api!.store, 'n2', 'b.service', 'B', {
      loadState: 'error',
      activeState: 'inactive',
      subState: 'dead',
    })
    const all = (await call('GET', '/fleet/v1/state')).body.states
    expect(all).toHaveLength(3)
    expect(all[0]).toEqual({
      name: 'a.service',
      hash: createHash('sha1').update('A').digest('hex'),
      machineID: 'n1',
      systemdLoadState: 'loaded',
      systemdActiveState: 'active',
      systemdSubState: 'running',
    })
    const n2 = (await call('GET', '/fleet/v1/state?machineID=n2')).body.states
    expect(n2.map((s: { name: string }) => s.name)).toEqual(['a.service', 'b.service'])
    const a = (await call('GET', '/fleet/v1/state?unitName=a.service')).body.states
    expect(a.map((s: { machineID: string }) => s.machineID)).toEqual(['n1', 'n2'])
    expect((await call('GET', '/fleet/v1/state?machineID=n3')).body).toEqual({})
    expectFleetError(await call('GET', '/fleet/v1/state?unitName=nope'), 400, /unitName/)
    expectFleetError(await call('GET', '/fleet/v1/state?machineID=a&machineID=b'), 400, /more than once/)
  })

  it('state pages past 100 states', async () => {
    await start()
    for (let i = 0; i < 120; i++)
      await reportState(api!.store, 'n1', `s${String(i).padStart(3, '0')}.service`, 'x')
    const first = (await call('GET', '/fleet/v1/state?machineID=n1')).body
    expect(first.states).toHaveLength(100)
    const second = (await call('GET', `/fleet/v1/state?machineID=n1&nextPageToken=${first.nextPageToken}`))
      .body
    expect(second.states).toHaveLength(20)
    expect(second.nextPageToken).toBeUndefined()
  })

  it('machines lists live machines with primaryIP and metadata', async () => {
    await start()
    await addMachine(api!.store, 'n1', { address: '10.0.0.1', meta: { zone: 'a', region: 'eu' } })
    await addMachine(api!.store, 'n2', { address: '10.0.0.2' })
    expect((await call('GET', '/fleet/v1/machines')).body).toEqual({
      machines: [
        { id: 'n1', primaryIP: '10.0.0.1', metadata: { zone: 'a', region: 'eu' } },
        { id: 'n2', primaryIP: '10.0.0.2', metadata: {} },
      ],
    })
    await api!.store.delete({ key: machineKey('n2') }) // its lease expired
    expect((await call('GET', '/fleet/v1/machines')).body.machines.map((m: { id: string }) => m.id)).toEqual([
      'n1',
    ])
  })
})

describe('GET /fleet/v1/units/<name>/status (Cairn)', () => {
  it('shows the unit, its file, assignment, state, unplaced reason; a template its rollout and instances', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/web@.service', { text: webText })
    await call('PUT', '/fleet/v1/units/web@.service', { text: webTextV2 })
    await call('PUT', '/fleet/v1/units/web@1.service', { desiredState: 'launched' })
    await call('PUT', '/fleet/v1/units/web@2.service', { desiredState: 'launched' })
    await assign(api!.store, 'n1', 'web@1.service', webTextV2)
    await reportState(api!.store, 'n1', 'web@1.service', webTextV2, {
      pid: 77,
      restarts: 2,
      health: 'passing',
    })
    await markUnplaced(api!.store, 'web@2.service', 'MaxSkew=zone:1:hard: no zone has room')
    await writeRollout(api!.store, {
      template: 'web@.service',
      from: 'h1',
      to: 'h2',
      state: 'rolling',
      updated: ['web@1.service'],
      sinceMs: 5,
    })
    const one = (await call('GET', '/fleet/v1/units/web@1.service/status')).body
    expect(one.unit).toMatchObject({ name: 'web@1.service', currentState: 'launched', machineID: 'n1' })
    expect(one.file).toMatchObject({ name: 'web@.service', text: webTextV2 })
    expect(one.assignments).toEqual([expect.objectContaining({ machineID: 'n1', desiredState: 'launched' })])
    expect(one.states[0]).toMatchObject({
      machineID: 'n1',
      pid: 77,
      restarts: 2,
      health: 'passing',
      activeState: 'active',
    })
    expect(one.unplaced).toBeUndefined()
    const two = (await call('GET', '/fleet/v1/units/web@2.service/status')).body
    expect(two.unplaced).toEqual({ reason: 'MaxSkew=zone:1:hard: no zone has room', sinceMs: 1 })
    const template = (await call('GET', '/fleet/v1/units/web@.service/status')).body
    expect(template.rollout).toMatchObject({ state: 'rolling', updated: ['web@1.service'] })
    expect(template.instances).toEqual(['web@1.service', 'web@2.service'])
    expect(template.file.previousHash).toBe(createHash('sha1').update(webText).digest('hex'))
    expectFleetError(await call('GET', '/fleet/v1/units/nope.service/status'), 404)
  })
})

describe('paths and methods', () => {
  it("an unknown path is 404 and an unserved method 405 with Allow, both in fleet's shape", async () => {
    await start()
    expectFleetError(await call('GET', '/fleet/v1/nothing'), 404)
    const post = await call('POST', '/fleet/v1/units/hello.service', {})
    expectFleetError(post, 405)
    expect(post.headers.get('allow')).toBe('GET, PUT, DELETE')
    expectFleetError(await call('DELETE', '/fleet/v1/units'), 405)
    expectFleetError(await call('PUT', '/fleet/v1/units/hello.service/status', {}), 400)
  })
})

describe('concurrent writers', () => {
  it('different contents for one new unit: exactly one is created, the others are told it is immutable', async () => {
    await start()
    const texts = Array.from({ length: 8 }, (_, i) => helloText.replace('Hello', `Hello ${i}`))
    const answers = await Promise.all(
      texts.map((text) => call('PUT', '/fleet/v1/units/race.service', { desiredState: 'loaded', text })),
    )
    const statuses = answers.map((a) => a.status).sort()
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409])
    const winner = texts[answers.findIndex((a) => a.status === 201)]
    expect((await storedUnit('race.service'))?.version?.text).toBe(winner)
  })

  it('template updates racing: every accepted version was the previous of the next (no lost update)', async () => {
    await start()
    await call('PUT', '/fleet/v1/units/web@.service', { text: webText })
    const versions = Array.from({ length: 6 }, (_, i) =>
      webText.replace('Description=Web %i', `Description=Web v${i} %i`),
    )
    const answers = await Promise.all(
      versions.map((text) => call('PUT', '/fleet/v1/units/web@.service', { text })),
    )
    expect(answers.every((a) => a.status === 201)).toBe(true)
    const record = await storedUnit('web@.service')
    expect(versions).toContain(record?.version?.text)
    expect([webText, ...versions]).toContain(record?.previous?.text)
    expect(record?.previous?.text).not.toBe(record?.version?.text)
  })
})
