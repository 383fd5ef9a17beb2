/**
 * Proves the leader's per-follower state machine: which rejections are stale, where the next probe
 * goes (fast backtracking hint), when sending pauses in each state, and how state changes reset the
 * in-flight window.
 */
import { describe, expect, it } from 'vitest'
import { Progress } from './progress.ts'
import { titled } from './test-cluster.ts'

function progress(options: { match: number; next: number; state?: 'probe' | 'replicate' }): Progress {
  const pr = new Progress(options.next, false, 4)
  pr.match = options.match
  if (options.state === 'replicate') {
    pr.becomeReplicate()
    pr.next = options.next
  }
  return pr
}

describe('Progress.maybeDecrTo', () => {
  it.each(
    titled(
      [
        {
          name: 'replicate: a rejection at or below match is stale',
          state: 'replicate',
          match: 5,
          next: 9,
          rejected: 5,
          hint: 0,
          changed: false,
          nextAfter: 9,
        },
        {
          name: 'replicate: a fresh rejection falls back to match + 1 (the hint is for probing)',
          state: 'replicate',
          match: 5,
          next: 9,
          rejected: 8,
          hint: 2,
          changed: true,
          nextAfter: 6,
        },
        {
          name: 'probe: a rejection of anything but next - 1 is stale',
          state: 'probe',
          match: 0,
          next: 10,
          rejected: 7,
          hint: 3,
          changed: false,
          nextAfter: 10,
        },
        {
          name: 'probe: jumps to hint + 1',
          state: 'probe',
          match: 0,
          next: 10,
          rejected: 9,
          hint: 3,
          changed: true,
          nextAfter: 4,
        },
        {
          name: 'probe: never jumps past the rejected index',
          state: 'probe',
          match: 0,
          next: 10,
          rejected: 9,
          hint: 20,
          changed: true,
          nextAfter: 9,
        },
        {
          name: 'probe: never goes below match + 1',
          state: 'probe',
          match: 4,
          next: 10,
          rejected: 9,
          hint: 1,
          changed: true,
          nextAfter: 5,
        },
      ] as const,
      (c) => `${c.name}`,
    ),
  )('%s', (_, c) => {
    const pr = progress(c)
    pr.probeSent = true
    expect(pr.maybeDecrTo(c.rejected, c.hint)).toBe(c.changed)
    expect(pr.next).toBe(c.nextAfter)
    if (c.changed && c.state === 'probe') expect(pr.probeSent).toBe(false)
  })
})

describe('Progress.maybeUpdate', () => {
  it('moves match and next forward only, and unpauses a probe', () => {
    const pr = progress({ match: 2, next: 3 })
    pr.probeSent = true
    expect(pr.maybeUpdate(5)).toBe(true)
    expect([pr.match, pr.next, pr.probeSent]).toEqual([5, 6, false])
    expect(pr.maybeUpdate(4)).toBe(false)
    expect([pr.match, pr.next]).toEqual([5, 6])
  })
})

describe('Progress pausing', () => {
  it('probe: one append, then paused until an answer', () => {
    const pr = progress({ match: 0, next: 4 })
    expect(pr.isPaused()).toBe(false)
    pr.sentEntries(2, 100, 5)
    expect(pr.isPaused()).toBe(true)
    expect(pr.next).toBe(4) // probing does not move next optimistically
  })

  it('replicate: next moves ahead on send, paused once the window is full', () => {
    const pr = progress({ match: 3, next: 4, state: 'replicate' })
    for (let last = 4; last < 8; last++) {
      expect(pr.isPaused()).toBe(false)
      pr.sentEntries(1, 10, last)
    }
    expect([pr.next, pr.inflights.count, pr.isPaused()]).toEqual([8, 4, true])
    pr.sentEntries(0, 0, 7) // an empty append takes no slot
    expect(pr.inflights.count).toBe(4)
  })

  it('snapshot: always paused; back to probe resumes after the snapshot', () => {
    const pr = progress({ match: 2, next: 3 })
    pr.becomeSnapshot(50)
    expect(pr.isPaused()).toBe(true)
    pr.becomeProbe()
    expect([pr.state, pr.next, pr.pendingSnapshot]).toEqual(['probe', 51, 0])
  })

  it('every state change empties the in-flight window', () => {
    const pr = progress({ match: 3, next: 4, state: 'replicate' })
    pr.sentEntries(1, 10, 4)
    pr.becomeProbe()
    expect([pr.inflights.count, pr.next]).toEqual([0, 4])
  })
})
