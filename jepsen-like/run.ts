/**
 * One jepsen-like run, start to verdict:
 *
 *   1. start the cluster (cluster.ts: real agents, one fault proxy each) and wait for a leader;
 *   2. run the workload's clients and the nemesis together for `timeS` seconds;
 *   3. stop the clients (each finishes its operation in flight) and the nemesis (it undoes its
 *      faults), then heal everything that may be left and wait until the cluster is quiet
 *      (one leader, every member a voter, all applied to the same index);
 *   4. the workload's final reads;
 *   5. check the history with checkersFor(workload), each within the time budget, plus the
 *      runner's own checks: `processes` (a member that exited by itself is a crash: unknown) and
 *      `recovery` (a cluster that does not heal and go quiet after the faults: unknown);
 *   6. stop every process (always, also after an error) and write the results folder.
 *
 * A run that cannot complete (no leader at start, an exception) is `unknown`, with the reason in
 * summary.json, and still writes what it recorded. Progress goes to `log` (stderr in the CLI);
 * the CLI prints only the folder and the verdict on stdout.
 *
 * Invariant: runJepsen() never returns or throws with a member process still running (the
 * cluster is stopped in `finally`; cluster-processes.ts kills leftovers on exit).
 */
import { setMaxListeners } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Prng } from '../src/raft/core/prng.ts'
import type { CheckResult, Verdict } from './checkers/checker.ts'
import { checkersFor, overallVerdict } from './checkers/index.ts'
import { createDispatcher } from './client.ts'
import { Cluster } from './cluster.ts'
import { HistoryRecorder, type Op, validateHistory } from './history.ts'
import { Nemesis, type NemesisKind, nemesisDefaults } from './nemesis.ts'
import { writeResults } from './report/index.ts'
import { createWorkload, type WorkloadName } from './workloads/index.ts'
import { sleep } from './workloads/workload.ts'

export interface RunOptions {
  nodes: number
  timeS: number
  workload: WorkloadName
  nemeses: NemesisKind[]
  seed: number
  concurrency: number
  /** Target client operations per second, over all clients. */
  rate: number
  /** Results folder; default jepsen-like/results/<timestamp>-<workload>-<seed>. */
  out?: string | undefined
  /** --planted-bug for every agent. */
  bug?: string | undefined
  clientTimeoutMs: number
  checkBudgetMs: number
  heartbeatMs: number
  electionMs: number
  snapshotCount: number
  serverLogLevel: string
  keepData: boolean
  faultMs: [number, number]
  quietMs: [number, number]
  /** The command that replays this run (written to summary.json). */
  command?: string
  log?: (line: string) => void
}

export const runDefaults = {
  nodes: 5,
  timeS: 60,
  workload: 'register',
  nemeses: ['partition', 'kill', 'pause'],
  concurrency: 10,
  rate: 100,
  clientTimeoutMs: 4_000,
  checkBudgetMs: 120_000,
  heartbeatMs: 100,
  electionMs: 1_000,
  // Small, so that runs take and ship snapshots (a restarted or re-added member catches up by one).
  snapshotCount: 1_000,
  serverLogLevel: 'info',
  keepData: false,
  faultMs: [...nemesisDefaults.faultMs],
  quietMs: [...nemesisDefaults.quietMs],
} satisfies Omit<RunOptions, 'seed'>

/** Deadlines of the phases around the workload. */
const leaderAtStartMs = 60_000
const quietAfterHealMs = 60_000
/** Extra settle time once quiet, before the final reads (as Jepsen's sleep after healing). */
const settleMs = 1_000

export interface RunResult {
  dir: string
  verdict: Verdict
  results: CheckResult[]
  meta: Record<string, unknown>
}

export const resultsRoot = fileURLToPath(new URL('./results/', import.meta.url))

