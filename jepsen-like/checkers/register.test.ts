/**
 * The register checker judges linearizability of per-key read/write/cas histories correctly:
 *   - tiny hand-written histories, good and bad (stale read, lost write, read from nowhere, a cas
 *     that succeeded against the wrong value, an info write taking effect late, the closed-interval
 *     rule), with the culprit pointing at the right operation;
 *   - on small random histories (some mutated) it agrees with a naive search over every order;
 *   - simulated histories of a real linearizable register are always valid, and one ok read changed
 *     to a value that cannot be current anywhere in its interval makes them invalid;
 *   - 10,000 operations with 10 clients are checked (verdict only: durations are in bench-checker.ts).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Op, pairOps, validateHistory } from '../history.ts'
import { buildHistory, invokeIndexOf, type OpSpec } from './history-builder.ts'
import { checkRegister } from './register.ts'
import { seededRandom, simulateRegister } from './simulate-register.ts'

const budget = { timeBudgetMs: 60_000 }

function judge(specs: OpSpec[]) {
  const history = buildHistory(specs)
  validateHistory(history)
  return { history, result: checkRegister(history, budget) }
}

const write = (
  process: number,
  value: string,
  call: number,
  ret?: number,
  type?: OpSpec['type'],
): OpSpec => ({
  process,
  f: 'write',
  key: 'x',
  value,
  call,
  ...(ret === undefined ? {} : { ret }),
  ...(type === undefined ? {} : { type }),
})
const read = (process: number, result: string | null, call: number, ret: number): OpSpec => ({
  process,
  f: 'read',
  key: 'x',
  value: null,
  call,
  ret,
  result,
})
const cas = (
  process: number,
  expected: string | null,
  next: string,
  call: number,
  ret?: number,
  type?: OpSpec['type'],
) => ({ ...write(process, '', call, ret, type), f: 'cas', value: [expected, next] }) satisfies OpSpec

describe('register checker: tiny histories', () => {
  it('a sequential write then read of it is valid', () => {
    expect(judge([write(0, 'a', 0, 1), read(1, 'a', 2, 3)]).result.verdict).toBe('valid')
  })

  it('a read concurrent with a write may see either value', () => {
    expect(judge([write(0, 'a', 0, 10), read(1, null, 1, 2), read(2, 'a', 3, 4)]).result.verdict).toBe(
      'valid',
    )
  })

  it('a stale read (the value before a completed write) is invalid, and the culprit is that read', () => {
    const stale = read(2, 'a', 4, 5)
    const w2 = write(1, 'b', 2, 3)
    const { history, result } = judge([write(0, 'a', 0, 1), w2, stale])
    expect(result.verdict).toBe('invalid')
    expect(result.culprit?.opIndexes[0]).toBe(invokeIndexOf(history, stale))
    expect(result.culprit?.opIndexes).toContain(invokeIndexOf(history, w2))
    expect(result.culprit?.window).toEqual({ start: 4, end: 5 })
    expect(result.summary).toContain('key x')
    expect(result.details).toMatchObject({
      invalidKeys: [{ key: 'x', prefixLength: 2, stateAfterPrefix: 'b' }],
    })
  })

  it('a lost write (acknowledged, then the key reads absent) is invalid', () => {
    expect(judge([write(0, 'a', 0, 1), read(1, null, 2, 3)]).result.verdict).toBe('invalid')
  })

  it('a read of a value nobody wrote is invalid', () => {
    expect(judge([write(0, 'a', 0, 1), read(1, 'zz', 2, 3)]).result.verdict).toBe('invalid')
  })

  it('a read of a value whose write failed is invalid (fail: it did not happen)', () => {
    expect(judge([write(0, 'a', 0, 1, 'fail'), read(1, 'a', 2, 3)]).result.verdict).toBe('invalid')
  })

  it('a cas that succeeded against a value already overwritten is invalid', () => {
    const late = cas(2, 'a', 'c', 4, 5)
    const { history, result } = judge([write(0, 'a', 0, 1), write(1, 'b', 2, 3), late])
    expect(result.verdict).toBe('invalid')
    expect(result.culprit?.opIndexes[0]).toBe(invokeIndexOf(history, late))
  })

  it('a cas chain is valid, and a failed cas is ignored whatever the state', () => {
    const specs = [
      write(0, 'a', 0, 1),
      cas(1, 'a', 'b', 2, 3),
      cas(2, 'zz', 'c', 4, 5, 'fail'),
      read(0, 'b', 6, 7),
    ]
    expect(judge(specs).result.verdict).toBe('valid')
  })

  it('an info write may take effect late, after later operations (valid)', () => {
    const specs = [write(0, 'a', 0, 1, 'info'), write(1, 'b', 2, 3), read(2, 'b', 4, 5), read(2, 'a', 6, 7)]
    expect(judge(specs).result.verdict).toBe('valid')
  })

  it('an info write never observed, and a write that never completed, are fine either way', () => {
    const specs = [write(0, 'a', 0, 1, 'info'), write(1, 'b', 2), read(2, null, 3, 4)]
    expect(judge(specs).result.verdict).toBe('valid')
  })

  it('an info write observed cannot take effect before its invocation', () => {
    const specs = [read(2, 'a', 0, 1), write(0, 'a', 2, 3, 'info')]
    expect(judge(specs).result.verdict).toBe('invalid')
  })

  it('an info read carries nothing, whatever value it recorded', () => {
    const specs = [write(0, 'a', 0, 1), { ...read(1, 'nonsense', 2, 3), type: 'info' as const }]
    expect(judge(specs).result.verdict).toBe('valid')
  })

  it('an info cas observed must have applied, so its compare must have matched', () => {
    const good = [write(0, 'a', 0, 1), cas(1, 'a', 'b', 2, 3, 'info'), read(2, 'b', 4, 5)]
    expect(judge(good).result.verdict).toBe('valid')
    const bad = [write(0, 'a', 0, 1), cas(1, 'zz', 'b', 2, 3, 'info'), read(2, 'b', 4, 5)]
    expect(judge(bad).result.verdict).toBe('invalid')
  })

  it('intervals are closed: a call at the same time as a return is concurrent with it', () => {
    expect(judge([write(0, 'a', 0, 5), read(1, null, 5, 6)]).result.verdict).toBe('valid')
    expect(judge([write(0, 'a', 0, 5), read(1, null, 6, 7)]).result.verdict).toBe('invalid')
  })

  it('keys are independent registers, and the invalid key is named', () => {
    const specs = [
      write(0, 'a', 0, 1),
      { ...read(1, null, 2, 3), key: 'y' },
      { ...read(2, null, 4, 5), key: 'x' },
    ]
    const { result } = judge(specs)
    expect(result.verdict).toBe('invalid')
    expect(result.details).toMatchObject({ keys: 2, invalidKeys: [{ key: 'x' }] })
  })

  it('an exhausted budget is unknown, never a hang', () => {
    const history = buildHistory([write(0, 'a', 0, 1), read(1, 'a', 2, 3)])
    const result = checkRegister(history, { timeBudgetMs: 0 })
    expect(result.verdict).toBe('unknown')
    expect(result.summary).toContain('time budget')
    const stepLimited = checkRegister(history, { timeBudgetMs: 60_000, limits: { stepsMax: 0 } })
    expect(stepLimited.verdict).toBe('unknown')
  })

  it('a malformed value is unknown with the op named', () => {
    const result = checkRegister(buildHistory([{ ...write(0, 'a', 0, 1), value: 42 }]), budget)
    expect(result.verdict).toBe('unknown')
    expect(result.summary).toContain('op 0')
  })

  it('an empty history is valid', () => {
    expect(checkRegister([], budget).verdict).toBe('valid')
  })
})

/** Every order of the operations that respects real time, tried one by one (tiny histories only). */
function naiveLinearizable(history: readonly Op[]): boolean {
  interface Step {
    call: number
    ret: number
    apply: (state: ReadonlyMap<string, string | null>) => Map<string, string | null> | undefined
  }
  const steps: Step[] = []
  for (const { invoke, complete } of pairOps(history)) {
    const outcome = complete?.type ?? 'info'
    if (outcome === 'fail' || (invoke.f === 'read' && outcome !== 'ok')) continue
    const key = invoke.key ?? ''
    const ret = outcome === 'ok' ? complete!.time : Number.POSITIVE_INFINITY
    const apply = (state: ReadonlyMap<string, string | null>) => {
      const current = state.get(key) ?? null
      const next = new Map(state)
      if (invoke.f === 'read') return complete!.value === current ? next : undefined
      if (invoke.f === 'write') return next.set(key, invoke.value as string)
      const [expected, swapped] = invoke.value as [string | null, string]
      if (current === expected) return next.set(key, swapped)
      return outcome === 'ok' ? undefined : next
    }
    steps.push({ call: invoke.time, ret, apply })
  }
  const search = (remaining: Step[], state: ReadonlyMap<string, string | null>): boolean => {
    if (remaining.length === 0) return true
    return remaining.some((candidate) => {
      if (remaining.some((other) => other.ret < candidate.call)) return false
      const next = candidate.apply(state)
      return (
        next !== undefined &&
        search(
          remaining.filter((other) => other !== candidate),
          next,
        )
      )
    })
  }
  return search(steps, new Map())
}

