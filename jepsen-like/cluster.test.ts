/**
 * Proves the harness's cluster on real `cairn agent` processes behind the fault proxies: the
 * members form a cluster through the proxies; isolating the leader at the proxies makes the others
 * elect a new one; a killed member restarts with the same flags and catches up; a paused member
 * resumes; a removed member is added back with a fresh data directory and ends a voter again;
 * after all that a write is read back from every member; stop() leaves no process behind.
 * Random free ports; no timing assertions (every wait is a poll with a deadline).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster, pollFor } from './cluster.ts'
import { httpCall } from './cluster-http.ts'
import { liveProcessCount } from './cluster-processes.ts'

let cluster: Cluster | undefined
let logDir: string | undefined

afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
  if (logDir !== undefined) rmSync(logDir, { recursive: true, force: true })
})

/** A plain PUT; true when acknowledged. */
async function put(c: Cluster, name: string, key: string, value: string): Promise<boolean> {
  try {
    const res = await fetch(`${c.clientUrl(name)}/v2/keys/${key}`, {
      method: 'PUT',
      body: new URLSearchParams({ value }),
      signal: AbortSignal.timeout(5_000),
    })
    await res.text()
    return res.status === 200 || res.status === 201
  } catch {
    return false
  }
}

async function quorumRead(c: Cluster, name: string, key: string): Promise<string | undefined> {
  const reply = await httpCall('GET', `${c.clientUrl(name)}/v2/keys/${key}?quorum=true`, { timeoutMs: 5_000 })
  return reply?.status === 200 ? (reply.body as { node: { value: string } }).node.value : undefined
}

describe('Cluster', () => {
  it('runs members behind proxies through partition, kill, pause and member remove/re-add, and stops them all', async () => {
    logDir = mkdtempSync(join(tmpdir(), 'cairn-jepsen-cluster-test-'))
    const c = await Cluster.start({
      nodes: 3,
      seed: 7,
      logDir,
      heartbeatMs: 100,
      electionMs: 1_000,
      snapshotCount: 1_000,
      logLevel: 'warn',
    })
    cluster = c
    const first = await c.waitForLeader(60_000)
    expect(first).toBeDefined()
    const leader = first as string
    const others = c.names.filter((n) => n !== leader)

    // Isolate the leader at the proxies: the other two elect one of themselves.
    for (const o of others) {
      c.setLink(leader, o, { blocked: true })
      c.setLink(o, leader, { blocked: true })
    }
    const next = await pollFor(30_000, async () => {
      const s = await c.status(others[0] as string)
      const name = c.nameOfHex(s?.leader)
      return name !== undefined && name !== leader ? name : undefined
    })
    expect(others).toContain(next)
    c.healLinks()

    // Kill a member and restart it with the same flags; pause another and resume it.
    await c.kill(others[1] as string)
    expect(c.state(others[1] as string)).toBe('killed')
    expect(
      await pollFor(30_000, async () => ((await put(c, leader, 'k', 'while-down')) ? true : undefined)),
    ).toBe(true)
    c.start(others[1] as string)
    c.pause(others[0] as string)
    expect(c.state(others[0] as string)).toBe('paused')
    c.resume(others[0] as string)
    expect(await c.waitQuiet(60_000)).toBe(true)
    expect(await quorumRead(c, others[1] as string, 'k')).toBe('while-down')

    // Remove a member, then add it back: it starts empty, catches up and is a voter again.
    const removed = others[1] as string
    expect(await c.removeMember(removed)).toBe(true)
    expect(c.state(removed)).toBe('removed')
    expect(await c.addMember(removed)).toBe(true)
    expect(await c.waitQuiet(60_000)).toBe(true)
    const writer = c.membersIn('running')[0] as string
    expect(
      await pollFor(30_000, async () => ((await put(c, writer, 'k', 'after-readd')) ? true : undefined)),
    ).toBe(true)
    for (const name of c.names) expect(await quorumRead(c, name, 'k')).toBe('after-readd')
    expect(c.unexpectedExits).toEqual([])

    await c.stop()
    expect(liveProcessCount()).toBe(0)
  })
})
