/**
 * One unit on this machine: its assignment, its process, its restart policy and its state. The
 * runner (runner.ts) creates one per assigned unit and tells it three things: the assignment
 * changed (assign), the machine is fenced or not (setFenced), the agent is stopping (shutdown).
 *
 * Invariants:
 * - At most one run (ExecStartPre commands, then the ExecStart process) exists at a time, and it
 *   exists only while wanted(): assigned, desiredState 'launched', parsed, not fenced, not
 *   shutting down. Every decision is taken by #step, one at a time (#kick coalesces requests); it
 *   re-reads wanted() after every await, never acting on a stale check.
 * - A run belongs to one assignment hash: a new hash stops the old run (ExecStop, SIGTERM,
 *   SIGKILL after TimeoutStopSec) before the new one starts. The restart counter and the restart
 *   delay start over with each new hash.
 * - Fencing kills synchronously: setFenced(true) SIGKILLs the process groups of the run and of any
 *   helper command (ExecStartPre, ExecStop) before it returns, without waiting for #step.
 * - After a run ends by itself and Restart= says no more, the unit is held (not started again)
 *   until its assignment changes hash, goes 'loaded' and back to 'launched', or a fence is lifted.
 * - Every state change calls onState once; the runner coalesces the writes.
 * - Registration follows the run: a run's service is asked for as it starts and its deregistration
 *   asked for as soon as it ends, whether or not the registration has answered yet. The registry
 *   applies calls in the order they are made (UnitRegistry), so nothing acts on a late answer: a
 *   registration can take a second to answer (a catalog write on a loaded cluster), and by then
 *   the unit may be registered again for its next run, under the same service id.
 */

import type { Assignment, UnitStateRecord } from '../../scheduler/records.ts'
import type { Registration, UnitFile } from '../../scheduler/unit-file.ts'
import { parseUnitFile } from '../../scheduler/unit-file.ts'
import type { UnitCommand } from '../../scheduler/unit-values.ts'
import type { Clock } from '../checks/runner.ts'
import type { UnitJournal } from './journal.ts'
import type { RunnerLimits } from './limits.ts'
import type { PidFile } from './pid-file.ts'
import { killGroup } from './pid-file.ts'
import { type Exit, spawnCommand } from './spawn.ts'
import type { UnitEnvironmentSource } from './unit-environment.ts'
import { type Launch, resolveLaunch } from './unit-environment.ts'

/**
 * What a unit needs from the agent's local registry (LocalRegistry implements it). Calls take
 * effect in the order they are made, whenever they answer: LocalRegistry commits them one at a
 * time in call order, and answers a registration only after its catalog write.
 */
export interface UnitRegistry {
  registerService(
    body: unknown,
    options: { replaceExistingChecks: boolean; firstCheckDelayMs?: number },
  ): Promise<void>
  deregisterService(id: string): Promise<boolean>
  checks(): ReadonlyArray<{ ServiceID: string; Status: string }>
  /** Called with the service id when one of its checks changes status; returns the unsubscribe. */
  onServiceCheckChange?(listener: (serviceId: string) => void): () => void
}

export interface UnitContext {
  node: string
  journal: UnitJournal
  pids: PidFile
  registry: UnitRegistry | undefined
  limits: RunnerLimits
  /** Timers (restart delays, stop timeouts, health polls); monotonic now. */
  clock: Clock
  /** ms since the epoch, for journal lines and sinceMs. */
  wallClock: () => number
  setpriv: string | undefined
  environment: UnitEnvironmentSource
  onState: (unit: ManagedUnit) => void
  log: { warn(obj: object, msg: string): void }
}

type State = Omit<UnitStateRecord, 'unit' | 'machine'>

interface Run {
  readonly hash: string
  /** The file it runs (its ExecStop and TimeoutStopSec stop it, whatever the assignment is now). */
  readonly file: UnitFile
  readonly pid: number
  readonly startedMs: number
  readonly exited: Promise<Exit>
  stopping: boolean
}

export class ManagedUnit {
  readonly name: string
  readonly #ctx: UnitContext
  #assignment: Assignment | undefined
  #file: UnitFile | undefined
  #parseError: string | undefined
  /** Past unitsMax: known and reported, never run. */
  #refused: string | undefined
  #fenced = false
  #shutdown = false
  #held = false
  #run: Run | undefined
  /** Process groups of commands other than the main one (ExecStartPre, ExecStop) now running. */
  readonly #helpers = new Set<number>()
  #restartTimer: unknown
  #restartDelayMs = 0
  #healthTimer: unknown
  /**
   * The run whose service registration was asked for last and not yet deregistered: the registry
   * holds one service per unit (its id is the unit's name), and this is whose it is.
   */
  #registeredRun: Run | undefined
  #state: State
  #looping: Promise<void> | undefined
  #again = false

