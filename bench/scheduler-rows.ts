/**
 * bench/scheduler-rows: the four timed rows of the scheduler bench (issue 6). Each is timed from
 * just before its first API call to the poll answer in which the runners report every unit of the
 * row active/running on the expected version (fleet's /fleet/v1/state, or Cairn's unit status where
 * health is needed). Polls go to one agent every `pollMs`; a time is taken when a poll's answer
 * arrives, so each figure may be late by one poll interval, never early.
 *
 * Besides its figure a row returns milestones (API calls answered, every unit assigned, the failed
 * machine gone from the catalog, each rollout step) that say where its time went.
 */
import { performance } from 'node:perf_hooks'
import { unitHash } from '../src/scheduler/records.ts'
import { freePorts } from '../test/helpers/ports.ts'
import { aliveMachines, getJson, type SchedulerCluster, type SchedulerMachine } from './scheduler-cluster.ts'
import {
  destroyUnit,
  fleetAssignments,
  fleetStates,
  runs,
  sleeperText,
  startInstance,
  submitTemplate,
  unitStatus,
  webText,
} from './scheduler-fleet.ts'

export interface RowResult {
  seconds: number
  /** Where the time went, one line each. */
  notes: string[]
}

/** The longest any row may take before the bench gives up on it. */
const rowWaitMs = 180_000
const sleeper = 'sleeper@.service'
const web = 'bench@.service'
export const sleeperNames = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `sleeper@${from + i}.service`)

const seconds = (t0: number, t: number | undefined) =>
  t === undefined ? 'never' : `${((t - t0) / 1000).toFixed(2)} s`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function deadlineCheck(deadline: number, what: string): void {
  if (performance.now() > deadline) throw new Error(`timed out after ${rowWaitMs} ms waiting for ${what}`)
}

interface UnitsReport {
  assignedAt: number
  runningAt: number
  perMachine: Map<string, number>
}

/** Polls until every unit of `names` is assigned, then until every one runs `hash`. */
async function untilRunning(
  url: string,
  names: string[],
  hash: string,
  pollMs: number,
): Promise<UnitsReport> {
  const deadline = performance.now() + rowWaitMs
  let assignedAt: number | undefined
  for (;;) {
    if (assignedAt === undefined) {
      const assigned = await fleetAssignments(url)
      if (assigned !== undefined && names.every((n) => (assigned.get(n) ?? '') !== ''))
        assignedAt = performance.now()
    }
    const states = await fleetStates(url)
    const byName = new Map((states ?? []).map((s) => [s.name, s]))
    if (assignedAt !== undefined && names.every((n) => runs(byName.get(n), hash))) {
      const perMachine = new Map<string, number>()
      for (const n of names) {
        const m = byName.get(n)?.machineID ?? '?'
        perMachine.set(m, (perMachine.get(m) ?? 0) + 1)
      }
      return { assignedAt, runningAt: performance.now(), perMachine }
    }
    deadlineCheck(deadline, `${names.length} units running`)
    await sleep(pollMs)
  }
}

const spread = (perMachine: Map<string, number>) =>
  [...perMachine]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([m, n]) => `${m} ${n}`)
    .join(', ')

/** Starts instances one PUT each, all at once; resolves to when the last answer came. */
async function startAll(url: string, names: string[]): Promise<number> {
  await Promise.all(names.map((n) => startInstance(url, n)))
  return performance.now()
}

/** Row 1: 100 sleepers started at once on a cluster that runs nothing. */
export async function startRow(url: string, count: number, pollMs: number): Promise<RowResult> {
  const text = sleeperText()
  await submitTemplate(url, sleeper, text)
  const names = sleeperNames(1, count)
  const t0 = performance.now()
  const acked = startAll(url, names)
  const report = await untilRunning(url, names, unitHash(text), pollMs)
  const ackedAt = await acked
  return {
    seconds: (report.runningAt - t0) / 1000,
    notes: [
      `${count} PUTs answered ${seconds(t0, ackedAt)}, all assigned ${seconds(t0, report.assignedAt)}, all running ${seconds(t0, report.runningAt)}`,
      `per machine: ${spread(report.perMachine)}`,
    ],
  }
}

