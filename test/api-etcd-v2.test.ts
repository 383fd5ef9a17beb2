/**
 * Proves the etcd v2 HTTP surface on a real single-member Cairn (file WAL, TCP transport, kv state
 * machine, fastify on a loopback port): key replies with etcd's JSON, 200/201 rules and headers;
 * errors in etcd's shape and statuses; quorum reads; long-poll and stream watches (headers flushed
 * before any event, inclusive waitIndex, recursive, 401 with the oldest index, a disconnect
 * cancels the watcher, a slow stream is cancelled and its response ends); the status endpoints;
 * the 1.5 MiB body limit; and a 3-member cluster (writes on a follower, members add/update/remove).
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiCluster, startApiCluster, v2 } from './api-harness.ts'

async function waitFor(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Opens a raw GET and resolves once the head arrived; collects body chunks. */
function openWatch(
  url: string,
  paused = false,
): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  chunks: string[]
  ended: Promise<void>
  destroy(): void
  resume(): void
}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, (res) => {
      const chunks: string[] = []
      res.setEncoding('utf8')
      if (paused) res.pause()
      else res.on('data', (c: string) => chunks.push(c))
      const ended = new Promise<void>((done) => {
        res.on('end', () => done())
        res.on('close', () => done())
      })
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        chunks,
        ended,
        destroy: () => req.destroy(),
        resume: () => {
          res.on('data', (c: string) => chunks.push(c))
          res.resume()
        },
      })
    })
    req.on('error', reject)
    req.end()
  })
}

