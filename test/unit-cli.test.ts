/**
 * Proves `cairn unit` as a user types it: ./bin/cairn runs as a child process against a fleet API
 * served by this test (fastify on a random port over a real LocalKvStore). A small stand-in for
 * the engine and the runner writes the assign/ and states/ records a real cluster would (they are
 * the contract the CLI reads back through the API), so the blocking commands can be seen waiting
 * and then printing fleet's lines. Checked: submit (new, same again, changed plain unit with and
 * without --replace, changed template), start/load with brace expansion and unit files found as
 * fleetctl did, --no-block and --block-attempts, stop/unload/restart, destroy order, the three
 * listings with --fields/--no-legend/-o json, status, cat, journal (and -f), and exit codes.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  addMachine,
  type FleetTestApi,
  markUnplaced,
  startFleetApi,
  writeRollout,
} from '../src/api/fleet/test-support.ts'
import { prefixRange } from '../src/catalog/records.ts'
import {
  assignKey,
  decodeAssignment,
  decodeUnit,
  stateKey,
  unitHash,
  unitsPrefix,
} from '../src/scheduler/records.ts'
import { cairnBin } from './helpers/agent-processes.ts'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

let api: FleetTestApi
let dir: string
let stopEngine: (() => Promise<void>) | undefined

beforeEach(async () => {
  api = await startFleetApi()
  await addMachine(api.store, 'n1', { address: '10.0.0.1', meta: { zone: 'a', region: 'eu' }, api: api.url })
  dir = mkdtempSync(join(tmpdir(), 'cairn-unit-cli-'))
})
afterEach(async () => {
  await stopEngine?.()
  stopEngine = undefined
  await api.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs ./bin/cairn asynchronously (the API it talks to lives in this process). */