  constructor(name: string, ctx: UnitContext, refused?: string) {
    this.name = name
    this.#ctx = ctx
    this.#refused = refused
    this.#state = {
      hash: '',
      loadState: 'loaded',
      activeState: 'inactive',
      subState: 'dead',
      restarts: 0,
      sinceMs: ctx.wallClock(),
    }
  }

  get assignment(): Assignment | undefined {
    return this.#assignment
  }

  get running(): boolean {
    return this.#run !== undefined
  }

  record(): UnitStateRecord {
    return { unit: this.name, machine: this.#ctx.node, ...this.#state }
  }

  /** A new or changed assignment, or undefined when the unit left this machine. */
  assign(assignment: Assignment | undefined): void {
    const before = this.#assignment
    this.#assignment = assignment
    if (assignment !== undefined && assignment.hash !== before?.hash) {
      this.#parse(assignment)
      this.#held = false
      this.#state.restarts = 0
      this.#restartDelayMs = 0
      this.#clearRestart()
      this.#setState({ hash: assignment.hash, ...this.#idleLoadState() })
    }
    if (assignment?.desiredState === 'launched' && before?.desiredState !== 'launched') this.#held = false
    this.#kick()
  }

  /** Fenced: SIGKILL everything now, start nothing until lifted. */
  setFenced(fenced: boolean): void {
    if (fenced === this.#fenced) return
    this.#fenced = fenced
    if (fenced) {
      this.#killAll()
      this.#clearRestart()
    } else {
      this.#held = false
    }
    this.#kick()
  }

  /** Stops gracefully (the agent is stopping); resolves when nothing of the unit runs. */
  shutdown(): Promise<void> {
    this.#shutdown = true
    this.#clearRestart()
    this.#kick()
    return this.idle()
  }

  /** SIGKILLs every process group of the unit at once (a stop that took too long, a fence). */
  #killAll(): void {
    if (this.#run !== undefined) {
      this.#run.stopping = true
      killGroup(this.#run.pid, 'SIGKILL')
    }
    for (const pgid of this.#helpers) killGroup(pgid, 'SIGKILL')
  }

  kill(): void {
    this.#shutdown = true
    this.#clearRestart()
    this.#killAll()
  }

  /** Resolves when no step is running or queued. */
  async idle(): Promise<void> {
    while (this.#looping !== undefined) await this.#looping
  }

  #parse(assignment: Assignment): void {
    this.#file = undefined
    this.#parseError = undefined
    try {
      this.#file = parseUnitFile(assignment.text, { name: assignment.unit })
    } catch (error) {
      this.#parseError = errorText(error)
    }
  }

  #idleLoadState(): Partial<State> {
    const problem = this.#refused ?? this.#parseError
    return problem === undefined
      ? { loadState: 'loaded', message: undefined }
      : { loadState: 'error', message: problem }
  }

  /** The file to run now, or undefined when nothing should run. */
  #wanted(): { hash: string; file: UnitFile } | undefined {
    const a = this.#assignment
    if (a === undefined || a.desiredState !== 'launched' || this.#file === undefined) return undefined
    if (this.#fenced || this.#shutdown || this.#refused !== undefined) return undefined
    return { hash: a.hash, file: this.#file }
  }

  #kick(): void {
    if (this.#looping !== undefined) {
      this.#again = true
      return
    }
    this.#looping = (async () => {
      do {
        this.#again = false
        try {
          await this.#step()
        } catch (error) {
          this.#ctx.log.warn({ unit: this.name, err: errorText(error) }, 'unit runner: step failed')
        }
      } while (this.#again)
      this.#looping = undefined
    })()
  }

  async #step(): Promise<void> {
    const run = this.#run
    const want = this.#wanted()
    if (run !== undefined && (want === undefined || want.hash !== run.hash)) {
      await this.#stop(run, want === undefined && this.#fenced)
      this.#again = true
      return
    }
    if (want !== undefined && run === undefined && this.#restartTimer === undefined && !this.#held) {
      await this.#start(want.hash, want.file)
    }
  }

  // ---- start ----

  async #start(hash: string, file: UnitFile): Promise<void> {
    const ctx = this.#ctx
    const service = file.service
    let launch: Launch
    try {
      launch = await resolveLaunch(file, ctx.environment)
    } catch (error) {
      this.#failedToStart(hash, { code: null, signal: null }, errorText(error))
      return
    }
    if (this.#wanted()?.hash !== hash) return // fenced, stopped or replaced while reading files
    if (service.execStartPre.length > 0) this.#setState({ activeState: 'activating', subState: 'start-pre' })
    for (const command of service.execStartPre) {
      const exit = await this.#helper('ExecStartPre', command, launch, ctx.limits.startPreTimeoutMs)
      if (this.#wanted()?.hash !== hash) {
        this.#setState({ activeState: 'inactive', subState: 'dead', pid: undefined })
        return
      }
      if (!command.ignoreFailure && failedExit(exit)) {
        this.#failed(hash, exit, `ExecStartPre ${command.argv[0]} ${describeExit(exit)}`)
        return
      }
    }
    const argv = launch.argv(service.execStart)
    const spawned = spawnCommand(
      { argv, env: launch.env, cwd: launch.cwd, uid: launch.uid, gid: launch.gid },
      {
        setpriv: ctx.setpriv,
        lineBytesMax: ctx.limits.journalLineBytesMax,
        onLine: (s, t) => this.#line(s, t),
      },
    )
    if (spawned.pid === undefined) {
      const exit = await spawned.exited
      this.#failedToStart(hash, exit, `ExecStart ${argv[0]}: ${exit.error ?? 'did not start'}`)
      return
    }
    const run: Run = {
      hash,
      file,
      pid: spawned.pid,
      startedMs: ctx.clock.now(),
      exited: spawned.exited,
      stopping: false,
    }
    this.#run = run
    void ctx.pids.add(this.name, run.pid).catch((error: unknown) => {
      ctx.log.warn({ unit: this.name, err: errorText(error) }, 'unit runner: pids.json not written')
    })
    this.#cairn(`started pid ${run.pid}`)
    this.#setState({ activeState: 'active', subState: 'running', pid: run.pid, message: undefined })
    void run.exited.then((exit) => this.#onExit(run, exit))
    if (file.registration !== undefined) void this.#register(run, file.registration)
  }

  /** Runs one helper command (ExecStartPre, ExecStop) to its end, killed after `timeoutMs` (null: never). */
  async #helper(what: string, command: UnitCommand, launch: Launch, timeoutMs: number | null): Promise<Exit> {
    const ctx = this.#ctx
    const argv = launch.argv(command)
    const spawned = spawnCommand(
      { argv, env: launch.env, cwd: launch.cwd, uid: launch.uid, gid: launch.gid },
      {
        setpriv: ctx.setpriv,
        lineBytesMax: ctx.limits.journalLineBytesMax,
        onLine: (s, t) => this.#line(s, t),
      },
    )
    const pid = spawned.pid
    if (pid === undefined) {
      const exit = await spawned.exited
      this.#cairn(`${what} ${argv[0]}: ${exit.error ?? 'did not start'}`)
      return exit
    }
    this.#helpers.add(pid)
    if (this.#fenced) killGroup(pid, 'SIGKILL')
    const timer =
      timeoutMs === null
        ? undefined
        : ctx.clock.setTimeout(() => {
            this.#cairn(`${what} ${argv[0]} timed out after ${timeoutMs} ms; killing it`)
            killGroup(pid, 'SIGKILL')
          }, timeoutMs)
    const exit = await spawned.exited
    if (timer !== undefined) ctx.clock.clearTimeout(timer)
    this.#helpers.delete(pid)
    if (failedExit(exit)) this.#cairn(`${what} ${argv[0]} ${describeExit(exit)}`)
    return exit
  }

  // ---- exit and restart ----

  #onExit(run: Run, exit: Exit): void {
    if (this.#run !== run) return
    void this.#ctx.pids.remove(run.pid).catch(() => {})
    this.#cairn(describeExit(exit))
    if (run.stopping) return // #stop finishes the story
    this.#run = undefined
    void this.#deregister()
    const service = run.file.service
    const failure = failedExit(exit)
    const restart = service.restart === 'always' || (service.restart === 'on-failure' && failure)
    if (!restart || this.#wanted()?.hash !== run.hash) {
      if (failure) this.#failed(run.hash, exit, describeExit(exit))
      else {
        this.#held = true
        this.#setState({ ...exitFields(exit), activeState: 'inactive', subState: 'dead', pid: undefined })
      }
      this.#kick()
      return
    }
    const ranMs = this.#ctx.clock.now() - run.startedMs
    const limits = this.#ctx.limits
    this.#restartDelayMs =
      this.#restartDelayMs === 0 || ranMs >= limits.restartResetAfterMs
        ? service.restartMs
        : Math.min(this.#restartDelayMs * 2, limits.restartDelayMsMax)
    const delayMs = this.#restartDelayMs
    this.#cairn(`restarting in ${delayMs} ms`)
    this.#setState({
      ...exitFields(exit),
      activeState: 'activating',
      subState: 'auto-restart',
      pid: undefined,
      restarts: this.#state.restarts + 1,
      message: `${describeExit(exit)}; restarting in ${delayMs} ms`,
    })
    this.#restartTimer = this.#ctx.clock.setTimeout(() => {
      this.#restartTimer = undefined
      this.#kick()
    }, delayMs)
  }

  /** A start that failed before a process ran: no exit line will say why, so the journal does. */
  #failedToStart(hash: string, exit: Exit, message: string): void {
    this.#cairn(message)
    this.#failed(hash, exit, message)
  }

  #failed(hash: string, exit: Exit, message: string): void {
    if (this.#state.hash !== hash) return
    this.#held = true
    this.#setState({
      ...exitFields(exit),
      activeState: 'failed',
      subState: 'failed',
      pid: undefined,
      message,
    })
  }

  #clearRestart(): void {
    if (this.#restartTimer === undefined) return
    this.#ctx.clock.clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    if (this.#state.subState === 'auto-restart') this.#setState({ activeState: 'inactive', subState: 'dead' })
  }

  // ---- stop ----

  /** ExecStop, SIGTERM to the group, SIGKILL after TimeoutStopSec; or SIGKILL at once (`now`). */
  async #stop(run: Run, now: boolean): Promise<void> {
    run.stopping = true
    const timeoutMs = run.file.service.timeoutStopMs
    if (now) killGroup(run.pid, 'SIGKILL')
    else await this.#gracefulStop(run, timeoutMs)
    const exit = await run.exited
    this.#run = undefined
    await this.#deregister()
    this.#cairn(now ? 'killed (the machine lease may have expired)' : 'stopped')
    this.#setState({
      ...exitFields(exit),
      activeState: 'inactive',
      subState: 'dead',
      pid: undefined,
      message: now ? 'fenced: the machine lease may have expired on the servers' : undefined,
    })
  }

  async #gracefulStop(run: Run, timeoutMs: number | null): Promise<void> {
    const file = run.file
    if (file.service.execStop.length > 0) {
      this.#setState({ activeState: 'deactivating', subState: 'stop' })
      try {
        const launch = await resolveLaunch(file, this.#ctx.environment, run.pid)
        for (const command of file.service.execStop) {
          if (await settledWithin(run.exited, 0, this.#ctx.clock)) break
          await this.#helper('ExecStop', command, launch, timeoutMs)
        }
      } catch (error) {
        this.#cairn(`ExecStop: ${errorText(error)}`)
      }
    }
    if (await settledWithin(run.exited, 0, this.#ctx.clock)) return
    this.#setState({ activeState: 'deactivating', subState: 'stop-sigterm' })
    killGroup(run.pid, 'SIGTERM')
    if (timeoutMs === null) return
    if (await settledWithin(run.exited, timeoutMs, this.#ctx.clock)) return
    this.#cairn(`still running ${timeoutMs} ms after SIGTERM (TimeoutStopSec); sending SIGKILL`)
    this.#setState({ activeState: 'deactivating', subState: 'stop-sigkill' })
    killGroup(run.pid, 'SIGKILL')
  }

  // ---- registration ----

  /** Asks for the run's service; its health is read once the registration has answered. */
  async #register(run: Run, registration: Registration): Promise<void> {
    const registry = this.#ctx.registry
    if (registry === undefined) return
    this.#registeredRun = run
    try {
      await registry.registerService(serviceBody(this.name, registration), {
        replaceExistingChecks: true,
        firstCheckDelayMs: this.#ctx.limits.checkFirstRunMs,
      })
    } catch (error) {
      this.#cairn(`registration of service ${registration.name} failed: ${errorText(error)}`)
      if (this.#run === run) this.#setState({ message: `registration failed: ${errorText(error)}` })
      return
    }
    // A run that ended meanwhile asked for its deregistration then, already applied after this
    // registration: nothing to undo here (the service may be the next run's by now).
    if (this.#run === run && this.#registeredRun === run && registration.check !== undefined) {
      this.#pollHealth(run)
    }
  }

  /** The registry reported a change of this unit's check: read it now instead of at the next poll. */
  checkChanged(): void {
    if (this.#healthTimer === undefined || this.#run === undefined) return
    this.#ctx.clock.clearTimeout(this.#healthTimer)
    this.#healthTimer = undefined
    this.#pollHealth(this.#run)
  }

  #pollHealth(run: Run): void {
    const read = (): void => {
      this.#healthTimer = undefined
      if (this.#run !== run || this.#registeredRun !== run) return
      const check = this.#ctx.registry?.checks().find((c) => c.ServiceID === this.name)
      const health = check?.Status
      if (
        (health === 'passing' || health === 'warning' || health === 'critical') &&
        health !== this.#state.health
      ) {
        this.#setState({ health })
      }
      this.#healthTimer = this.#ctx.clock.setTimeout(read, this.#ctx.limits.healthPollMs)
    }
    read()
  }

  /** The run ended: its service goes, even if its registration has not answered yet. */
  async #deregister(): Promise<void> {
    if (this.#healthTimer !== undefined) this.#ctx.clock.clearTimeout(this.#healthTimer)
    this.#healthTimer = undefined
    if (this.#state.health !== undefined) this.#setState({ health: undefined })
    if (this.#registeredRun === undefined) return
    this.#registeredRun = undefined
    await this.#ctx.registry?.deregisterService(this.name).catch((error: unknown) => {
      this.#cairn(`deregistration failed: ${errorText(error)}`)
    })
  }

  // ---- state and journal ----

  #setState(change: Partial<State>): void {
    const next = { ...this.#state, ...change }
    if (change.activeState !== undefined && change.activeState !== this.#state.activeState) {
      next.sinceMs = this.#ctx.wallClock()
    }
    if (next.message !== undefined) next.message = next.message.slice(0, this.#ctx.limits.messageCharsMax)
    for (const key of Object.keys(next) as (keyof State)[]) if (next[key] === undefined) delete next[key]
    this.#state = next
    this.#ctx.onState(this)
  }

  #line(stream: 'stdout' | 'stderr', text: string): void {
    this.#ctx.journal.append({ ts: this.#ctx.wallClock(), stream, text })
  }

  #cairn(text: string): void {
    this.#ctx.journal.append({ ts: this.#ctx.wallClock(), stream: 'cairn', text })
  }
}

/** The Consul registration body (PUT /v1/agent/service/register) of a unit's declared service. */
export function serviceBody(unit: string, r: Registration): Record<string, unknown> {
  const body: Record<string, unknown> = { ID: unit, Name: r.name, Tags: [...r.tags] }
  if (r.port !== 0) body.Port = r.port
  if (r.check !== undefined) {
    body.Check = {
      ...(r.check.http !== undefined ? { HTTP: r.check.http } : { TCP: r.check.tcp }),
      Interval: `${r.check.intervalMs}ms`,
      Timeout: `${r.check.timeoutMs}ms`,
    }
  }
  return body
}

function failedExit(exit: Exit): boolean {
  return exit.code !== 0 || exit.signal !== null || exit.error !== undefined
}

function describeExit(exit: Exit): string {
  if (exit.error !== undefined) return `failed to start: ${exit.error}`
  if (exit.signal !== null) return `killed by signal ${exit.signal}`
  return `exited with code ${exit.code}`
}

function exitFields(exit: Exit): Partial<State> {
  return { exitCode: exit.code, exitSignal: exit.signal }
}

/** Whether `promise` settles within `ms` (0: already settled, checked after one macrotask). */
async function settledWithin(promise: Promise<unknown>, ms: number, clock: Clock): Promise<boolean> {
  let timer: unknown
  const timeout = new Promise<false>((resolve) => {
    timer = clock.setTimeout(() => resolve(false), ms)
  })
  const done = await Promise.race([promise.then(() => true as const), timeout])
  clock.clearTimeout(timer)
  return done
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
