/**
 * The unit runner against a real in-process store, with real child processes (`/bin/sh`, `node`,
 * `sleep`): assignments in, processes and unit states out. The machine fence is a small stand-in
 * with a manual clock, so that "the lease deadline passed" happens exactly when a test says so;
 * everything else runs on real time with short RestartSec/TimeoutStopSec values.
 *
 * What it proves: launched → active/running with a pid; loaded → stopped; unassigned → stopped and
 * state deleted; a new hash → the new text runs; Restart=on-failure backs off (doubling, capped)
 * and counts; Restart=no → failed with the exit code; a failing ExecStartPre fails the start (a
 * `-` one does not); SIGKILL after TimeoutStopSec for a process ignoring SIGTERM; Environment,
 * EnvironmentFile and $VAR substitution; a start that fails before a process runs (a missing
 * EnvironmentFile, an ExecStart that cannot be spawned) says why in the state and the journal;
 * journal tail and follow; pids.json leftovers killed at start; the fence kills and a good ack
 * restarts; a declared registration reaches the catalog with its check, and its status shows as
 * health; a registration that answers after its run ended never takes away the registration of the
 * unit's next run.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startCatalogFeed } from '../../catalog/feed.ts'
import { nodeRecord, parseCatalogKey } from '../../catalog/records.ts'
import { CatalogState } from '../../catalog/state.ts'
import { CatalogWriter } from '../../catalog/writer.ts'
import { LocalKvStore } from '../../kv/local-kv-store.ts'
import { prefixRange } from '../../kv/prefix-feed.ts'
import {
  type Assignment,
  assignKey,
  decodeUnitState,
  stateKey,
  type UnitStateRecord,
  unitHash,
} from '../../scheduler/records.ts'
import { ManualClock } from '../checks/test-helpers.ts'
import { LocalRegistry } from '../local-registry.ts'
import { runnerLimits } from './limits.ts'
import type { UnitRegistry } from './managed-unit.ts'
import { processStartTicks } from './pid-file.ts'
import { type MachineFence, UnitRunner } from './runner.ts'

const node = 'm1'
const ttlMs = 3_000

/** The machine lease as the runner sees it: a lease id, a status, a deadline, listeners. */
class TestFence implements MachineFence {
  lease: number
  status = 'alive'
  fenceDeadlineMs: number | undefined
  readonly #listeners = new Set<() => void>()
  constructor(
    lease: number,
    readonly clock: ManualClock,
  ) {
    this.lease = lease
    this.fenceDeadlineMs = clock.now() + ttlMs
  }
  onLeaseChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
  /** A keep-alive sent now was acknowledged. */
  ack(): void {
    this.fenceDeadlineMs = this.clock.now() + ttlMs
    for (const l of this.#listeners) l()
  }
}

interface Setup {
  store: LocalKvStore
  runner: UnitRunner
  fence: TestFence
  fenceClock: ManualClock
  dir: string
}

let dir: string
const cleanups: Array<() => Promise<void> | void> = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-runner-'))
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await rm(dir, { recursive: true, force: true })
})

async function setup(extra: Partial<ConstructorParameters<typeof UnitRunner>[0]> = {}): Promise<Setup> {
  const store = new LocalKvStore()
  const lease = await store.leaseGrant({ ttlMs: 600_000 })
  const fenceClock = new ManualClock()
  const fence = new TestFence(lease.id, fenceClock)
  const runner = new UnitRunner({
    store,
    node,
    dataDir: dir,
    machine: fence,
    fenceClock,
    limits: { stateWriteDelayMs: 5, restartResetAfterMs: 60_000, stopAllMsMax: 1_000, ...extra.limits },
    ...extra,
  })
  cleanups.push(() => runner.stop())
  await runner.start()
  return { store, runner, fence, fenceClock, dir }
}

async function assign(
  store: LocalKvStore,
  unit: string,
  text: string,
  desiredState: Assignment['desiredState'] = 'launched',
) {
  const assignment: Assignment = {
    unit,
    machine: node,
    desiredState,
    text,
    hash: unitHash(text),
    engine: 1,
    placedMs: 0,
  }
  await store.put({ key: assignKey(node, unit), value: JSON.stringify(assignment) })
}