/** Row 2: one sleeper running, then `count - 1` more started at once. */
export async function scaleRow(url: string, count: number, pollMs: number): Promise<RowResult> {
  const text = sleeperText()
  const hash = unitHash(text)
  await submitTemplate(url, sleeper, text)
  await startInstance(url, sleeperNames(1, 1)[0] as string)
  await untilRunning(url, sleeperNames(1, 1), hash, pollMs)
  const names = sleeperNames(1, count)
  const t0 = performance.now()
  const acked = startAll(url, sleeperNames(2, count))
  const report = await untilRunning(url, names, hash, pollMs)
  const ackedAt = await acked
  return {
    seconds: (report.runningAt - t0) / 1000,
    notes: [
      `${count - 1} PUTs answered ${seconds(t0, ackedAt)}, all assigned ${seconds(t0, report.assignedAt)}, all running ${seconds(t0, report.runningAt)}`,
      `per machine: ${spread(report.perMachine)}`,
    ],
  }
}

/** Destroys units and waits until no runner reports them; then the template, if given. */
export async function cleanUp(url: string, names: string[], template: string | undefined): Promise<void> {
  await Promise.all(names.map((n) => destroyUnit(url, n)))
  const gone = new Set(names)
  const deadline = performance.now() + rowWaitMs
  for (;;) {
    const states = await fleetStates(url)
    if (states !== undefined && !states.some((s) => gone.has(s.name))) break
    deadlineCheck(deadline, `${names.length} units stopped`)
    await sleep(100)
  }
  if (template !== undefined) await destroyUnit(url, template)
}

/** True when every instance reports `hash` active/running and its check passing. */
async function allHealthy(url: string, names: string[], hash: string): Promise<boolean> {
  const statuses = await Promise.all(names.map((n) => unitStatus(url, n)))
  return statuses.every((st) => {
    const s = st?.states?.[0]
    return (
      st?.states?.length === 1 &&
      s !== undefined &&
      s.hash === hash &&
      s.activeState === 'active' &&
      s.subState === 'running' &&
      s.health === 'passing'
    )
  })
}

async function untilHealthy(url: string, names: string[], hash: string, pollMs: number): Promise<number> {
  const deadline = performance.now() + rowWaitMs
  while (!(await allHealthy(url, names, hash))) {
    deadlineCheck(deadline, `${names.length} instances healthy`)
    await sleep(pollMs)
  }
  return performance.now()
}

/**
 * Row 3: 10 web servers running with a passing check; a new version of their template; timed
 * until the rollout is `done` and every instance reports the new hash active and passing.
 */
export async function rollingRow(url: string, parallelism: number, pollMs: number): Promise<RowResult> {
  const names = (await freePorts(10)).map((port) => `bench@${port}.service`)
  const v1 = webText(1, parallelism)
  await submitTemplate(url, web, v1)
  await Promise.all(names.map((n) => startInstance(url, n)))
  const t1 = performance.now()
  const readyAt = await untilHealthy(url, names, unitHash(v1), pollMs)
  const v2 = webText(2, parallelism)
  const hash = unitHash(v2)
  const deadline = performance.now() + rowWaitMs
  const t0 = performance.now()
  await submitTemplate(url, web, v2)
  const steps: number[] = []
  let doneAt: number | undefined
  while (doneAt === undefined) {
    const rollout = (await unitStatus(url, web))?.rollout
    if (rollout?.to === hash) {
      while (steps.length < rollout.updated.length) steps.push(performance.now())
      if (rollout.state === 'done') doneAt = performance.now()
      if (rollout.state === 'rolled-back') throw new Error(`rollout rolled back: ${rollout.reason ?? ''}`)
    }
    deadlineCheck(deadline, 'the rollout done')
    if (doneAt === undefined) await sleep(pollMs)
  }
  const healthyAt = await untilHealthy(url, names, hash, pollMs)
  const takes = steps.map((t) => ((t - t0) / 1000).toFixed(2)).join(', ')
  const result: RowResult = {
    seconds: (healthyAt - t0) / 1000,
    notes: [
      `UpdateParallelism=${parallelism}; first start of the 10 until all passing: ${seconds(t1, readyAt)}`,
      `instances taken at ${takes} s; rollout done ${seconds(t0, doneAt)}, all new and passing ${seconds(t0, healthyAt)}`,
    ],
  }
  await cleanUp(url, names, web)
  return result
}