describe('etcd v2 API on one member', () => {
  let cluster: ApiCluster
  let base: string

  beforeAll(async () => {
    cluster = await startApiCluster(1, { kv: { historyRevisionsMax: 50, watcherEventsMax: 4 } })
    await cluster.leader()
    base = cluster.members[0]!.url
  })
  afterAll(async () => {
    await cluster.stop()
  })

  it('set answers 201 then 200 with prevNode, and etcd headers', async () => {
    const first = await v2(base, 'PUT', '/v2/keys/h/a', { value: 'one' })
    expect(first.status).toBe(201)
    expect(first.json).toMatchObject({ action: 'set', node: { key: '/h/a', value: 'one' } })
    expect(first.text.endsWith('\n')).toBe(true)
    const index = (first.json as { node: { modifiedIndex: number } }).node.modifiedIndex
    expect(first.headers.get('x-etcd-index')).toBe(String(index))
    expect(first.headers.get('x-etcd-cluster-id')).toBe('c0ffee')
    expect(Number(first.headers.get('x-raft-index'))).toBeGreaterThan(0)
    expect(Number(first.headers.get('x-raft-term'))).toBeGreaterThan(0)
    expect(first.headers.get('content-type')).toContain('application/json')
    const second = await v2(base, 'PUT', '/v2/keys/h/a?value=two')
    expect(second.status).toBe(200)
    expect(second.json).toMatchObject({ action: 'set', node: { value: 'two' }, prevNode: { value: 'one' } })
  })

  it("ignores unknown parameters, even ones named like Object's members", async () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty']
    // fromEntries makes __proto__ an own property, so it is sent in the body too.
    const body = Object.fromEntries([...names.map((n) => [n, 'x']), ['value', 'v']])
    const put = await v2(base, 'PUT', `/v2/keys/h/p?${names.map((n) => `${n}=1`).join('&')}`, body)
    expect(put.status, put.text).toBe(201)
    expect(put.json).toMatchObject({ action: 'set', node: { key: '/h/p', value: 'v' } })
    for (const name of names) {
      const get = await v2(base, 'GET', `/v2/keys/h/p?${name}=1&quorum=true`)
      expect(get.status, `${name}: ${get.text}`).toBe(200)
      expect(get.json).toMatchObject({ node: { value: 'v' } })
    }
  })

  it('answers errors with etcd bodies, statuses and X-Etcd-Index', async () => {
    const missing = await v2(base, 'GET', '/v2/keys/h/none')
    expect(missing.status).toBe(404)
    expect(missing.json).toMatchObject({ errorCode: 100, message: 'Key not found', cause: '/h/none' })
    expect(missing.headers.get('x-etcd-index')).toBe(String((missing.json as { index: number }).index))
    const cas = await v2(base, 'PUT', '/v2/keys/h/a', { value: 'x', prevValue: 'nope' })
    expect(cas.status).toBe(412)
    expect(cas.json).toMatchObject({ errorCode: 101, cause: '[nope != two]' })
    const badTtl = await v2(base, 'PUT', '/v2/keys/h/b', { value: 'x', ttl: 'soon' })
    expect(badTtl.status).toBe(400)
    expect(badTtl.json).toMatchObject({ errorCode: 202 })
    const waitPut = await v2(base, 'PUT', '/v2/keys/h/b?wait=true', { value: 'x' })
    expect(waitPut.json).toMatchObject({ errorCode: 209 })
    const root = await v2(base, 'PUT', '/v2/keys/', { value: 'x' })
    expect(root.json).toMatchObject({ errorCode: 107 })
    const patch = await v2(base, 'PATCH', '/v2/keys/h/a')
    expect(patch.status).toBe(405)
    expect(patch.headers.get('allow')).toContain('PUT')
  })

  it('POST creates in-order keys and quorum reads see them', async () => {
    const a = await v2(base, 'POST', '/v2/keys/q', { value: 'job1' })
    expect(a.status).toBe(201)
    const key = (a.json as { node: { key: string; createdIndex: number } }).node
    expect(key.key).toBe(`/q/${String(key.createdIndex).padStart(20, '0')}`)
    const list = await v2(base, 'GET', '/v2/keys/q?recursive=true&sorted=true&quorum=true')
    expect(list.status).toBe(200)
    expect(list.json).toMatchObject({
      action: 'get',
      node: { key: '/q', dir: true, nodes: [{ value: 'job1' }] },
    })
    const head = await v2(base, 'HEAD', '/v2/keys/q')
    expect(head.status).toBe(200)
    expect(head.text).toBe('')
  })

  it('a long poll flushes its head at once, then one event; the watcher is released', async () => {
    const sm = cluster.members[0]!.sm
    const before = sm.revision
    const watch = await openWatch(`${base}/v2/keys/w/k?wait=true`)
    expect(watch.status).toBe(200)
    expect(watch.headers['x-etcd-index']).toBe(String(before))
    expect(sm.watcherCount).toBe(1)
    await v2(base, 'PUT', '/v2/keys/w/k', { value: 'v1' })
    await watch.ended
    const event = JSON.parse(watch.chunks.join(''))
    expect(event).toMatchObject({ action: 'set', node: { key: '/w/k', value: 'v1' } })
    expect(sm.watcherCount).toBe(0)
  })

  it('waitIndex is inclusive and recursive watches see children', async () => {
    const set = await v2(base, 'PUT', '/v2/keys/w/r/x', { value: 'a' })
    const index = (set.json as { node: { modifiedIndex: number } }).node.modifiedIndex
    const past = await v2(base, 'GET', `/v2/keys/w?wait=true&recursive=true&waitIndex=${index}`)
    expect(past.json).toMatchObject({ action: 'set', node: { key: '/w/r/x', modifiedIndex: index } })
  })

  it('a disconnecting client cancels its watcher (no leak)', async () => {
    const sm = cluster.members[0]!.sm
    const api = cluster.members[0]!.api
    const watches = await Promise.all([1, 2, 3].map(() => openWatch(`${base}/v2/keys/w/gone?wait=true`)))
    expect(sm.watcherCount).toBe(3)
    expect(api.openWatches()).toBe(3)
    for (const w of watches) w.destroy()
    await waitFor(() => sm.watcherCount === 0 && api.openWatches() === 0, 'watchers released')
  })

  it('a stream writes one JSON object per event', async () => {
    const watch = await openWatch(`${base}/v2/keys/s?wait=true&recursive=true&stream=true`)
    for (const v of ['1', '2', '3']) await v2(base, 'PUT', '/v2/keys/s/k', { value: v })
    await waitFor(() => watch.chunks.join('').split('\n').length >= 4, 'three events')
    const events = watch.chunks
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(events.map((e) => e.node.value)).toEqual(['1', '2', '3'])
    watch.destroy()
    await waitFor(() => cluster.members[0]!.sm.watcherCount === 0, 'stream released')
  })

  it('a stream too slow to read is cancelled and its response ends cleanly', async () => {
    const member = cluster.members[0]!
    const watch = await openWatch(`${base}/v2/keys/slow?wait=true&recursive=true&stream=true`, true)
    const value = 'x'.repeat(256 * 1024)
    // The client reads nothing: the socket stops draining, the watcher's buffer (4 here) fills.
    for (let i = 0; i < 24 && member.api.openWatches() > 0; i++) {
      await v2(base, 'PUT', `/v2/keys/slow/k${i}`, { value })
    }
    await waitFor(() => member.api.openWatches() === 0 && member.sm.watcherCount === 0, 'slow watch ended')
    watch.resume()
    await watch.ended
    const lines = watch.chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ action: 'set' })
  })

  it('a compacted waitIndex is 401 with the oldest index in the cause', async () => {
    for (let i = 0; i < 60; i++) await v2(base, 'PUT', '/v2/keys/fill', { value: String(i) })
    const old = await v2(base, 'GET', '/v2/keys/fill?wait=true&waitIndex=1')
    expect(old.status).toBe(400)
    expect(old.json).toMatchObject({ errorCode: 401 })
    expect((old.json as { cause: string }).cause).toMatch(
      /^the requested history has been cleared \[\d+\/1\]$/,
    )
  })

  it('refuses a body over 1.5 MiB cleanly and keeps answering', async () => {
    const big = 'x'.repeat(1_572_864 + 1)
    const tooBig = await v2(base, 'PUT', '/v2/keys/big', { value: big })
    expect(tooBig.status).toBe(400)
    expect(tooBig.json).toMatchObject({ errorCode: 209 })
    const huge = await v2(base, 'PUT', '/v2/keys/big', { value: big + 'y'.repeat(64 * 1024) })
    expect(huge.status).toBe(413)
    expect(huge.json).toMatchObject({ errorCode: 210 })
    const max = await v2(base, 'PUT', '/v2/keys/big', { value: 'x'.repeat(1_572_864) })
    expect(max.status).toBe(201)
    expect((await v2(base, 'GET', '/v2/keys/h/a')).status).toBe(200)
  })

  it('serves /health, /version, /v2/machines, /v2/members and the stats', async () => {
    expect((await v2(base, 'GET', '/health')).json).toEqual({ health: 'true' })
    expect((await v2(base, 'GET', '/version')).json).toEqual({ etcdserver: '2.3.8', etcdcluster: '2.3.0' })
    expect((await v2(base, 'GET', '/v2/machines')).text).toBe(base)
    const members = await v2(base, 'GET', '/v2/members')
    expect(members.json).toEqual({
      members: [{ id: '1', name: 'm1', peerURLs: [expect.any(String)], clientURLs: [base] }],
    })
    expect(members.headers.get('x-etcd-cluster-id')).toBe('c0ffee')
    expect((await v2(base, 'GET', '/v2/members/leader')).json).toMatchObject({ id: '1', name: 'm1' })
    expect((await v2(base, 'GET', '/v2/stats/self')).json).toMatchObject({ id: '1', state: 'StateLeader' })
    expect((await v2(base, 'GET', '/v2/stats/leader')).json).toEqual({ leader: '1', followers: {} })
    const store = (await v2(base, 'GET', '/v2/stats/store')).json as Record<string, number>
    expect(store.setsSuccess).toBeGreaterThan(0)
    expect(store.getsFail).toBeGreaterThan(0)
    const json = await fetch(`${base}/v2/members`, { method: 'POST', body: 'peerURLs=x' })
    expect(json.status).toBe(415)
  })
})