async function stateOf(store: LocalKvStore, unit: string): Promise<UnitStateRecord | undefined> {
  const kv = (await store.range({ key: stateKey(node, unit) })).kvs[0]
  return kv === undefined ? undefined : decodeUnitState(kv.value)
}

async function waitFor<T>(
  what: string,
  read: () => Promise<T> | T,
  ok: (v: T) => boolean,
  timeoutMs = 5_000,
): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 15))
  }
}

function waitState(
  store: LocalKvStore,
  unit: string,
  ok: (s: UnitStateRecord | undefined) => boolean,
  timeoutMs?: number,
) {
  return waitFor(`state of ${unit}`, () => stateOf(store, unit), ok, timeoutMs)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return processStartTicks(pid) !== undefined && !isZombie(pid)
  } catch {
    return false
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return false
  }
}

async function journalTexts(runner: UnitRunner, unit: string): Promise<string[]> {
  return ((await runner.journals.tail(unit, 1000)) ?? []).map((l) => `${l.stream}: ${l.text}`)
}

const sleeper = (extra = '') => `[Service]\nExecStart=/bin/sleep 300\n${extra}`

describe('UnitRunner: assignments', () => {
  it('runs a launched assignment: active/running with its pid, on the machine lease', async () => {
    const { store, runner, fence } = await setup()
    await assign(store, 'web.service', sleeper())
    const state = await waitState(store, 'web.service', (s) => s?.subState === 'running')
    expect(state).toMatchObject({
      unit: 'web.service',
      machine: node,
      loadState: 'loaded',
      activeState: 'active',
      restarts: 0,
    })
    expect(state?.hash).toBe(unitHash(sleeper()))
    expect(alive(state?.pid ?? 0)).toBe(true)
    const kv = (await store.range({ key: stateKey(node, 'web.service') })).kvs[0]
    expect(kv?.lease).toBe(fence.lease)
    expect(await journalTexts(runner, 'web.service')).toContain(`cairn: started pid ${state?.pid}`)
    expect(runner.status()).toMatchObject({ fenced: false, units: 1, running: 1, failed: 0 })
  })

  it('loaded stops it; unassigned deletes its state', async () => {
    const { store } = await setup()
    await assign(store, 'web.service', sleeper())
    const { pid } = (await waitState(store, 'web.service', (s) => s?.subState === 'running')) ?? {}
    await assign(store, 'web.service', sleeper(), 'loaded')
    const stopped = await waitState(store, 'web.service', (s) => s?.activeState === 'inactive')
    expect(stopped).toMatchObject({ subState: 'dead', exitSignal: 'SIGTERM' })
    expect(stopped?.pid).toBeUndefined()
    await waitFor(
      'process gone',
      () => alive(pid ?? 0),
      (a) => !a,
    )
    await assign(store, 'web.service', sleeper())
    const again = await waitState(store, 'web.service', (s) => s?.subState === 'running')
    await store.delete({ key: assignKey(node, 'web.service') })
    await waitState(store, 'web.service', (s) => s === undefined)
    await waitFor(
      'process gone',
      () => alive(again?.pid ?? 0),
      (a) => !a,
    )
  })

  it('a new hash stops the old version and runs the new text', async () => {
    const { store, runner } = await setup()
    const v1 = '[Service]\nExecStart=/bin/sh -c "echo v1; exec sleep 300"\n'
    const v2 = '[Service]\nExecStart=/bin/sh -c "echo v2; exec sleep 300"\n'
    await assign(store, 'web.service', v1)
    const first = await waitState(store, 'web.service', (s) => s?.subState === 'running')
    await assign(store, 'web.service', v2)
    const second = await waitState(
      store,
      'web.service',
      (s) => s?.hash === unitHash(v2) && s.subState === 'running',
    )
    expect(second?.pid).not.toBe(first?.pid)
    expect(alive(first?.pid ?? 0)).toBe(false)
    const texts = await waitFor(
      'v2 output',
      () => journalTexts(runner, 'web.service'),
      (t) => t.includes('stdout: v2'),
    )
    expect(texts.indexOf('stdout: v1')).toBeLessThan(texts.indexOf('cairn: stopped'))
  })

  it('a file that does not parse is loadState error with the message; nothing runs', async () => {
    const { store, runner } = await setup()
    await assign(store, 'bad.service', '[Service]\nExecStart=relative/path\n')
    const state = await waitState(store, 'bad.service', (s) => s !== undefined)
    expect(state).toMatchObject({ loadState: 'error', activeState: 'inactive', subState: 'dead' })
    expect(state?.message).toContain('ExecStart')
    expect(runner.status().running).toBe(0)
  })
})