export type VictimKind = 'client' | 'server' | 'engine'

/**
 * The machine to fail: the client agent; a server that neither runs the engine nor leads Raft (so
 * the row measures the machine's units, not an engine or Raft election); or the engine's server.
 */
export async function pickVictim(cluster: SchedulerCluster, kind: VictimKind): Promise<SchedulerMachine> {
  if (kind === 'client') return cluster.machines.find((m) => !m.server) as SchedulerMachine
  const engine = await cluster.engineMachine()
  if (kind === 'engine') return engine
  for (const m of cluster.machines) {
    if (!m.server || m === engine) continue
    const status = await getJson<{ role?: string }>(`${m.url}/_cairn/status`)
    if (status?.role !== 'leader') return m
  }
  throw new Error('no server that is neither the engine nor the Raft leader')
}

/** Row 4: kill -9 of one agent running sleepers; timed until all its units run elsewhere. */
export async function failureRow(
  cluster: SchedulerCluster,
  victim: SchedulerMachine,
  pollMs: number,
): Promise<RowResult> {
  const observer = cluster.machines.find((m) => m.server && m !== victim) as SchedulerMachine
  const engine = await cluster.engineMachine()
  const hash = unitHash(sleeperText())
  const before = (await fleetStates(observer.url)) ?? []
  const moved = before.filter((s) => s.machineID === victim.name && runs(s, hash)).map((s) => s.name)
  if (moved.length === 0) throw new Error(`${victim.name} runs no sleeper`)
  const role = victim.server
    ? (await getJson<{ role?: string }>(`${victim.url}/_cairn/status`))?.role
    : undefined
  const deadline = performance.now() + rowWaitMs
  const t0 = performance.now()
  await cluster.kill(victim.name)
  let goneAt: number | undefined
  let assignedAt: number | undefined
  for (;;) {
    if (goneAt === undefined && !(await aliveMachines(observer.url)).includes(victim.name))
      goneAt = performance.now()
    if (goneAt !== undefined && assignedAt === undefined) {
      const assigned = await fleetAssignments(observer.url)
      const elsewhere = (n: string) => ![victim.name, ''].includes(assigned?.get(n) ?? '')
      if (assigned !== undefined && moved.every(elsewhere)) assignedAt = performance.now()
    }
    const states = new Map(((await fleetStates(observer.url)) ?? []).map((s) => [s.name, s]))
    const runsElsewhere = (n: string) => runs(states.get(n), hash) && states.get(n)?.machineID !== victim.name
    if (assignedAt !== undefined && moved.every(runsElsewhere)) break
    deadlineCheck(deadline, `the units of ${victim.name} running elsewhere`)
    await sleep(pollMs)
  }
  const runningAt = performance.now()
  const raft = role === 'leader' ? 'the Raft leader' : 'a Raft follower'
  const what = !victim.server
    ? 'client agent'
    : victim === engine
      ? `server agent running the engine, ${raft}`
      : `server agent, ${raft}, not the engine`
  return {
    seconds: (runningAt - t0) / 1000,
    notes: [
      `kill -9 of ${victim.name}, a ${what}, running ${moved.length} units; --machine-ttl ${cluster.machineTtlMs} ms`,
      `machine gone from the catalog ${seconds(t0, goneAt)}, its units assigned elsewhere ${seconds(t0, assignedAt)}, all running ${seconds(t0, runningAt)}`,
    ],
  }
}
