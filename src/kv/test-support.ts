/**
 * Helpers shared by the kv tests (not a test file itself): an in-process store on a fake clock,
 * and a way to capture the typed error a call raises.
 */
import { KvError } from './kv-error.ts'
import type { KvConfig } from './limits.ts'
import { LocalKvStore } from './local-kv-store.ts'
import { KvStateMachine } from './state-machine.ts'

/** 2023-11-14T22:13:20Z: a round, recent wall clock. */
export const testEpochMs = 1_700_000_000_000

export class FakeClock {
  nowMs = testEpochMs

  advance(ms: number): void {
    this.nowMs += ms
  }
}

export function newTestStore(config: Partial<KvConfig> = {}) {
  const clock = new FakeClock()
  const store = new LocalKvStore(new KvStateMachine(config), () => clock.nowMs)
  return { store, sm: store.stateMachine, clock }
}

/** The KvError `fn` throws (fails the test if it returns or throws something else). */
export function errorOf(fn: () => unknown): KvError {
  try {
    fn()
  } catch (error) {
    if (error instanceof KvError) return error
    throw error
  }
  throw new Error('expected a KvError, but the call succeeded')
}