describe('UnitRunner: exits and restarts', () => {
  it('Restart=on-failure restarts with a doubling, capped delay and counts restarts', async () => {
    const { store, runner } = await setup({ limits: { restartDelayMsMax: 160 } })
    await assign(
      store,
      'crash.service',
      '[Service]\nExecStart=/bin/sh -c "exit 3"\nRestart=on-failure\nRestartSec=40ms\n',
    )
    const state = await waitState(store, 'crash.service', (s) => (s?.restarts ?? 0) >= 4)
    expect(state).toMatchObject({ exitCode: 3 })
    const delays = (await journalTexts(runner, 'crash.service'))
      .filter((t) => t.startsWith('cairn: restarting in'))
      .slice(0, 4)
    expect(delays).toEqual([
      'cairn: restarting in 40 ms',
      'cairn: restarting in 80 ms',
      'cairn: restarting in 160 ms',
      'cairn: restarting in 160 ms',
    ])
  })

  it('Restart=no: a failing process is failed with its exit code and stays down', async () => {
    const { store, runner } = await setup()
    await assign(store, 'once.service', '[Service]\nExecStart=/bin/sh -c "echo bye >&2; exit 7"\n')
    const state = await waitState(store, 'once.service', (s) => s?.activeState === 'failed')
    expect(state).toMatchObject({
      subState: 'failed',
      exitCode: 7,
      restarts: 0,
      message: 'exited with code 7',
    })
    const texts = await journalTexts(runner, 'once.service')
    expect(texts).toContain('stderr: bye')
    expect(texts).toContain('cairn: exited with code 7')
  })

  it('a failing ExecStartPre fails the start; one with - does not', async () => {
    const { store, runner } = await setup()
    const text = `[Service]
ExecStartPre=-/bin/sh -c "echo ignored; exit 1"
ExecStartPre=/bin/sh -c "echo pre; exit 4"
ExecStart=/bin/sh -c "echo main; exec sleep 300"
`
    await assign(store, 'pre.service', text)
    const state = await waitState(store, 'pre.service', (s) => s?.activeState === 'failed')
    expect(state?.message).toContain('ExecStartPre /bin/sh exited with code 4')
    const texts = await journalTexts(runner, 'pre.service')
    expect(texts).toEqual(expect.arrayContaining(['stdout: ignored', 'stdout: pre']))
    expect(texts).not.toContain('stdout: main')
  })

  it('TimeoutStopSec: a process that ignores SIGTERM is SIGKILLed after ExecStop and the timeout', async () => {
    const { store, runner } = await setup()
    const text = `[Service]
ExecStart=${process.execPath} -e "process.on('SIGTERM', () => console.log('ignoring TERM')); console.log('ready'); setInterval(() => {}, 1000)"
ExecStop=/bin/sh -c "echo stopping $MAINPID"
TimeoutStopSec=300ms
`
    await assign(store, 'stubborn.service', text)
    const running = await waitState(store, 'stubborn.service', (s) => s?.subState === 'running')
    await waitFor(
      'ready',
      () => journalTexts(runner, 'stubborn.service'),
      (t) => t.includes('stdout: ready'),
    )
    const started = Date.now()
    await store.delete({ key: assignKey(node, 'stubborn.service') })
    await waitState(store, 'stubborn.service', (s) => s === undefined)
    expect(Date.now() - started).toBeGreaterThanOrEqual(280)
    const texts = await journalTexts(runner, 'stubborn.service')
    expect(texts).toEqual(
      expect.arrayContaining([
        `stdout: stopping ${running?.pid}`,
        'stdout: ignoring TERM',
        'cairn: still running 300 ms after SIGTERM (TimeoutStopSec); sending SIGKILL',
        'cairn: killed by signal SIGKILL',
      ]),
    )
    expect(alive(running?.pid ?? 0)).toBe(false)
  })
})