function cairn(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cairnBin, ...args, '--endpoint', api.url], {
      cwd: options.cwd ?? dir,
      env: { ...process.env, CAIRN_ENDPOINT: '' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const helloText = '[Unit]\nDescription=Hello\n\n[Service]\n# a comment cat keeps\nExecStart=/bin/sleep 100\n'
const webText = '[Unit]\nDescription=Web %i\n\n[Service]\nExecStart=/bin/sleep 10%i\n'

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/**
 * The engine and runner of one machine (n1), reduced to their records: every `gapMs` it assigns
 * each non-template unit that should be loaded or launched to n1 and reports the matching state;
 * an inactive unit's assignment and state are deleted.
 */
function standInEngine(gapMs = 30): void {
  let running = true
  const loop = (async () => {
    while (running) {
      const units = (await api.store.range(prefixRange(unitsPrefix))).kvs.map((kv) => decodeUnit(kv.value))
      const texts = new Map(
        units.filter((u) => u?.version !== undefined).map((u) => [u!.name, u!.version!.text]),
      )
      for (const unit of units) {
        if (unit === undefined || unit.name.includes('@.')) continue
        const text = unit.version?.text ?? texts.get(unit.template ?? '') ?? ''
        const aKey = assignKey('n1', unit.name)
        const sKey = stateKey('n1', unit.name)
        if (unit.desiredState === 'inactive') {
          await api.store.delete({ key: aKey })
          await api.store.delete({ key: sKey })
          continue
        }
        const current = (await api.store.range({ key: aKey })).kvs[0]
        if (current === undefined || decodeAssignment(current.value)?.desiredState !== unit.desiredState) {
          const assignment = {
            unit: unit.name,
            machine: 'n1',
            desiredState: unit.desiredState,
            text,
            hash: unitHash(text),
            engine: 1,
            placedMs: 1,
          }
          await api.store.put({ key: aKey, value: JSON.stringify(assignment) })
          await new Promise((resolve) => setTimeout(resolve, gapMs)) // the runner takes a moment
          const launched = unit.desiredState === 'launched'
          const state = {
            unit: unit.name,
            machine: 'n1',
            hash: unitHash(text),
            loadState: 'loaded',
            activeState: launched ? 'active' : 'inactive',
            subState: launched ? 'running' : 'dead',
            ...(launched ? { pid: 1234 } : {}),
            restarts: 0,
            sinceMs: 1_700_000_000_000,
          }
          await api.store.put({ key: sKey, value: JSON.stringify(state) })
        }
      }
      await new Promise((resolve) => setTimeout(resolve, gapMs))
    }
  })()
  stopEngine = async () => {
    running = false
    await loop
  }
}

async function desired(name: string): Promise<string | undefined> {
  const res = await fetch(`${api.url}/fleet/v1/units/${name}`)
  return res.status === 200 ? ((await res.json()) as { desiredState: string }).desiredState : undefined
}

describe('cairn unit submit', () => {
  it('submits files; the same again is quiet; a changed plain unit warns unless --replace; a changed template updates', async () => {
    const hello = file('hello.service', helloText)
    const web = file('web@.service', webText)
    expect(await cairn(['unit', 'submit', hello, web])).toMatchObject({
      code: 0,
      stdout: 'Unit hello.service inactive\nUnit web@.service inactive\n',
    })
    expect(await cairn(['unit', 'submit', hello, web])).toMatchObject({ code: 0, stdout: '', stderr: '' })
    file('hello.service', helloText.replace('Hello', 'Hi'))
    const warned = await cairn(['unit', 'submit', hello])
    expect(warned).toMatchObject({ code: 0, stdout: '' })
    expect(warned.stderr).toMatch(/^WARNING: Unit hello\.service in registry differs/)
    expect(await cairn(['unit', 'submit', '--replace', hello])).toMatchObject({
      code: 0,
      stdout: 'Unit hello.service replaced\n',
    })
    file('web@.service', webText.replace('sleep', 'sleep  '))
    expect((await cairn(['unit', 'submit', web])).stdout).toBe(
      'Unit web@.service updated: its instances roll to the new version\n',
    )
  })

  it('an instance name is submitted from the template file beside it, as fleetctl did', async () => {
    file('web@.service', webText)
    expect(await cairn(['unit', 'submit', 'web@{1..2}.service'])).toMatchObject({
      code: 0,
      stdout: 'Unit web@.service inactive\nUnit web@1.service inactive\nUnit web@2.service inactive\n',
    })
    expect(await desired('web@2.service')).toBe('inactive')
  })

  it('a name with no file that is not submitted fails (exit 1); a malformed name is bad arguments (exit 2)', async () => {
    const missing = await cairn(['unit', 'submit', 'nope.service'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/unable to find unit file nope\.service/)
    const bad = await cairn(['unit', 'submit', 'web@{1..3.service'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/a \{ without its \}/)
    expect((await cairn(['unit', 'submit', 'hello.timer'])).code).toBe(2)
  })

  it('an invalid unit file is refused with its file:line: key: message (exit 1)', async () => {
    const bad = file('bad.service', '[Service]\nExecStart=/bin/true\nRestart=sometimes\n')
    const run = await cairn(['unit', 'submit', bad])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^Error: bad\.service:3: Restart: /)
  })
})

describe('cairn unit start and load (blocking)', () => {
  it("start web@{1..3}.service submits the template, then waits and prints fleet's launched lines", async () => {
    file('web@.service', webText)
    const started = cairn(['unit', 'start', 'web@{1..3}.service'])
    // While the CLI waits, nothing is assigned yet: then the engine and runner act.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(await desired('web@3.service')).toBe('launched')
    standInEngine()
    const run = await started
    expect(run).toMatchObject({ code: 0, stderr: '' })
    const lines = run.stdout.trim().split('\n')
    expect(lines[0]).toBe('Unit web@.service inactive')
    expect(lines.slice(1).sort()).toEqual([
      'Unit web@1.service launched on n1/10.0.0.1',
      'Unit web@2.service launched on n1/10.0.0.1',
      'Unit web@3.service launched on n1/10.0.0.1',
    ])
  })

  it('--no-block triggers and returns; --block-attempts gives up with exit 1 naming the units', async () => {
    const hello = file('hello.service', helloText)
    expect(await cairn(['unit', 'start', hello, '--no-block'])).toMatchObject({
      code: 0,
      stdout: 'Unit hello.service inactive\nTriggered unit hello.service start\n',
    })
    const gaveUp = await cairn(['unit', 'load', 'web@1.service', '--block-attempts', '2'])
    expect(gaveUp.code).toBe(1) // no template anywhere
    file('web@.service', webText)
    const waited = await cairn(['unit', 'load', 'web@1.service', '--block-attempts', '2'])
    expect(waited.code).toBe(1)
    expect(waited.stderr).toMatch(/did not reach loaded after 2 attempts: web@1\.service/)
    expect((await cairn(['unit', 'start', hello, '--block-attempts', 'many'])).code).toBe(2)
    expect((await cairn(['unit', 'start', 'web@.service'])).stderr).toMatch(/is a template/)
  })

  it('load waits for loaded; stop, unload and restart move launched units and wait', async () => {
    standInEngine()
    const hello = file('hello.service', helloText)
    expect((await cairn(['unit', 'load', hello])).stdout).toBe(
      'Unit hello.service inactive\nUnit hello.service loaded on n1/10.0.0.1\n',
    )
    expect((await cairn(['unit', 'start', 'hello.service'])).stdout).toBe(
      'Unit hello.service launched on n1/10.0.0.1\n',
    )
    expect((await cairn(['unit', 'load', 'hello.service'])).stdout).toBe('') // load leaves a started unit alone
    expect((await cairn(['unit', 'stop', 'hello.service'])).stdout).toBe(
      'Unit hello.service loaded on n1/10.0.0.1\n',
    )
    expect((await cairn(['unit', 'start', 'hello.service'])).code).toBe(0)
    expect((await cairn(['unit', 'restart', 'hello.service'])).stdout).toBe(
      'Unit hello.service loaded on n1/10.0.0.1\nUnit hello.service launched on n1/10.0.0.1\n',
    )
    expect((await cairn(['unit', 'unload', 'hello.service'])).stdout).toBe('Unit hello.service inactive\n')
    expect(await desired('hello.service')).toBe('inactive')
    const missing = await cairn(['unit', 'stop', 'nope.service'])
    expect(missing).toMatchObject({ code: 1, stderr: 'Error: unit nope.service does not exist\n' })
  })
})

describe('cairn unit destroy', () => {
  it('destroys instances before their template; a missing unit is exit 1', async () => {
    file('web@.service', webText)
    await cairn(['unit', 'start', 'web@{1..2}.service', '--no-block'])
    expect(await cairn(['unit', 'destroy', 'web@.service', 'web@{1..2}.service'])).toMatchObject({
      code: 0,
      stdout: 'Destroyed web@1.service\nDestroyed web@2.service\nDestroyed web@.service\n',
    })
    expect(await cairn(['unit', 'destroy', 'web@1.service'])).toMatchObject({
      code: 1,
      stderr: 'Error: no such unit: web@1.service\n',
    })
  })
})

describe('listings, status, cat, journal', () => {
  it("list-units, list-unit-files and list-machines print fleet's columns", async () => {
    standInEngine()
    const hello = file('hello.service', helloText)
    file('web@.service', webText)
    await cairn(['unit', 'start', hello, 'web@1.service'])
    expect((await cairn(['unit', 'list-units'])).stdout).toBe(
      'UNIT           MACHINE      ACTIVE  SUB\n' +
        'hello.service  n1/10.0.0.1  active  running\n' +
        'web@1.service  n1/10.0.0.1  active  running\n',
    )
    expect(
      (await cairn(['unit', 'list-units', '--fields', 'unit,load,hash', '--no-legend', '-l'])).stdout,
    ).toBe(`hello.service  loaded  ${unitHash(helloText)}\nweb@1.service  loaded  ${unitHash(webText)}\n`)
    const files = (await cairn(['unit', 'list-unit-files'])).stdout.split('\n')
    expect(files[0]).toMatch(/^UNIT\s+HASH\s+DSTATE\s+STATE\s+TARGET$/)
    expect(files[1]).toMatch(/^hello\.service\s+[0-9a-f]{7}\s+launched\s+launched\s+n1\/10\.0\.0\.1$/)
    expect(files[2]).toMatch(/^web@\.service\s+[0-9a-f]{7}\s+inactive\s+inactive\s+-$/)
    expect((await cairn(['unit', 'list-unit-files', '--fields', 'unit,desc', '--no-legend'])).stdout).toBe(
      'hello.service  Hello\nweb@.service   Web %i\nweb@1.service  Web %i\n',
    )
    expect((await cairn(['unit', 'list-machines'])).stdout).toBe(
      'MACHINE  IP        METADATA\nn1       10.0.0.1  region=eu,zone=a\n',
    )
    const json = JSON.parse((await cairn(['unit', 'list-machines', '-o', 'json'])).stdout)
    expect(json).toEqual([{ id: 'n1', primaryIP: '10.0.0.1', metadata: { zone: 'a', region: 'eu' } }])
    expect((await cairn(['unit', 'list-units', '--fields', 'unit,color'])).code).toBe(2)
  })

  it("status shows where and how a unit runs, why it waits, and a template's rollout; cat prints the file", async () => {
    standInEngine()
    const hello = file('hello.service', helloText)
    await cairn(['unit', 'start', hello])
    const status = await cairn(['unit', 'status', 'hello.service'])
    expect(status.code).toBe(0)
    expect(status.stdout).toBe(
      [
        'hello.service - Hello',
        '  Desired:   launched',
        '  Current:   launched',
        '  Machine:   n1/10.0.0.1 (launched)',
        '  State:     loaded/active/running since 2023-11-14 22:13:20 UTC',
        '  Main PID:  1234',
        '  Restarts:  0',
        '',
      ].join('\n'),
    )
    file('web@.service', webText)
    await cairn(['unit', 'submit', 'web@9.service'])
    await markUnplaced(api.store, 'web@9.service', 'Cap=machine:1: every machine has one')
    expect((await cairn(['unit', 'status', 'web@9.service'])).stdout).toMatch(
      /Machine: {3}- \(not assigned\)\n {2}Unplaced: {2}Cap=machine:1: every machine has one\n$/,
    )
    await writeRollout(api.store, {
      template: 'web@.service',
      from: 'a'.repeat(40),
      to: 'b'.repeat(40),
      state: 'rolling',
      updated: ['web@9.service'],
      sinceMs: 1,
    })
    expect((await cairn(['unit', 'status', 'web@.service'])).stdout).toMatch(
      /Rollout: {3}rolling aaaaaaa -> bbbbbbb, updated: web@9\.service\n {2}Instances: web@9\.service\n$/,
    )
    expect(await cairn(['unit', 'cat', 'hello.service'])).toMatchObject({ code: 0, stdout: helloText })
    expect((await cairn(['unit', 'cat', 'web@9.service'])).stdout).toBe(webText)
    expect((await cairn(['unit', 'status', 'nope.service'])).code).toBe(1)
  })

  it('journal prints the last lines; -f follows new ones', async () => {
    for (let i = 1; i <= 12; i++)
      api.journals.append('hello.service', `line ${i}`, i === 12 ? 'stderr' : 'stdout', i * 1000)
    const run = await cairn(['unit', 'journal', 'hello.service', '--lines', '2'])
    expect(run).toMatchObject({
      code: 0,
      stdout: '1970-01-01T00:00:11.000Z line 11\n1970-01-01T00:00:12.000Z [stderr] line 12\n',
    })
    expect((await cairn(['unit', 'journal', 'hello.service'])).stdout.split('\n')).toHaveLength(11)
    expect((await cairn(['unit', 'journal', 'hello.service', '--lines', 'x'])).code).toBe(2)
    expect((await cairn(['unit', 'journal', 'nope.service'])).code).toBe(1)

    const child = spawn(process.execPath, [
      cairnBin,
      'unit',
      'journal',
      '-f',
      '--lines',
      '1',
      'hello.service',
      '--endpoint',
      api.url,
    ])
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    try {
      await until(() => stdout.includes('line 12') && api.journals.followers('hello.service') === 1)
      api.journals.append('hello.service', 'fresh', 'stdout', 13_000)
      await until(() => stdout.includes('fresh'))
      expect(stdout).toBe('1970-01-01T00:00:12.000Z [stderr] line 12\n1970-01-01T00:00:13.000Z fresh\n')
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('an unreachable endpoint is exit 1 with the hint', async () => {
    const child = spawn(process.execPath, [
      cairnBin,
      'unit',
      'list-units',
      '--endpoint',
      'http://127.0.0.1:9',
    ])
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    expect(code).toBe(1)
    expect(stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/)
  })
})

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
