/**
 * Helpers shared by the checks' tests (not a test file itself): a recorder of status changes that
 * can wait for a change with a deadline, a manual clock, and a process liveness probe. Nothing here
 * sleeps for a fixed time: waits end on an event or fail at their deadline.
 */
import { readFileSync } from 'node:fs'
import { type CheckDefinition, type ParseCheckOptions, parseCheckDefinition } from './definition.ts'
import { type CheckChange, CheckRunner, type CheckRunnerOptions, type Clock } from './runner.ts'

/** Collects changes; `next(pred)` resolves with the first change (past or future) matching pred. */
export class ChangeRecorder {
  readonly changes: CheckChange[] = []
  #seen = 0
  #waiters: { pred: (c: CheckChange) => boolean; resolve: (c: CheckChange) => void }[] = []

  readonly onChange = (change: CheckChange): void => {
    this.changes.push(change)
    for (const waiter of [...this.#waiters]) {
      if (waiter.pred(change)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        this.#seen = this.changes.length
        waiter.resolve(change)
      }
    }
  }

  /** The first change not yet consumed that matches `pred`; fails after `deadlineMs`. */
  next(pred: (c: CheckChange) => boolean = () => true, deadlineMs = 5_000): Promise<CheckChange> {
    for (let i = this.#seen; i < this.changes.length; i++) {
      const change = this.changes[i]!
      if (pred(change)) {
        this.#seen = i + 1
        return Promise.resolve(change)
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(new Error(`no matching change within ${deadlineMs} ms; saw ${JSON.stringify(this.changes)}`))
      }, deadlineMs)
      const waiter = {
        pred,
        resolve: (c: CheckChange) => {
          clearTimeout(timer)
          resolve(c)
        },
      }
      this.#waiters.push(waiter)
    })
  }

  status(status: string, deadlineMs?: number): Promise<CheckChange> {
    return this.next((c) => c.status === status, deadlineMs)
  }
}

/** Parses `input` with test-friendly options (intervals down to 10 ms, scripts enabled). */
export function define(input: Record<string, unknown>, options: ParseCheckOptions = {}): CheckDefinition {
  return parseCheckDefinition(input, { intervalMsMin: 10, enableScriptChecks: true, ...options }).definition
}

/** A started runner with no first-run stagger, and its recorder. */
export function startRunner(
  input: Record<string, unknown>,
  options: Partial<CheckRunnerOptions> = {},
): { runner: CheckRunner; recorder: ChangeRecorder } {
  const recorder = new ChangeRecorder()
  const runner = new CheckRunner(define(input), {
    onChange: recorder.onChange,
    firstRunDelayMs: 0,
    ...options,
  })
  runner.start()
  return { runner, recorder }
}

/** Polls `pred` every few ms until true; fails after `deadlineMs`. For state with no event. */
export async function eventually(pred: () => boolean, what: string, deadlineMs = 5_000): Promise<void> {
  const start = Date.now()
  while (!pred()) {
    if (Date.now() - start > deadlineMs) throw new Error(`not true within ${deadlineMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Whether `pid` names a live process (a zombie waiting to be reaped counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** A clock the test drives: timers fire only inside advance(). */
export class ManualClock implements Clock {
  nowMs = 1_000
  #nextId = 1
  #timers = new Map<number, { atMs: number; fn: () => void }>()

  now(): number {
    return this.nowMs
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++
    this.#timers.set(id, { atMs: this.nowMs + ms, fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number)
  }

  get pendingTimers(): number {
    return this.#timers.size
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const targetMs = this.nowMs + ms
    for (;;) {
      await settle()
      let due: [number, { atMs: number; fn: () => void }] | undefined
      for (const entry of this.#timers) {
        if (entry[1].atMs <= targetMs && (due === undefined || entry[1].atMs < due[1].atMs)) due = entry
      }
      if (due === undefined) break
      this.#timers.delete(due[0])
      this.nowMs = Math.max(this.nowMs, due[1].atMs)
      due[1].fn()
    }
    this.nowMs = targetMs
    await settle()
  }
}

/** Lets pending promise callbacks run (one macrotask turn). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
