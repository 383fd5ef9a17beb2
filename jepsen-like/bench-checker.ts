/**
 * How long the checkers take on large histories: `npx tsx jepsen-like/bench-checker.ts`.
 * Register histories come from the seeded simulator (10 clients); each shape is checked valid as
 * simulated and invalid with one ok read in the middle changed to a value never written (the
 * search must then exhaust every alternative). Each row is the median of `repetitions` runs
 * (wall clock, this process, no warm-up beyond the first shape). Not a test: timings are printed,
 * never asserted.
 */
import type { Checker, CheckResult } from './checkers/checker.ts'
import { registerChecker } from './checkers/register.ts'
import { setChecker } from './checkers/set.ts'
import { simulateRegister } from './checkers/simulate-register.ts'
import { watchChecker } from './checkers/watch.ts'
import type { Op, WatchEvent } from './history.ts'

const repetitions = 3
const timeBudgetMs = 120_000

function timed(checker: Checker, history: readonly Op[]): { ms: number; result: CheckResult } {
  const times: number[] = []
  let result: CheckResult | undefined
  for (let i = 0; i < repetitions; i++) {
    const start = performance.now()
    result = checker.check(history, { timeBudgetMs })
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return { ms: times[Math.floor(times.length / 2)]!, result: result! }
}

function withReadFromNowhere(history: readonly Op[]): Op[] {
  const reads = history.filter((op) => op.f === 'read' && op.type === 'ok')
  const target = reads[Math.floor(reads.length / 2)]!
  return history.map((op) => (op === target ? { ...op, value: 'nowhere' } : op))
}

function row(name: string, operations: number, checker: Checker, history: readonly Op[]): void {
  const { ms, result } = timed(checker, history)
  console.log(
    `${name.padEnd(44)} ${String(operations).padStart(6)} ops  ${ms.toFixed(0).padStart(6)} ms  ${result.verdict}`,
  )
}

function setHistory(adds: number): Op[] {
  const history: Op[] = []
  const push = (entry: Omit<Op, 'index'>): void => {
    history.push({ ...entry, index: history.length })
  }
  for (let i = 0; i < adds; i++) {
    push({ type: 'invoke', process: i % 10, f: 'add', key: 's', value: i, time: i })
    push({ type: i % 50 === 0 ? 'info' : 'ok', process: i % 10, f: 'add', key: 's', value: i, time: i + 0.5 })
  }
  const elements = Array.from({ length: adds }, (_, i) => i)
  push({ type: 'invoke', process: 10, f: 'read', key: 's', value: null, time: adds })
  push({ type: 'ok', process: 10, f: 'read', key: 's', value: elements, time: adds + 1 })
  return history
}

function watchHistory(events: number, watchers: number): Op[] {
  const history: Op[] = []
  const push = (entry: Omit<Op, 'index'>): void => {
    history.push({ ...entry, index: history.length })
  }
  const all: WatchEvent[] = []
  for (let i = 0; i < events; i++) {
    const key = `/k${i % 16}`
    push({ type: 'invoke', process: i % 10, f: 'write', key, value: `v${i}`, time: 2 * i })
    push({ type: 'ok', process: i % 10, f: 'write', key, value: null, time: 2 * i + 1 })
    all.push({ revision: i + 1, key, action: 'set', value: `v${i}` })
  }
  const end = 2 * events
  for (let w = 0; w < watchers; w++) {
    const fromRevision = 1 + Math.floor((w * events) / (2 * watchers))
    const process = 100 + w
    push({
      type: 'invoke',
      process,
      f: 'watch',
      value: { fromRevision, key: '/', recursive: true },
      time: end,
    })
    push({ type: 'ok', process, f: 'watch', value: all.slice(fromRevision - 1), time: end + 1 })
  }
  push({ type: 'invoke', process: 99, f: 'final', value: { fromRevision: 1 }, time: end + 2 })
  push({ type: 'ok', process: 99, f: 'final', value: all, time: end + 3 })
  return history
}

console.log(`median of ${repetitions} runs, node ${process.version}`)
for (const operations of [10_000, 50_000]) {
  for (const keys of [10, 1]) {
    const history = simulateRegister({ seed: 42, clients: 10, operations, keys })
    row(`register ${keys} key(s), 10 clients, 2% info`, operations, registerChecker, history)
    row(
      `register ${keys} key(s), ... one read from nowhere`,
      operations,
      registerChecker,
      withReadFromNowhere(history),
    )
  }
}
const busy = simulateRegister({ seed: 42, clients: 10, operations: 10_000, keys: 1, infoProbability: 0.1 })
row('register 1 key, 10 clients, 10% info', 10_000, registerChecker, busy)
row('set: 50,000 adds, one final read', 50_000, setChecker, setHistory(50_000))
row('watch: 10,000 events, 10 watchers', 10_000, watchChecker, watchHistory(10_000, 10))