export function defaultResultsDir(workload: string, seed: number, now = new Date()): string {
  const stamp = now.toISOString().replace(/:/g, '-').replace(/\..*$/, '')
  return join(resultsRoot, `${stamp}-${workload}-${seed}`)
}

export async function runJepsen(options: RunOptions): Promise<RunResult> {
  const log = options.log ?? (() => {})
  const dir = options.out ?? defaultResultsDir(options.workload, options.seed)
  await mkdir(dir, { recursive: true })
  const recorder = new HistoryRecorder()
  const prng = new Prng(options.seed)
  const started = performance.now()
  const phases: Record<string, number> = {}
  const mark = (phase: string) => {
    phases[phase] = Math.round(performance.now() - started)
    log(`${phase} (${phases[phase]} ms)`)
  }
  const meta: Record<string, unknown> = { ...describeOptions(options), startedAt: new Date().toISOString() }
  const results: CheckResult[] = []
  const dispatcher = createDispatcher(options.clientTimeoutMs)
  let cluster: Cluster | undefined
  try {
    cluster = await Cluster.start({
      nodes: options.nodes,
      seed: options.seed,
      logDir: join(dir, 'logs'),
      heartbeatMs: options.heartbeatMs,
      electionMs: options.electionMs,
      snapshotCount: options.snapshotCount,
      logLevel: options.serverLogLevel,
      plantedBug: options.bug,
      keepData: options.keepData,
      log,
    })
    meta.cluster = cluster.describe()
    if (options.keepData) log(`data directories kept in ${cluster.dataRoot}`)
    if ((await cluster.waitForLeader(leaderAtStartMs, true)) === undefined) {
      throw new Error(`no leader within ${leaderAtStartMs} ms of starting the cluster (see logs/)`)
    }
    mark('cluster up')
    const c = cluster
    const workload = createWorkload(options.workload, {
      recorder,
      endpoints: c.names.map((name) => ({ name, url: c.clientUrl(name) })),
      concurrency: options.concurrency,
      rate: options.rate,
      timeMs: options.timeS * 1_000,
      prng: prng.fork(),
      clientTimeoutMs: options.clientTimeoutMs,
      dispatcher,
      log,
    })
    const nemesis = new Nemesis({
      kinds: options.nemeses,
      cluster: c,
      recorder,
      prng: prng.fork(),
      faultMs: options.faultMs,
      quietMs: options.quietMs,
      log,
    })
    await runPhase(options.timeS * 1_000, [(s) => workload.run(s), (s) => nemesis.run(s)])
    meta.faults = nemesis.counts
    mark('workload and nemesis stopped')
    meta.healed = await c.healAll()
    meta.quiet = await c.waitQuiet(quietAfterHealMs)
    await sleep(settleMs)
    mark(meta.quiet === true ? 'healed and quiet' : 'healed, NOT quiet before the deadline')
    await workload.final()
    mark('final reads done')
    meta.unexpectedExits = c.unexpectedExits
    meta.proxies = c.proxyStats()
    results.push(...check(options, recorder.ops, log), processesCheck(c), recoveryCheck(meta))
    mark('checked')
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    meta.error = error instanceof Error ? (error.stack ?? message) : message
    log(`run failed: ${message}`)
    results.push({ checker: 'runner', verdict: 'unknown', summary: `the run did not complete: ${message}` })
  } finally {
    await cluster?.stop()
    await dispatcher.close()
  }
  meta.ops = opCounts(recorder.ops)
  meta.logErrors = cluster === undefined ? {} : logErrors(join(dir, 'logs'), cluster.names)
  meta.durationMs = Math.round(performance.now() - started)
  meta.phases = phases
  await writeResults(dir, { history: recorder.ops, results, meta })
  return { dir, verdict: overallVerdict(results), results, meta }
}