/** Replaces the value of one ok read (chosen by `pick`) with `value`. */
function withReadValue(history: readonly Op[], completionIndex: number, value: string | null): Op[] {
  return history.map((op) => (op.index === completionIndex ? { ...op, value } : op))
}

const smallSimulation = fc.record({
  seed: fc.integer(),
  clients: fc.integer({ min: 1, max: 4 }),
  operations: fc.integer({ min: 1, max: 8 }),
  keys: fc.integer({ min: 1, max: 2 }),
  infoProbability: fc.double({ min: 0, max: 0.4, noNaN: true }),
  casProbability: fc.double({ min: 0, max: 0.5, noNaN: true }),
  tieProbability: fc.double({ min: 0, max: 0.5, noNaN: true }),
})

describe('register checker: properties', () => {
  it('agrees with a naive search over every order on small, sometimes mutated, histories', () => {
    fc.assert(
      fc.property(smallSimulation, fc.integer(), fc.boolean(), (simulation, mutationSeed, mutate) => {
        let history = simulateRegister(simulation)
        const okReads = history.filter((op) => op.f === 'read' && op.type === 'ok')
        if (mutate && okReads.length > 0) {
          const random = seededRandom(mutationSeed)
          const written = history
            .filter((op) => op.type === 'invoke' && op.f === 'write')
            .map((op) => op.value)
          const choices = [null, 'nowhere', ...(written as string[])]
          const target = okReads[Math.floor(random() * okReads.length)]!
          history = withReadValue(history, target.index, choices[Math.floor(random() * choices.length)]!)
        }
        const expected = naiveLinearizable(history) ? 'valid' : 'invalid'
        expect(checkRegister(history, budget).verdict).toBe(expected)
      }),
      { numRuns: 300 },
    )
  })

  const simulation = fc.record({
    seed: fc.integer(),
    clients: fc.integer({ min: 1, max: 10 }),
    operations: fc.integer({ min: 1, max: 300 }),
    keys: fc.integer({ min: 1, max: 3 }),
    infoProbability: fc.double({ min: 0, max: 0.3, noNaN: true }),
    lateEffectProbability: fc.double({ min: 0, max: 1, noNaN: true }),
    tieProbability: fc.double({ min: 0, max: 0.5, noNaN: true }),
  })

  it('histories of a simulated linearizable register are always valid', () => {
    fc.assert(
      fc.property(simulation, (options) => {
        const history = simulateRegister(options)
        validateHistory(history)
        expect(checkRegister(history, budget).verdict).toBe('valid')
      }),
      { numRuns: 200 },
    )
  })

  it('one ok read changed to a value never current in its interval makes the history invalid', () => {
    fc.assert(
      fc.property(simulation, fc.nat(), fc.nat(), (options, readPick, valuePick) => {
        const history = simulateRegister(options)
        const candidates = impossibleReadValues(history)
        fc.pre(candidates.length > 0)
        const { completion, values } = candidates[readPick % candidates.length]!
        const value = values[valuePick % values.length]!
        const result = checkRegister(withReadValue(history, completion.index, value), budget)
        expect(result.verdict).toBe('invalid')
      }),
      { numRuns: 200 },
    )
  })
})