describe('UnitRunner: environment and journal', () => {
  it('Environment, EnvironmentFile (which overrides) and $VAR and braced-VAR substitution', async () => {
    const { store, runner } = await setup()
    const envFile = join(dir, 'web.env')
    await writeFile(envFile, '# settings\nB=fromfile\nC="three"\n')
    const text = `[Service]
Environment="A=one two" B=x
EnvironmentFile=${envFile}
EnvironmentFile=-/nonexistent/env
WorkingDirectory=${dir}
ExecStart=/usr/bin/printf "%%s|" $A \${B}-\${C} $$HOME x$A
`
    await assign(store, 'env.service', text)
    await waitState(store, 'env.service', (s) => s?.activeState === 'inactive' && s.exitCode === 0)
    const texts = await journalTexts(runner, 'env.service')
    expect(texts).toContain('stdout: one|two|fromfile-three|$HOME|x$A|')
  })

  it('a missing EnvironmentFile without - fails the start with a message, in the state and the journal', async () => {
    const { store, runner } = await setup()
    await assign(store, 'env.service', '[Service]\nEnvironmentFile=/nonexistent/env\nExecStart=/bin/true\n')
    const state = await waitState(store, 'env.service', (s) => s?.activeState === 'failed')
    expect(state?.message).toContain('EnvironmentFile /nonexistent/env: not found')
    expect(await journalTexts(runner, 'env.service')).toEqual([`cairn: ${state?.message}`])
  })

  it('an ExecStart that cannot be spawned fails the start, in the state and the journal', async () => {
    const { store, runner } = await setup({ setpriv: null }) // through setpriv, it would exit 127
    await assign(store, 'missing.service', '[Service]\nExecStart=/nonexistent/bin\n')
    const state = await waitState(store, 'missing.service', (s) => s?.activeState === 'failed')
    expect(state?.message).toMatch(/^ExecStart \/nonexistent\/bin: .*ENOENT/)
    expect(await journalTexts(runner, 'missing.service')).toEqual([`cairn: ${state?.message}`])
  })

  it('journal: stdout and stderr lines with runner lines, tail across rotation, follow', async () => {
    const { store, runner } = await setup({ limits: { journalFileBytesMax: 2_000, journalFilesKept: 2 } })
    const text = `[Service]
ExecStart=/bin/sh -c "i=0; while [ $i -lt 200 ]; do echo out $i; i=$((i+1)); done; echo err >&2; exec sleep 300"
`
    await assign(store, 'log.service', text)
    const tail = await waitFor(
      'all output',
      async () => (await runner.journals.tail('log.service', 3)) ?? [],
      (t) => t.at(-1)?.text === 'err',
    )
    expect(tail.map((l) => [l.stream, l.text])).toEqual([
      ['stdout', 'out 198'],
      ['stdout', 'out 199'],
      ['stderr', 'err'],
    ])
    const all = (await runner.journals.tail('log.service', 1000)) ?? []
    expect(all.length).toBeLessThan(150) // rotated out
    const followed: string[] = []
    const controller = new AbortController()
    cleanups.push(() => controller.abort())
    expect(runner.journals.follow('log.service', (l) => followed.push(l.text), controller.signal)).toBe(true)
    await store.delete({ key: assignKey(node, 'log.service') })
    await waitFor(
      'stop lines',
      () => followed,
      (f) => f.includes('stopped'),
    )
    expect(followed[0]).toBe('killed by signal SIGTERM')
  })
})

