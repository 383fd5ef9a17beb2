/**
 * Proves the pure parts of sessions.ts: the lock-delay table (deadlines, expiry, the 60 s cap, and
 * its bound: past keysMax, expired entries go first, then the oldest), and the create-request
 * parser's defaults and Consul fix-ups (LockDelay below 1000 is seconds, Checks replaces the
 * default serfHealth, a zero TTL is none).
 */
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../../errors.ts'
import { LockDelays, lockDelayMsMax, parseSessionRequest } from './sessions.ts'

describe('LockDelays', () => {
  it('blocks a key until its deadline', () => {
    const delays = new LockDelays()
    delays.set('k', 1_500, 1_000)
    expect(delays.blocks('k', 1_499)).toBe(true)
    expect(delays.blocks('k', 1_500)).toBe(false)
    expect(delays.size).toBe(0) // an expired entry is dropped when seen
    expect(delays.blocks('other', 0)).toBe(false)
  })

  it('caps a session end at 60 s and ignores a zero delay', () => {
    const delays = new LockDelays()
    delays.sessionEnded(['a', 'b'], 600e9, 0)
    expect(delays.blocks('a', lockDelayMsMax - 1)).toBe(true)
    expect(delays.blocks('b', lockDelayMsMax)).toBe(false)
    delays.sessionEnded(['c'], 0, 0)
    expect(delays.blocks('c', 0)).toBe(false)
  })

  it('stays within keysMax: expired entries go first, then the oldest', () => {
    const delays = new LockDelays(3)
    delays.set('old', 100, 0)
    delays.set('a', 1_000, 0)
    delays.set('b', 1_000, 0)
    delays.set('c', 1_000, 200) // 'old' has expired by now: it makes room
    expect(delays.size).toBe(3)
    expect(delays.blocks('a', 300)).toBe(true)
    delays.set('d', 1_000, 300) // none expired: the oldest ('a') goes
    expect(delays.size).toBe(3)
    expect(delays.blocks('a', 300)).toBe(false)
    expect(['b', 'c', 'd'].every((k) => delays.blocks(k, 300))).toBe(true)
  })
})

describe('parseSessionRequest', () => {
  it("fills Consul's defaults", () => {
    expect(parseSessionRequest(undefined, 'n1')).toEqual({
      name: '',
      node: 'n1',
      lockDelayNs: 15_000_000_000n,
      behavior: 'release',
      ttl: '',
      ttlMs: undefined,
      nodeChecks: ['serfHealth'],
    })
  })

  it('applies Consul fix-ups', () => {
    expect(parseSessionRequest({ LockDelay: 5 }, 'n1').lockDelayNs).toBe(5_000_000_000n)
    // "999ns" is below 1000 too: read as 999 s, then capped at 60 s.
    expect(parseSessionRequest({ LockDelay: '999ns' }, 'n1').lockDelayNs).toBe(60_000_000_000n)
    expect(parseSessionRequest({ LockDelay: '1500ms' }, 'n1').lockDelayNs).toBe(1_500_000_000n)
    expect(parseSessionRequest({ Checks: [] }, 'n1').nodeChecks).toEqual([])
    expect(
      parseSessionRequest({ NodeChecks: ['serfHealth'], Checks: ['serfHealth'] }, 'n1').nodeChecks,
    ).toEqual(['serfHealth'])
    expect(parseSessionRequest({ TTL: '0s' }, 'n1').ttlMs).toBeUndefined()
    expect(parseSessionRequest({ TTL: '10.0001s' }, 'n1').ttlMs).toBe(10_001)
  })

  it('refuses what Consul refuses, with SESSION_INVALID', () => {
    for (const body of [
      { TTL: '9s' },
      { TTL: '25h' },
      { Behavior: 'keep' },
      { Name: 5 },
      { NodeChecks: ['x'] },
    ]) {
      let error: unknown
      try {
        parseSessionRequest(body, 'n1')
      } catch (e) {
        error = e
      }
      expect(isCairnError(error, 'SESSION_INVALID'), JSON.stringify(body)).toBe(true)
    }
  })
})
