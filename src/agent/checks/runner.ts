/**
 * CheckRunner: runs one health check for the agent that owns its service, and tells the owner when
 * the check's (status, output) changes. Not wired to the HTTP API or the catalog yet (issue 5).
 *
 * HTTP, TCP and script checks probe every Interval (the first run after a stagger in
 * [0, Interval), as Consul spreads checks); a run never overlaps the previous one, and the next
 * starts Interval after the previous started, or at once if it ran longer. TTL checks do not
 * probe: they turn critical when no pass/warn/fail/update arrives within TTL.
 *
 * Invariants:
 * - `onChange` is called only when status or output differs from the last state reported (or
 *   from the initial state, which is not reported: the definition's Status with empty output, or
 *   the `initial` state the owner restored).
 * - `criticalSinceMs` is defined exactly when the status is critical: the clock time at which it
 *   became critical (construction time if it starts critical). The owner deregisters the service
 *   once `criticalForMs()` reaches DeregisterCriticalServiceAfter.
 * - Hysteresis, as Consul's StatusHandler: a passing or warning result counts a success and
 *   clears the failure count, a critical one the reverse; a result is applied only once its count
 *   reaches SuccessBeforePassing (resp. FailuresBeforeCritical). A threshold of 0 or 1 applies
 *   every result. TTL updates are applied as they come.
 * - After stop() resolves, nothing of this check runs: no timer, no request, no socket, no child;
 *   results that arrive while stopping are dropped and onChange is not called again.
 * - The runner never throws because of what a remote end did; a probe failure is a critical result.
 */

import { formatDurationMs } from '../../catalog/durations.ts'
import { CairnError } from '../../errors.ts'
import { type CheckDefinition, type CheckStatus, checkStatuses } from './definition.ts'
import { createHttpProbe } from './http-probe.ts'
import { capText } from './output.ts'
import { errorText, type Probe, type ProbeHandle, type ProbeResult } from './probe.ts'
import { createScriptProbe } from './script-probe.ts'
import { createTcpProbe } from './tcp-probe.ts'

export interface CheckState {
  readonly status: CheckStatus
  readonly output: string
  readonly criticalSinceMs: number | undefined
}

export interface CheckChange extends CheckState {
  readonly checkId: string
  readonly previousStatus: CheckStatus
}

/** Time, injectable so tests can drive timers; the default is the process's monotonic clock. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface CheckRunnerOptions {
  onChange: (change: CheckChange) => void
  clock?: Clock
  /** Replaces the kind's own probe (tests of scheduling and hysteresis). */
  probe?: Probe
  /** Delay before the first run of an interval check; default a random stagger in [0, Interval). */
  firstRunDelayMs?: number
  /**
   * The state to start from instead of the definition's Status with empty output: a TTL check's
   * last status restored after an agent restart (ttl-check-state.ts). Not reported.
   */
  initial?: { status: CheckStatus; output: string }
}

export class CheckRunner {
  readonly definition: CheckDefinition
  readonly #onChange: (change: CheckChange) => void
  readonly #clock: Clock
  readonly #handle: ProbeHandle | undefined
  readonly #firstRunDelayMs: number | undefined
  #status: CheckStatus
  #output = ''
  #criticalSinceMs: number | undefined
  #successes = 0
  #failures = 0
  #phase: 'new' | 'running' | 'stopped' = 'new'
  #timer: unknown
  #inFlight: { controller: AbortController; done: Promise<void> } | undefined