describe('UnitRunner: leftovers and fencing', () => {
  it('at start, kills a process group that a previous run recorded in pids.json', async () => {
    const child = spawn('/bin/sh', ['-c', 'sleep 300 & exec sleep 300'], { detached: true, stdio: 'ignore' })
    const pid = child.pid ?? 0
    cleanups.push(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    })
    await waitFor(
      'child running',
      () => processStartTicks(pid),
      (t) => t !== undefined,
    )
    await mkdir(join(dir, 'units'), { recursive: true })
    await writeFile(
      join(dir, 'units', 'pids.json'),
      JSON.stringify({
        version: 1,
        runs: [{ unit: 'old.service', pid, startTicks: processStartTicks(pid) }],
      }),
    )
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    await setup()
    expect(await exited).toBe('SIGKILL')
    await waitFor(
      'group gone',
      () => {
        try {
          process.kill(-pid, 0)
          return true
        } catch {
          return false
        }
      },
      (a) => !a,
    )
  })

  it('a fence deadline that passes kills every unit at once; a good ack reads assignments again and restarts', async () => {
    const { store, runner, fence, fenceClock } = await setup()
    await assign(store, 'a.service', sleeper('TimeoutStopSec=infinity\nExecStop=/bin/sleep 300\n'))
    await assign(store, 'b.service', sleeper())
    const a1 = await waitState(store, 'a.service', (s) => s?.subState === 'running')
    await waitState(store, 'b.service', (s) => s?.subState === 'running')
    await fenceClock.advance(ttlMs - 1)
    expect(alive(a1?.pid ?? 0)).toBe(true)
    await fenceClock.advance(1) // the deadline: no newer ack
    expect(runner.status().fenced).toBe(true)
    await waitFor(
      'killed',
      () => alive(a1?.pid ?? 0),
      (a) => !a,
      5_000,
    )
    await waitFor(
      'nothing running',
      () => runner.status().running,
      (n) => n === 0,
      5_000,
    )
    // Nothing is reported while fenced: the stored state still says running.
    expect((await stateOf(store, 'a.service'))?.subState).toBe('running')
    // While fenced, b was unassigned: after the ack it is not started again and its state goes.
    await store.delete({ key: assignKey(node, 'b.service') })
    fence.ack()
    const a2 = await waitState(store, 'a.service', (s) => s?.subState === 'running' && s.pid !== a1?.pid)
    expect(alive(a2?.pid ?? 0)).toBe(true)
    await waitState(store, 'b.service', (s) => s === undefined)
    expect(runner.status()).toMatchObject({ fenced: false, units: 1, running: 1, fences: 1 })
  })

  it('a lost lease (status no longer alive) fences at once; a new lease re-writes states under it', async () => {
    const { store, runner, fence } = await setup()
    await assign(store, 'web.service', sleeper())
    const s1 = await waitState(store, 'web.service', (s) => s?.subState === 'running')
    fence.status = 'lost'
    fence.lease = 0
    fence.fenceDeadlineMs = undefined
    fence.ack()
    expect(runner.status().fenced).toBe(true)
    await waitFor(
      'killed',
      () => alive(s1?.pid ?? 0),
      (a) => !a,
      5_000,
    )
    const lease = await store.leaseGrant({ ttlMs: 600_000 })
    fence.lease = lease.id
    fence.status = 'alive'
    fence.ack()
    await waitState(store, 'web.service', (s) => s?.subState === 'running' && s.pid !== s1?.pid)
    const kv = (await store.range({ key: stateKey(node, 'web.service') })).kvs[0]
    expect(kv?.lease).toBe(lease.id)
  })
})

describe('UnitRunner: registration', () => {
  let server: Server
  afterEach(async () => {
    await new Promise((r) => server?.close(r))
  })

  it('registers the declared service with its check while running; health in the state; gone on stop', async () => {
    server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const store = new LocalKvStore()
    const catalog = new CatalogState()
    const feed = startCatalogFeed(store, catalog)
    cleanups.push(() => feed.stop())
    await feed.ready
    const writer = new CatalogWriter(store)
    await writer.register({ node: nodeRecord({ Node: node, Address: '127.0.0.1' }) })
    const log = { info: () => {}, warn: () => {}, error: () => {} }
    const registry = new LocalRegistry({
      nodeName: node,
      datacenter: 'dc1',
      writer,
      catalog,
      dataDir: dir,
      enableScriptChecks: false,
      role: 'client',
      log,
      checkFirstRunDelayMs: 0,
    })
    await registry.start()
    cleanups.push(() => registry.stop())
    const lease = await store.leaseGrant({ ttlMs: 600_000 })
    const fenceClock = new ManualClock()
    const runner = new UnitRunner({
      store,
      node,
      dataDir: dir,
      machine: new TestFence(lease.id, fenceClock),
      fenceClock,
      registry,
      limits: { ...runnerLimits, stateWriteDelayMs: 5, healthPollMs: 600_000 }, // health comes from the registry's change report
    })
    cleanups.push(() => runner.stop())
    await runner.start()
    const text = `[Service]
ExecStart=/bin/sleep 300
[X-Cairn]
ServiceName=web
ServicePort=${port}
ServiceTags=v1 blue
CheckHTTP=http://127.0.0.1:${port}/health
CheckInterval=1s
`
    await assign(store, 'web@1.service', text)
    await waitState(store, 'web@1.service', (s) => s?.health === 'passing')
    const records = async () => {
      const { kvs } = await store.range(prefixRange('/_cairn/catalog/'))
      return kvs.filter((kv) => {
        const key = parseCatalogKey(kv.key)
        return (key?.kind === 'service' || key?.kind === 'check') && key.node === node
      })
    }
    const found = await waitFor('catalog records', records, (r) => r.length === 2)
    const service = found.find((kv) => parseCatalogKey(kv.key)?.kind === 'service')
    const check = found.find((kv) => parseCatalogKey(kv.key)?.kind === 'check')
    expect(JSON.parse(service?.value ?? '{}')).toMatchObject({
      ID: 'web@1.service',
      Service: 'web',
      Port: port,
      Tags: ['v1', 'blue'],
    })
    expect(JSON.parse(check?.value ?? '{}')).toMatchObject({
      ServiceID: 'web@1.service',
      Status: 'passing',
      Definition: { HTTP: `http://127.0.0.1:${port}/health`, Interval: '1s', Timeout: '5s' },
    })
    await store.delete({ key: assignKey(node, 'web@1.service') })
    await waitFor('catalog records gone', records, (r) => r.length === 0)
    expect(registry.services()).toEqual([])
  })
})