/**
 * For each ok read, values it certainly could not have returned, whatever the linearization:
 *   - a value nobody wrote;
 *   - a value whose only writer was invoked after the read returned (a read from the future);
 *   - null, once an ok write or cas of the key returned before the read was invoked (no deletes);
 *   - a value written by an ok op W, when an ok write/cas W' of the key was invoked after W
 *     returned and returned before the read was invoked (W' certainly overwrote it: stale).
 */
function impossibleReadValues(history: readonly Op[]): { completion: Op; values: (string | null)[] }[] {
  const pairs = pairOps(history)
  const out: { completion: Op; values: (string | null)[] }[] = []
  const writtenBy = (pair: (typeof pairs)[number]): string =>
    pair.invoke.f === 'write' ? (pair.invoke.value as string) : (pair.invoke.value as [unknown, string])[1]
  for (const readPair of pairs) {
    const completion = readPair.complete
    if (readPair.invoke.f !== 'read' || completion?.type !== 'ok') continue
    const key = readPair.invoke.key
    const writes = pairs.filter(
      (p) => p.invoke.key === key && p.invoke.f !== 'read' && p.complete?.type !== 'fail',
    )
    const okWrites = writes.filter((p) => p.complete?.type === 'ok')
    const values: (string | null)[] = ['never-written']
    for (const w of writes) {
      if (w.invoke.time > completion.time) values.push(writtenBy(w))
    }
    if (okWrites.some((w) => w.complete!.time < readPair.invoke.time)) values.push(null)
    for (const w of okWrites) {
      const overwritten = okWrites.some(
        (later) => later.invoke.time > w.complete!.time && later.complete!.time < readPair.invoke.time,
      )
      if (overwritten) values.push(writtenBy(w))
    }
    out.push({ completion, values })
  }
  return out
}

describe('register checker: 10,000 operations, 10 clients', () => {
  it('judges a simulated history over 10 keys valid', () => {
    const history = simulateRegister({ seed: 42, clients: 10, operations: 10_000, keys: 10 })
    expect(checkRegister(history, budget).verdict).toBe('valid')
  })

  it('judges a simulated history on one key valid, and the same with one read from nowhere invalid', () => {
    const history = simulateRegister({ seed: 43, clients: 10, operations: 10_000, keys: 1 })
    expect(checkRegister(history, budget).verdict).toBe('valid')
    const okReads = history.filter((op) => op.f === 'read' && op.type === 'ok')
    const target = okReads[Math.floor(okReads.length / 2)]!
    const result = checkRegister(withReadValue(history, target.index, 'nowhere'), budget)
    expect(result.verdict).toBe('invalid')
    const targetInvoke = pairOps(history).find((pair) => pair.complete === target)!.invoke
    expect(result.culprit?.opIndexes[0]).toBe(targetInvoke.index)
  })
})