describe('etcd v2 API on three members', () => {
  let cluster: ApiCluster

  beforeAll(async () => {
    cluster = await startApiCluster(3)
    await cluster.leader()
  })
  afterAll(async () => {
    await cluster.stop()
  })

  it('a follower forwards writes and answers quorum reads', async () => {
    const leader = await cluster.leader()
    const follower = cluster.members.find((m) => m !== leader)!
    const set = await v2(follower.url, 'PUT', '/v2/keys/f', { value: 'v' })
    expect(set.status).toBe(201)
    const read = await v2(follower.url, 'GET', '/v2/keys/f?quorum=true')
    expect(read.json).toMatchObject({ node: { value: 'v' } })
    const stats = await v2(follower.url, 'GET', '/v2/stats/leader')
    expect(stats.status).toBe(403)
    const leaderStats = await v2(leader.url, 'GET', '/v2/stats/leader')
    expect(Object.keys((leaderStats.json as { followers: object }).followers)).toHaveLength(2)
  })

  it('adds, updates and removes a member through a follower, which then lists its own changes', async () => {
    const leader = await cluster.leader()
    const base = cluster.members.find((m) => m !== leader)!.url
    const post = (body: unknown) =>
      fetch(`${base}/v2/members`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const added = await post({ peerURLs: ['http://127.0.0.1:1'] })
    expect(added.status).toBe(201)
    const member = (await added.json()) as { id: string }
    expect((await post({ peerURLs: ['http://127.0.0.1:1'] })).status).toBe(409)
    expect((await post({ peerURLs: 'nope' })).status).toBe(400)
    const put = await fetch(`${base}/v2/members/${member.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ peerURLs: ['http://127.0.0.1:2'] }),
    })
    expect(put.status).toBe(204)
    const listed = (await v2(base, 'GET', '/v2/members')).json as {
      members: { id: string; peerURLs: string[] }[]
    }
    expect(listed.members.find((m) => m.id === member.id)?.peerURLs).toEqual(['http://127.0.0.1:2'])
    expect((await fetch(`${base}/v2/members/${member.id}`, { method: 'DELETE' })).status).toBe(204)
    expect((await fetch(`${base}/v2/members/${member.id}`, { method: 'DELETE' })).status).toBe(404)
    const after = (await v2(base, 'GET', '/v2/members')).json as { members: unknown[] }
    expect(after.members).toHaveLength(3)
  })

  it('without a quorum, writes answer 300 Raft Internal Error and /health turns false', async () => {
    const [survivor, ...others] = cluster.members as [(typeof cluster.members)[0], ...typeof cluster.members]
    for (const m of others) {
      await m.app.close()
      m.store.close()
      await m.node.stop()
    }
    const set = await v2(survivor.url, 'PUT', '/v2/keys/lost', { value: 'v' })
    expect(set.status).toBe(500)
    expect(set.json).toMatchObject({ errorCode: 300, message: 'Raft Internal Error', index: 0 })
    expect((set.json as { cause: string }).cause).toMatch(/timed out|no leader/)
    await waitFor(() => survivor.node.leader === 0, 'the leader to step down', 10_000)
    const health = await v2(survivor.url, 'GET', '/health')
    expect(health.status).toBe(503)
    expect(health.json).toEqual({ health: 'false' })
    expect((await v2(survivor.url, 'GET', '/v2/members/leader')).status).toBe(503)
  })
})