/**
 * A registry whose registerService applies at once (LocalRegistry's local commit) but answers only
 * when the test releases it (LocalRegistry answers after its catalog write, which a loaded cluster
 * can take a second or more to make). Every call is logged in order.
 */
class SlowAnswerRegistry implements UnitRegistry {
  readonly services = new Map<string, unknown>()
  readonly log: string[] = []
  /** Hold the answer of the next registration. */
  holdNext = false
  readonly #held: Array<() => void> = []

  async registerService(body: unknown): Promise<void> {
    const id = (body as { ID: string }).ID
    this.services.set(id, body)
    this.log.push(`register ${id}`)
    if (!this.holdNext) return
    this.holdNext = false
    await new Promise<void>((resolve) => this.#held.push(resolve))
  }

  async deregisterService(id: string): Promise<boolean> {
    this.log.push(`deregister ${id}`)
    return this.services.delete(id)
  }

  checks(): Array<{ ServiceID: string; Status: string }> {
    return [...this.services.keys()].map((id) => ({ ServiceID: id, Status: 'passing' }))
  }

  get held(): number {
    return this.#held.length
  }

  release(): void {
    for (const resolve of this.#held.splice(0)) resolve()
  }
}

describe('UnitRunner: registrations that answer late', () => {
  // CI (scheduler-agents, the rollback): v3 exited at once while its registration was still being
  // written to the catalog; the rollback started v2 again and registered it; then v3's registration
  // answered, found its run gone and deregistered the unit's service by name: v2's. v2 ran, its
  // port answered, and DNS never listed it again.
  it("a late answer of a dead run's registration leaves the next run's registration in place", async () => {
    const registry = new SlowAnswerRegistry()
    const { store } = await setup({ registry })
    const unit = 'hello@1.service'
    const text = (exec: string) =>
      `[Service]\nExecStart=${exec}\n[X-Cairn]\nServiceName=hello\nServicePort=8080\nCheckHTTP=http://127.0.0.1:8080/\n`
    const v2 = text('/bin/sleep 300')
    const v3 = text('/bin/sh -c "exit 3"')
    await assign(store, unit, v2)
    await waitState(store, unit, (s) => s?.subState === 'running' && s.health === 'passing')

    registry.holdNext = true
    await assign(store, unit, v3)
    await waitState(store, unit, (s) => s?.hash === unitHash(v3) && s.activeState === 'failed')
    expect(registry.held).toBe(1) // v3's registration has not answered

    await assign(store, unit, v2) // the rollback
    const again = await waitState(store, unit, (s) => s?.hash === unitHash(v2) && s.subState === 'running')
    registry.release()
    const log = await waitFor(
      'five registry calls',
      () => [...registry.log],
      (l) => l.length >= 5,
    )
    expect(log).toEqual([
      `register ${unit}`, // v2
      `deregister ${unit}`, // v2 stopped for v3
      `register ${unit}`, // v3, answered late
      `deregister ${unit}`, // v3 had exited when it answered
      `register ${unit}`, // v2 again, after v3's registration is gone
    ])
    expect(registry.services.has(unit)).toBe(true)
    await waitState(store, unit, (s) => s?.pid === again?.pid && s?.health === 'passing')
  })
})
