/**
 * Proves the runner's rules on a manual clock with scripted probe results: hysteresis
 * (SuccessBeforePassing / FailuresBeforeCritical as Consul's StatusHandler counts them), change
 * reports only when (status, output) changes, criticalSinceMs, scheduling without overlap, TTL
 * expiry and updates, and that stop() aborts the run in flight and leaves no timer behind.
 */
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../../errors.ts'
import type { CheckStatus } from './definition.ts'
import type { ProbeResult } from './probe.ts'
import { CheckRunner } from './runner.ts'
import { ChangeRecorder, define, ManualClock } from './test-helpers.ts'

/** A probe answering from a script of statuses, output `#n`-free unless given. */
function scripted(results: (CheckStatus | ProbeResult)[]) {
  let calls = 0
  const probe = async (): Promise<ProbeResult> => {
    const next = results[Math.min(calls, results.length - 1)]!
    calls++
    return typeof next === 'string' ? { status: next, output: next } : next
  }
  return { probe, calls: () => calls }
}

function setup(extra: Record<string, unknown>, results: (CheckStatus | ProbeResult)[]) {
  const clock = new ManualClock()
  const recorder = new ChangeRecorder()
  const { probe, calls } = scripted(results)
  const definition = define({ Name: 'c', TCP: 'h:1', Interval: '100ms', ...extra })
  const runner = new CheckRunner(definition, {
    onChange: recorder.onChange,
    clock,
    probe,
    firstRunDelayMs: 0,
  })
  return { clock, recorder, runner, calls }
}

const statuses = (recorder: ChangeRecorder) => recorder.changes.map((c) => c.status)

describe('hysteresis', () => {
  it('SuccessBeforePassing: critical until that many consecutive successes', async () => {
    const { clock, recorder, runner } = setup({ SuccessBeforePassing: 3 }, [
      'passing',
      'passing',
      'critical',
      'passing',
      'passing',
      'passing',
    ])
    runner.start()
    await clock.advance(0) // run 1
    await clock.advance(100) // run 2
    expect(runner.state.status).toBe('critical')
    await clock.advance(100) // run 3: critical resets the count (already critical: output changes)
    await clock.advance(200) // runs 4, 5
    expect(runner.state.status).toBe('critical')
    await clock.advance(100) // run 6: third success in a row
    expect(runner.state.status).toBe('passing')
    expect(statuses(recorder)).toEqual(['critical', 'passing'])
    await runner.stop()
  })

  it('FailuresBeforeCritical: stays passing until that many consecutive failures', async () => {
    const { clock, recorder, runner } = setup({ Status: 'passing', FailuresBeforeCritical: 2 }, [
      'critical',
      'passing',
      'critical',
      'critical',
    ])
    runner.start()
    await clock.advance(0)
    expect(runner.state.status).toBe('passing')
    await clock.advance(100) // passing resets the failure count
    await clock.advance(100) // one failure
    expect(runner.state.status).toBe('passing')
    await clock.advance(100) // second in a row
    expect(runner.state.status).toBe('critical')
    expect(statuses(recorder)).toEqual(['passing', 'critical'])
    await runner.stop()
  })

  it('a warning counts as a success; thresholds 0 and 1 apply every result', async () => {
    for (const threshold of [0, 1]) {
      const { clock, recorder, runner } = setup(
        { SuccessBeforePassing: threshold, FailuresBeforeCritical: threshold },
        ['warning', 'critical', 'passing'],
      )
      runner.start()
      await clock.advance(200)
      expect(statuses(recorder)).toEqual(['warning', 'critical', 'passing'])
      await runner.stop()
    }
  })
})

describe('change reports', () => {
  it('are made only when status or output changes', async () => {
    const { clock, recorder, runner } = setup({}, [
      'passing',
      'passing',
      { status: 'passing', output: 'other' },
      { status: 'passing', output: 'other' },
      { status: 'warning', output: 'other' },
    ])
    runner.start()
    await clock.advance(500)
    expect(recorder.changes.map((c) => [c.previousStatus, c.status, c.output])).toEqual([
      ['critical', 'passing', 'passing'],
      ['passing', 'passing', 'other'],
      ['passing', 'warning', 'other'],
    ])
    expect(recorder.changes.every((c) => c.checkId === 'c')).toBe(true)
    await runner.stop()
  })

  it('the initial state is not reported, and a first result equal to it is no change', async () => {
    const { clock, recorder, runner } = setup({ Status: 'passing' }, [{ status: 'passing', output: '' }])
    runner.start()
    await clock.advance(300)
    expect(recorder.changes).toEqual([])
    await runner.stop()
  })
})

describe('criticalSinceMs', () => {
  it('is set exactly while critical, from the moment it became critical', async () => {
    const { clock, runner } = setup({ FailuresBeforeCritical: 1 }, [
      'critical',
      'passing',
      'warning',
      'critical',
    ])
    const constructedMs = clock.now()
    expect(runner.state.criticalSinceMs).toBe(constructedMs)
    runner.start()
    await clock.advance(0)
    expect(runner.state.criticalSinceMs).toBe(constructedMs) // still critical: unchanged
    await clock.advance(100)
    expect(runner.state.criticalSinceMs).toBeUndefined()
    expect(runner.criticalForMs()).toBe(0)
    await clock.advance(200) // warning, then critical at +300
    expect(runner.state.criticalSinceMs).toBe(constructedMs + 300)
    await clock.advance(50)
    expect(runner.criticalForMs()).toBe(50)
    await runner.stop()
  })
})