  constructor(definition: CheckDefinition, options: CheckRunnerOptions) {
    this.definition = definition
    this.#onChange = options.onChange
    this.#clock = options.clock ?? systemClock
    this.#firstRunDelayMs = options.firstRunDelayMs
    this.#status = options.initial?.status ?? definition.status
    this.#output = options.initial?.output ?? ''
    if (this.#status === 'critical') this.#criticalSinceMs = this.#clock.now()
    const probe = options.probe
    this.#handle = probe !== undefined ? { probe, close: async () => {} } : createProbeHandle(definition)
  }

  get state(): CheckState {
    return { status: this.#status, output: this.#output, criticalSinceMs: this.#criticalSinceMs }
  }

  get running(): boolean {
    return this.#phase === 'running'
  }

  /** How long the check has been critical, 0 if it is not. */
  criticalForMs(): number {
    return this.#criticalSinceMs === undefined ? 0 : this.#clock.now() - this.#criticalSinceMs
  }

  start(): void {
    if (this.#phase !== 'new')
      throw new Error(`CheckRunner.start: check ${this.definition.id} is ${this.#phase}`)
    this.#phase = 'running'
    if (this.definition.kind === 'ttl') {
      this.#armTtl()
      return
    }
    const delayMs = this.#firstRunDelayMs ?? Math.random() * this.definition.intervalMs
    this.#schedule(delayMs)
  }

  /** Stops the check: cancels timers, aborts a run in flight and waits for it to end. Idempotent. */
  async stop(): Promise<void> {
    this.#phase = 'stopped'
    this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    const inFlight = this.#inFlight
    inFlight?.controller.abort()
    await inFlight?.done
    await this.#handle?.close()
  }

  /**
   * A TTL check's pass/warn/fail/update: sets the status and output and restarts the TTL clock.
   * Throws CHECK_NOT_TTL for other kinds and CHECK_INVALID for an unknown status. Returns false,
   * changing nothing, once the runner is stopped.
   */
  updateTtl(status: string, output = ''): boolean {
    if (this.definition.kind !== 'ttl') throw new CairnError('CHECK_NOT_TTL', `check ${this.definition.id}`)
    if (!checkStatuses.includes(status as CheckStatus)) {
      throw new CairnError(
        'CHECK_INVALID',
        `Status: expected passing, warning or critical, got ${JSON.stringify(status)}`,
      )
    }
    if (this.#phase === 'stopped') return false
    this.#apply(status as CheckStatus, capText(output, this.definition.outputBytesMax))
    if (this.#phase === 'running') this.#armTtl()
    return true
  }

  #armTtl(): void {
    if (this.definition.kind !== 'ttl') return
    this.#clock.clearTimeout(this.#timer)
    const ttlMs = this.definition.ttlMs
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      if (this.#phase !== 'running') return
      const last = this.#output === '' ? '' : ` (last output before it expired: ${this.#output})`
      const output = `TTL expired: no update within ${formatDurationMs(ttlMs)}${last}`
      this.#apply('critical', capText(output, this.definition.outputBytesMax))
    }, ttlMs)
  }

  #schedule(delayMs: number): void {
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined
        if (this.#phase === 'running') this.#runOnce()
      },
      Math.max(0, delayMs),
    )
  }

  #runOnce(): void {
    const handle = this.#handle
    if (handle === undefined || this.definition.kind === 'ttl') return
    const intervalMs = this.definition.intervalMs
    const startedMs = this.#clock.now()
    const controller = new AbortController()
    const done = safeProbe(handle.probe, controller.signal).then((result) => {
      this.#inFlight = undefined
      // Re-read the phase after the await: stop() may have been called while the probe ran.
      if (this.#phase !== 'running') return
      this.#record(result)
      this.#schedule(intervalMs - (this.#clock.now() - startedMs))
    })
    this.#inFlight = { controller, done }
  }

  #record(result: ProbeResult): void {
    if (this.definition.kind === 'ttl') return
    if (result.status === 'critical') {
      this.#failures++
      this.#successes = 0
      if (this.#failures >= this.definition.failuresBeforeCritical) this.#apply(result.status, result.output)
    } else {
      this.#successes++
      this.#failures = 0
      if (this.#successes >= this.definition.successBeforePassing) this.#apply(result.status, result.output)
    }
  }

  #apply(status: CheckStatus, output: string): void {
    if (status === this.#status && output === this.#output) return
    const previousStatus = this.#status
    this.#status = status
    this.#output = output
    if (status !== 'critical') this.#criticalSinceMs = undefined
    else if (previousStatus !== 'critical') this.#criticalSinceMs = this.#clock.now()
    this.#onChange({ checkId: this.definition.id, previousStatus, ...this.state })
  }
}

function createProbeHandle(definition: CheckDefinition): ProbeHandle | undefined {
  switch (definition.kind) {
    case 'http':
      return createHttpProbe(definition, definition.outputBytesMax)
    case 'tcp':
      return createTcpProbe(definition, definition.outputBytesMax)
    case 'script':
      return createScriptProbe(definition, definition.outputBytesMax)
    case 'ttl':
      return undefined
  }
}

/** A probe that breaks its contract (rejects) still yields a critical result, never a throw. */
async function safeProbe(probe: Probe, signal: AbortSignal): Promise<ProbeResult> {
  try {
    return await probe(signal)
  } catch (error) {
    return { status: 'critical', output: `check failed: ${errorText(error)}` }
  }
}
