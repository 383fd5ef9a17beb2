/**
 * Proves membership changes on a running cluster of real `cairn agent` processes: a member added
 * with POST /v2/members (as `etcdctl member add` does) and started with
 * `--initial-cluster-state existing --cluster-id ...` joins as a learner, catches up from a
 * snapshot streamed by the leader (the log behind the snapshot is gone), is promoted to voter by
 * the leader once caught up, and serves every key; then a founder is removed, and the cluster of
 * three keeps taking writes. Membership changes asked of a follower reach the leader, and so do its
 * refusals: promoting a learner that never started is 412 at once, not a timeout. Every process is
 * stopped and every directory removed afterwards.
 */
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentCluster, get, http, pollUntil, put, spawnCairn } from './helpers/agent-processes.ts'
import { freePorts } from './helpers/ports.ts'

let cluster: AgentCluster | undefined

afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: unknown; headers: Record<string, unknown> }> {
  const res = await request(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

interface StatusBody {
  snapshotsReceived: number
  role: string
  voters: string[]
  learners: string[]
  applied: number
}

describe('membership changes on a running cluster of agent processes', () => {
  it('a member added with POST /v2/members catches up from a snapshot, is promoted, and a founder can be removed', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    for (const name of c.names) {
      const proc = spawnCairn([...c.args(name), '--snapshot-count', '20'], name, c.clientUrl(name))
      c.running.set(name, proc)
    }
    const leaderName = await c.leader()
    const leaderUrl = c.clientUrl(leaderName)
    // More than the 5,000 entries a leader keeps behind its snapshot, so the joiner needs the snapshot.
    const keys = 5_400
    for (let i = 0; i < keys; i += 200) {
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, j) => put(leaderUrl, `k${i + j}`, `v${i + j}`)),
      )
      expect(acks.every(Boolean)).toBe(true)
    }

    const [client4, peer4] = (await freePorts(2)) as [number, number]
    const peerUrl4 = `http://127.0.0.1:${peer4}`
    const added = await postJson(`${leaderUrl}/v2/members`, { peerURLs: [peerUrl4] })
    expect(added.status).toBe(201)
    const newId = (added.body as { id: string }).id
    const clusterId = String(added.headers['x-etcd-cluster-id'])

    const founders = c.args(leaderName)[c.args(leaderName).indexOf('--initial-cluster') + 1] as string
    const joiner = spawnCairn(
      [
        'agent',
        '--server',
        '--name',
        'm4',
        '--data-dir',
        join(c.dir, 'm4'),
        '--client-addr',
        `127.0.0.1:${client4}`,
        '--peer-addr',
        `127.0.0.1:${peer4}`,
        '--initial-cluster',
        `${founders},m4=${peerUrl4}`,
        '--initial-cluster-state',
        'existing',
        '--initial-cluster-token',
        'agent-test',
        '--cluster-id',
        clusterId,
        '--snapshot-count',
        '20',
      ],
      'm4',
      `http://127.0.0.1:${client4}`,
    )
    c.running.set('m4', joiner)

    // Promoted by the leader once caught up: m4 is a voter in the leader's view.
    await pollUntil(
      async () => {
        const s = (await http('GET', `${c.clientUrl(leaderName)}/_cairn/status`))?.body as
          | StatusBody
          | undefined
        return s?.voters.includes(newId) === true && !s.learners.includes(newId) ? true : undefined
      },
      'promotion of the new member',
      30_000,
      () => c.outputs(),
    )
    const joinerUrl = `http://127.0.0.1:${client4}`
    for (const i of [0, 2_700, keys - 1]) expect(await get(joinerUrl, `k${i}`)).toBe(`v${i}`)
    const joinerStatus = (await http('GET', `${joinerUrl}/_cairn/status`))?.body as {
      snapshotsReceived: number
    }
    expect(joinerStatus.snapshotsReceived).toBeGreaterThanOrEqual(1) // the early log was compacted away

    // Remove a founder that is not the leader; the remaining three keep taking writes.
    const removed = c.names.find((n) => n !== leaderName) as string
    const members = (await http('GET', `${leaderUrl}/v2/members`))?.body as {
      members: { id: string; name: string }[]
    }
    const removedId = members.members.find((m) => m.name === removed)?.id as string
    const del = await request(`${leaderUrl}/v2/members/${removedId}`, { method: 'DELETE' })
    await del.body.text()
    expect(del.statusCode).toBe(204)
    await c.kill(removed, 'SIGKILL')
    expect(await put(leaderUrl, 'after-removal', 'yes')).toBe(true)
    expect(await get(joinerUrl, 'after-removal')).toBe('yes')
  })

  it('on a follower, add, promote and remove go to the leader, and its refusal comes back at once', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    for (const name of c.names) c.running.set(name, spawnCairn(c.args(name), name, c.clientUrl(name)))
    const leaderName = await c.leader()
    const followerUrl = c.clientUrl(c.names.find((n) => n !== leaderName) as string)
    // Wait until the follower knows the leader's client URL (published after the election).
    await pollUntil(
      async () => {
        const res = await http('GET', `${followerUrl}/v2/members/leader`)
        const leader = res?.body as { clientURLs?: string[] } | undefined
        return res?.status === 200 && (leader?.clientURLs?.length ?? 0) > 0 ? true : undefined
      },
      'the follower knows the leader',
      10_000,
    )
    const [port] = await freePorts(1)
    const added = await postJson(`${followerUrl}/v2/members`, { peerURLs: [`http://127.0.0.1:${port}`] })
    expect(added.status).toBe(201)
    const id = (added.body as { id: string }).id
    // The learner never starts, so it cannot have caught up: the leader refuses, and the follower
    // relays the refusal (before forwarding, the refusal was dropped and this ended in a timeout).
    const promoted = await postJson(`${followerUrl}/v2/members/${id}/promote`, {})
    expect(promoted.status).toBe(412)
    expect((promoted.body as { message: string }).message).toMatch(/has not caught up/)
    const removed = await request(`${followerUrl}/v2/members/${id}`, { method: 'DELETE' })
    await removed.body.dump()
    expect(removed.statusCode).toBe(204)
    await pollUntil(
      async () => {
        const res = await http('GET', `${followerUrl}/v2/members`)
        const members = (res?.body as { members?: { id: string }[] } | undefined)?.members ?? []
        return res?.status === 200 && members.length === 3 && !members.some((m) => m.id === id)
          ? true
          : undefined
      },
      "the learner is gone from the follower's view",
      10_000,
    )
  })
})
