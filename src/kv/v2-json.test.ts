/**
 * Proves the etcd 2.3 JSON rendering: omitempty rules (root key and zero indexes left out, empty
 * values kept, empty listings left out), field order, `ttl` as the ceiling of the remaining
 * seconds (left out at 0 or below), `expiration` in Go's RFC 3339 form, and the event body.
 */
import { describe, expect, it } from 'vitest'
import { renderEvent, renderNode, rfc3339, ttlSeconds } from './v2-json.ts'

describe('v2 JSON', () => {
  it('renders a file with a TTL in etcd field order', () => {
    const json = JSON.stringify(
      renderNode({ key: '/k', value: '', createdIndex: 3, modifiedIndex: 4, expiresAtMs: 10_500 }, 5_000),
    )
    expect(json).toBe(
      '{"key":"/k","value":"","expiration":"1970-01-01T00:00:10.5Z","ttl":6,"modifiedIndex":4,"createdIndex":3}',
    )
  })

  it('renders the root listing without key or indexes, and child directories without empty nodes', () => {
    const root = {
      key: '/',
      dir: true as const,
      createdIndex: 0,
      modifiedIndex: 0,
      nodes: [{ key: '/d', dir: true as const, createdIndex: 1, modifiedIndex: 1, nodes: [] }],
    }
    expect(renderNode(root, 0)).toEqual({
      dir: true,
      nodes: [{ key: '/d', dir: true, modifiedIndex: 1, createdIndex: 1 }],
    })
  })

  it.each([
    [10_000, 0, 10],
    [10_001, 0, 11],
    [1, 0, 1],
    [0, 0, 0],
    [-1500, 0, -1],
  ])('ttlSeconds(deadline %i, now %i) = %i (ceil)', (deadline, now, ttl) => {
    expect(ttlSeconds(deadline, now)).toBe(ttl)
  })

  it('leaves ttl out once the deadline has passed (Go omitempty of 0), keeps expiration', () => {
    expect(
      renderNode({ key: '/k', value: 'v', createdIndex: 1, modifiedIndex: 1, expiresAtMs: 1000 }, 5000),
    ).toEqual({
      key: '/k',
      value: 'v',
      expiration: '1970-01-01T00:00:01Z',
      modifiedIndex: 1,
      createdIndex: 1,
    })
  })

  it('formats expiration like Go: trailing fractional zeros trimmed', () => {
    expect([rfc3339(0), rfc3339(120), rfc3339(1_700_000_000_123)]).toEqual([
      '1970-01-01T00:00:00Z',
      '1970-01-01T00:00:00.12Z',
      '2023-11-14T22:13:20.123Z',
    ])
  })

  it('renders an event body: action, node, prevNode, refresh', () => {
    const event = renderEvent(
      {
        action: 'update',
        node: { key: '/k', value: 'v', createdIndex: 1, modifiedIndex: 2 },
        prevNode: { key: '/k', value: 'v', createdIndex: 1, modifiedIndex: 1 },
        refresh: true,
      },
      0,
    )
    expect(JSON.stringify(event)).toBe(
      '{"action":"update","node":{"key":"/k","value":"v","modifiedIndex":2,"createdIndex":1},' +
        '"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1},"refresh":true}',
    )
  })
})