/** Runs tasks until `ms` pass (or one fails), then aborts them and waits for all to finish. */
async function runPhase(ms: number, tasks: ((signal: AbortSignal) => Promise<void>)[]): Promise<void> {
  const controller = new AbortController()
  setMaxListeners(0, controller.signal) // every client and the nemesis wait on it
  const timer = setTimeout(() => controller.abort(), ms)
  try {
    const settled = await Promise.allSettled(
      tasks.map((task) =>
        task(controller.signal).catch((error: unknown) => {
          controller.abort()
          throw error
        }),
      ),
    )
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}

function check(options: RunOptions, history: readonly Op[], log: (line: string) => void): CheckResult[] {
  validateHistory(history)
  return checkersFor(options.workload).map((checker) => {
    const result = checker.check(history, { timeBudgetMs: options.checkBudgetMs })
    log(`checker ${result.checker}: ${result.verdict}: ${result.summary}`)
    return result
  })
}

/** The runner's own check: a member process that exited without the harness asking crashed. */
function processesCheck(cluster: Cluster): CheckResult {
  const exits = cluster.unexpectedExits
  if (cluster.proxyErrors.length > 0) {
    return {
      checker: 'processes',
      verdict: 'unknown',
      summary: `a proxy could not listen again, so its member was unreachable: ${cluster.proxyErrors.join('; ')}`,
    }
  }
  if (exits.length === 0) {
    return {
      checker: 'processes',
      verdict: 'valid',
      summary: 'no member exited unless the nemesis killed it',
    }
  }
  const list = exits.map((e) => `${e.member} (code ${e.code}, signal ${e.signal})`).join(', ')
  return {
    checker: 'processes',
    verdict: 'unknown',
    summary: `member processes exited by themselves (a crash, see logs/): ${list}`,
    details: exits,
  }
}

/**
 * The runner's check that the cluster came back: after every fault was undone it must heal (every
 * member running and a member again) and go quiet. A cluster that does not is not judged invalid
 * (no operation is wrong) but is not valid either: a liveness problem to look into.
 */
function recoveryCheck(meta: Record<string, unknown>): CheckResult {
  if (meta.healed === true && meta.quiet === true) {
    return {
      checker: 'recovery',
      verdict: 'valid',
      summary: 'healed and quiet: one leader, every member a voter',
    }
  }
  return {
    checker: 'recovery',
    verdict: 'unknown',
    summary: `the cluster did not recover after healing (healed: ${meta.healed}, quiet: ${meta.quiet}); see logs/`,
  }
}

function opCounts(history: readonly Op[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const op of history) {
    if (op.type === 'invoke') continue
    const name = op.process < 0 ? `nemesis ${op.f}` : `${op.f} ${op.type}`
    counts[name] = (counts[name] ?? 0) + 1
  }
  return counts
}

/** Error and fatal lines (pino levels 50, 60) per member log: a count and the first few. */
function logErrors(logDir: string, names: readonly string[]): Record<string, unknown> {
  const firstMax = 5
  const out: Record<string, unknown> = {}
  for (const name of names) {
    let text = ''
    try {
      text = readFileSync(join(logDir, `${name}.log`), 'utf8')
    } catch {
      continue
    }
    const lines = text.split('\n').filter((line) => /"level":(50|60)[,}]/.test(line))
    if (lines.length > 0) out[name] = { count: lines.length, first: lines.slice(0, firstMax) }
  }
  return out
}

function describeOptions(o: RunOptions): Record<string, unknown> {
  return {
    workload: o.workload,
    seed: o.seed,
    nodes: o.nodes,
    timeS: o.timeS,
    nemesis: o.nemeses,
    concurrency: o.concurrency,
    rate: o.rate,
    bug: o.bug ?? null,
    clientTimeoutMs: o.clientTimeoutMs,
    checkBudgetMs: o.checkBudgetMs,
    heartbeatMs: o.heartbeatMs,
    electionMs: o.electionMs,
    snapshotCount: o.snapshotCount,
    faultMs: o.faultMs,
    quietMs: o.quietMs,
    command: o.command ?? null,
  }
}
