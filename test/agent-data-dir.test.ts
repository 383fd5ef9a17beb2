/**
 * The data directory belongs to one agent, and a member whose disk fails stops instead of
 * pretending: real `cairn agent` processes on random ports.
 *
 *   - A second agent on a data directory in use exits 1 with DATA_DIR_LOCKED's message and changes
 *     nothing; the first keeps serving. After kill -9 of the owner, the stale lock is taken over.
 *   - When the WAL refuses writes (the segment file made immutable with chattr +i: the kernel then
 *     fails every write on the open descriptor with EPERM), the agent exits 1 with the reason, the
 *     write it could not make durable is not acknowledged, and once the disk accepts writes again
 *     a restart still holds every acknowledged key.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentCluster, get, http, pollUntil, put, spawnCairn } from './helpers/agent-processes.ts'
import { freePorts } from './helpers/ports.ts'

let cluster: AgentCluster | undefined
const immutable: string[] = []

afterEach(async () => {
  for (const file of immutable.splice(0)) chattr('-i', file)
  await cluster?.destroy()
  cluster = undefined
})

function chattr(flag: string, file: string): void {
  execFileSync('chattr', [flag, file], { stdio: 'ignore' })
}

/** chattr +i needs root and a file system with the immutable flag (ext4, xfs, btrfs). */
function immutableFlagWorks(dir: string): boolean {
  const probe = join(dir, 'chattr-probe')
  writeFileSync(probe, 'x')
  try {
    chattr('+i', probe)
    chattr('-i', probe)
    return true
  } catch {
    return false
  }
}

async function startedLeader(c: AgentCluster, name: string): Promise<string> {
  const url = c.clientUrl(name)
  c.start(name)
  await pollUntil(
    async () => ((await http('GET', `${url}/health`))?.status === 200 ? true : undefined),
    `${name} healthy`,
    30_000,
    () => c.outputs(),
  )
  return url
}

describe('the data directory', () => {
  it('refuses a second agent while the first runs, and takes over the lock after kill -9', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const url = await startedLeader(c, 'm1')
    expect(await put(url, 'k', 'v1')).toBe(true)
    const dataDir = join(c.dir, 'm1')
    const lock = JSON.parse(readFileSync(join(dataDir, 'LOCK'), 'utf8')) as { pid: number }
    expect(lock.pid).toBe(c.running.get('m1')!.child.pid)

    const [client, peer] = await freePorts(2)
    const second = spawnCairn(
      c
        .args('m1')
        .map((arg, i, all) =>
          all[i - 1] === '--client-addr'
            ? `127.0.0.1:${client}`
            : all[i - 1] === '--peer-addr'
              ? `127.0.0.1:${peer}`
              : arg,
        ),
      'second',
    )
    expect((await second.exited).code).toBe(1)
    expect(second.output.join('')).toContain(`is in use by the agent with pid ${lock.pid}`)
    expect(await get(url, 'k')).toBe('v1')
    expect(await put(url, 'k', 'v2')).toBe(true)

    await c.kill('m1', 'SIGKILL')
    // The dead owner's lock file is still there; the restart takes it over.
    expect(readdirSync(dataDir)).toContain('LOCK')
    const again = await startedLeader(c, 'm1')
    expect(
      await pollUntil(
        () => get(again, 'k'),
        'k after restart',
        30_000,
        () => c.outputs(),
      ),
    ).toBe('v2')
    expect(await c.kill('m1', 'SIGTERM')).toEqual({ code: 0, signal: null })
    expect(readdirSync(dataDir)).not.toContain('LOCK')
  })

  it('exits 1 when the WAL refuses writes, and a restart keeps every acknowledged key', async (context) => {
    const c = await AgentCluster.create(1)
    cluster = c
    if (!immutableFlagWorks(c.dir)) {
      const why = 'chattr +i is not available here (needs root, e2fsprogs and ext4/xfs/btrfs)'
      // CI runs as root on ext4 and installs e2fsprogs: there the test must run, never skip.
      if (process.env.CI === 'true') throw new Error(`${why}: CI must be able to run this test`)
      context.skip(`${why}: cannot make the WAL refuse writes`)
    }
    const url = await startedLeader(c, 'm1')
    for (let i = 0; i < 20; i++) expect(await put(url, `acked/${i}`, `v${i}`)).toBe(true)

    const walDir = join(c.dir, 'm1', 'member', 'wal')
    for (const segment of readdirSync(walDir)) {
      chattr('+i', join(walDir, segment))
      immutable.push(join(walDir, segment))
    }
    const proc = c.running.get('m1')!
    const refused = await http('PUT', `${url}/v2/keys/unacked`, 'value=x')
    expect(refused === undefined || refused.status >= 500).toBe(true)
    const exit = await proc.exited
    expect(exit.code).toBe(1)
    const output = proc.output.join('')
    expect(output).toContain('raft loop stopped: exiting')
    expect(output).toContain('EPERM')

    for (const file of immutable.splice(0)) chattr('-i', file)
    const again = await startedLeader(c, 'm1')
    for (let i = 0; i < 20; i++) expect(await get(again, `acked/${i}`)).toBe(`v${i}`)
    expect(await c.kill('m1', 'SIGTERM')).toEqual({ code: 0, signal: null })
  })
})