describe('scheduling and stop', () => {
  it('runs every Interval, never overlapping a slow run', async () => {
    const clock = new ManualClock()
    let active = 0
    let maxActive = 0
    let calls = 0
    const releases: (() => void)[] = []
    const probe = (): Promise<ProbeResult> => {
      calls++
      active++
      maxActive = Math.max(maxActive, active)
      return new Promise((resolve) =>
        releases.push(() => {
          active--
          resolve({ status: 'passing', output: '' })
        }),
      )
    }
    const runner = new CheckRunner(define({ Name: 'c', TCP: 'h:1', Interval: '100ms' }), {
      onChange: () => {},
      clock,
      probe,
      firstRunDelayMs: 0,
    })
    runner.start()
    await clock.advance(1_000) // the first run hangs: no second one starts
    expect(calls).toBe(1)
    releases.shift()!() // it ended 1 s after it started, past its Interval: the next runs at once
    await clock.advance(0)
    expect(calls).toBe(2)
    releases.shift()!()
    await clock.advance(99)
    expect(calls).toBe(2)
    await clock.advance(1)
    expect(calls).toBe(3)
    expect(maxActive).toBe(1)
    releases.shift()!()
    await runner.stop()
  })

  it('stop aborts the run in flight, drops its result and leaves no timer', async () => {
    const clock = new ManualClock()
    const recorder = new ChangeRecorder()
    let seenSignal: AbortSignal | undefined
    let finish: (() => void) | undefined
    const probe = (signal: AbortSignal): Promise<ProbeResult> => {
      seenSignal = signal
      return new Promise((resolve) => {
        finish = () => resolve({ status: 'passing', output: 'late' })
        signal.addEventListener('abort', () => finish!())
      })
    }
    const runner = new CheckRunner(define({ Name: 'c', TCP: 'h:1', Interval: '100ms' }), {
      onChange: recorder.onChange,
      clock,
      probe,
      firstRunDelayMs: 0,
    })
    runner.start()
    await clock.advance(0)
    expect(seenSignal?.aborted).toBe(false)
    await runner.stop()
    expect(seenSignal?.aborted).toBe(true)
    expect(clock.pendingTimers).toBe(0)
    expect(runner.running).toBe(false)
    await clock.advance(10_000)
    expect(recorder.changes).toEqual([])
    expect(() => runner.start()).toThrow(/stopped/)
  })

  it('a probe that rejects gives a critical result, not a throw', async () => {
    const clock = new ManualClock()
    const recorder = new ChangeRecorder()
    const runner = new CheckRunner(define({ Name: 'c', TCP: 'h:1', Interval: '100ms', Status: 'passing' }), {
      onChange: recorder.onChange,
      clock,
      probe: () => Promise.reject(new Error('boom')),
      firstRunDelayMs: 0,
    })
    runner.start()
    await clock.advance(0)
    expect(runner.state).toMatchObject({ status: 'critical', output: 'check failed: boom' })
    await runner.stop()
  })

  it('the first run is staggered within the Interval by default', async () => {
    const clock = new ManualClock()
    const { probe, calls } = scripted(['passing'])
    const runner = new CheckRunner(define({ Name: 'c', TCP: 'h:1', Interval: '100ms' }), {
      onChange: () => {},
      clock,
      probe,
    })
    runner.start()
    await clock.advance(100)
    expect(calls()).toBe(1)
    await runner.stop()
  })
})

describe('TTL checks', () => {
  function ttlSetup(extra: Record<string, unknown> = {}) {
    const clock = new ManualClock()
    const recorder = new ChangeRecorder()
    const runner = new CheckRunner(define({ Name: 't', TTL: '1s', ...extra }), {
      onChange: recorder.onChange,
      clock,
    })
    return { clock, recorder, runner }
  }

  it('pass/warn/fail set the status and restart the TTL; silence turns it critical', async () => {
    const { clock, recorder, runner } = ttlSetup()
    runner.start()
    expect(runner.updateTtl('passing', 'ok')).toBe(true)
    await clock.advance(900)
    runner.updateTtl('warning', 'slow')
    await clock.advance(900) // 1.8 s after start, 0.9 s after the last update
    expect(runner.state.status).toBe('warning')
    await clock.advance(100)
    expect(runner.state).toMatchObject({
      status: 'critical',
      output: 'TTL expired: no update within 1s (last output before it expired: slow)',
    })
    runner.updateTtl('critical', 'down')
    runner.updateTtl('passing')
    expect(statuses(recorder)).toEqual(['passing', 'warning', 'critical', 'critical', 'passing'])
    await runner.stop()
    expect(clock.pendingTimers).toBe(0)
    expect(runner.updateTtl('passing', 'after stop')).toBe(false)
    expect(runner.state.output).toBe('')
  })

  it('expires from start when never updated, and caps the note at OutputMaxSize', async () => {
    const { clock, runner } = ttlSetup({ OutputMaxSize: 10 })
    runner.start()
    runner.updateTtl('passing', 'x'.repeat(100))
    expect(runner.state.output).toBe('x'.repeat(10))
    await clock.advance(1000)
    expect(runner.state.status).toBe('critical')
    expect(Buffer.byteLength(runner.state.output)).toBeLessThanOrEqual(10)
    await runner.stop()
  })

  it('refuses an unknown status and updates of non-TTL checks', async () => {
    const { runner } = ttlSetup()
    let error: unknown
    try {
      runner.updateTtl('ok')
    } catch (e) {
      error = e
    }
    expect(isCairnError(error, 'CHECK_INVALID')).toBe(true)
    const tcp = new CheckRunner(define({ Name: 'c', TCP: 'h:1', Interval: '1s' }), { onChange: () => {} })
    try {
      tcp.updateTtl('passing')
    } catch (e) {
      error = e
    }
    expect(isCairnError(error, 'CHECK_NOT_TTL')).toBe(true)
    await tcp.stop()
  })
})
