/**
 * Proves a single `cairn agent --server` process works as an operator runs it: it starts on the
 * given ports, /health answers {"health":"true"} once it leads itself, /version answers etcd's
 * shape, /_cairn/status shows it leading, an acknowledged write survives a graceful restart, and SIGTERM (and SIGINT) stop it with
 * exit code 0, also when the signal comes while it is still starting. Bad flags are refused before anything starts, with the reason and exit code 2; a
 * port already in use is an operating failure, exit code 1.
 */
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AgentCluster, get, http, pollUntil, put, spawnCairn } from './helpers/agent-processes.ts'

const neverCreated = join(tmpdir(), `cairn-agent-never-created-${process.pid}`)

let cluster: AgentCluster | undefined

afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

describe('a single-member agent', () => {
  it('stops gracefully on a SIGTERM that comes while it is still starting (exit 0, not killed)', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const proc = c.start('m1')
    // The first line it prints comes from inside its start (the Raft node, the storage): the
    // signal arrives while the start is under way, before the agent serves.
    await new Promise<void>((resolve) => {
      const first = () => resolve()
      proc.child.stdout?.once('data', first)
      proc.child.stderr?.once('data', first)
    })
    expect(await c.kill('m1', 'SIGTERM'), proc.output.join('')).toEqual({ code: 0, signal: null })
    // It stopped after its start completed: the data directory holds its WAL.
    expect(existsSync(join(c.dir, 'm1', 'member', 'wal'))).toBe(true)
  })

  it('answers /health and /version, keeps a write across a restart, and exits 0 on SIGTERM and SIGINT', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const url = c.clientUrl('m1')
    c.start('m1')
    const health = await pollUntil(
      async () => {
        const res = await http('GET', `${url}/health`)
        return res?.status === 200 ? res.body : undefined
      },
      '/health 200',
      30_000,
      () => c.outputs(),
    )
    expect(health).toEqual({ health: 'true' })
    expect((await http('GET', `${url}/version`))?.body).toEqual({ etcdserver: '2.3.8', etcdcluster: '2.3.0' })
    expect((await http('GET', `${url}/_cairn/status`))?.body).toMatchObject({ name: 'm1', role: 'leader' })
    expect(await put(url, 'greeting', 'hello')).toBe(true)
    expect(await c.kill('m1', 'SIGTERM')).toEqual({ code: 0, signal: null })
    expect(existsSync(join(c.dir, 'm1', 'member', 'wal'))).toBe(true)

    c.start('m1')
    expect(
      await pollUntil(
        () => get(url, 'greeting'),
        'the key after restart',
        30_000,
        () => c.outputs(),
      ),
    ).toBe('hello')
    expect(await c.kill('m1', 'SIGINT')).toEqual({ code: 0, signal: null })
  })

  it('--history-revisions bounds the watch history: an older waitIndex is 401 with the oldest index', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const url = c.clientUrl('m1')
    c.running.set('m1', spawnCairn([...c.args('m1'), '--history-revisions', '5'], 'm1', url))
    await pollUntil(
      async () => ((await http('GET', `${url}/health`))?.status === 200 ? true : undefined),
      '/health 200',
      30_000,
    )
    for (let i = 0; i < 12; i++) expect(await put(url, 'h', `v${i}`)).toBe(true)
    const latest = (await http('GET', `${url}/v2/keys/h`))?.body as { node: { modifiedIndex: number } }
    const newest = latest.node.modifiedIndex
    const old = await http('GET', `${url}/v2/keys/h?wait=true&waitIndex=1`)
    expect(old?.status).toBe(400)
    expect(old?.body).toMatchObject({
      errorCode: 401,
      message: 'The event in requested index is outdated and cleared',
    })
    expect((old?.body as { cause?: string } | undefined)?.cause).toContain(`[${newest - 4}/1]`)
    const kept = await http('GET', `${url}/v2/keys/h?wait=true&waitIndex=${newest - 4}`)
    expect(kept?.status).toBe(200)
    expect(kept?.body).toMatchObject({ action: 'set', node: { key: '/h', modifiedIndex: newest - 4 } })
  })

  it('warns when --machine-ttl is under two election timeouts, and not at the defaults', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const url = c.clientUrl('m1')
    const warning = '--machine-ttl is under 2 election timeouts'
    const short = spawnCairn([...c.args('m1'), '--machine-ttl', '1500'], 'm1', url)
    c.running.set('m1', short)
    await pollUntil(
      async () => (short.output.join('').includes('agent serving') ? true : undefined),
      'the agent serving',
      30_000,
      () => c.outputs(),
    )
    expect(short.output.join('')).toContain(warning)
    await c.kill('m1', 'SIGTERM')
    c.running.delete('m1')
    const normal = c.start('m1')
    await pollUntil(
      async () => (normal.output.join('').includes('agent serving') ? true : undefined),
      'the agent serving again',
      30_000,
      () => c.outputs(),
    )
    expect(normal.output.join('')).not.toContain(warning)
  })

  it('compacts its heap once quiet after a burst (docs/agent.md, Memory at rest); --no-idle-gc never does', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const off = await AgentCluster.create(1)
    const compacted = 'idle: compacted the heap'
    try {
      const on = spawnCairn([...c.args('m1'), '--log-level', 'debug'], 'm1', c.clientUrl('m1'))
      c.running.set('m1', on)
      const without = spawnCairn(
        [...off.args('m1'), '--log-level', 'debug', '--no-idle-gc'],
        'm1',
        off.clientUrl('m1'),
      )
      off.running.set('m1', without)
      // 40 overwrites of one 1 MiB value: the replaced values, their Raft entries and request
      // bodies are garbage the agent keeps until a full collection.
      const value = 'x'.repeat(1024 * 1024)
      for (const url of [off.clientUrl('m1'), c.clientUrl('m1')]) {
        await pollUntil(
          async () => ((await put(url, 'big', 'first')) ? true : undefined),
          'a first write',
          30_000,
        )
        for (let i = 0; i < 40; i++) expect(await put(url, 'big', value)).toBe(true)
      }
      await pollUntil(
        async () => (on.output.join('').includes(compacted) ? true : undefined),
        'the idle compaction',
        30_000,
        () => c.outputs(),
      )
      // The agent without it took the same burst first and has been quiet at least as long.
      expect(without.output.join('')).not.toContain(compacted)
    } finally {
      await off.destroy()
    }
  })

  it('exits 1 with a clear message when its client port is taken', async () => {
    const c = await AgentCluster.create(1)
    cluster = c
    const port = Number(new URL(c.clientUrl('m1')).port)
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
    try {
      const proc = c.start('m1')
      expect((await proc.exited).code).toBe(1)
      expect(proc.output.join('')).toContain('could not start')
    } finally {
      blocker.close()
    }
  })
})

describe('cairn agent flags', () => {
  it('--help explains every flag with its default', async () => {
    const proc = spawnCairn(['agent', '--help'])
    expect((await proc.exited).code).toBe(0)
    const help = proc.output.join('')
    for (const flag of [
      '--server',
      '--name',
      '--data-dir',
      '--client-addr',
      '--peer-addr',
      '--initial-cluster ',
      '--initial-cluster-state',
      '--initial-cluster-token',
      '--heartbeat-interval',
      '--election-timeout',
      '--snapshot-count',
      '--history-revisions',
      '--history-bytes',
      '--log-level',
    ]) {
      expect(help).toContain(flag)
    }
    expect(help).toContain('127.0.0.1:4001')
    expect(help).toContain('127.0.0.1:7001')
  })

  it.each([
    [['agent', '--name', 'a', '--data-dir', neverCreated], 'pass --server'],
    [
      ['agent', '--server', '--join', 'h:1', '--name', 'a', '--data-dir', neverCreated],
      '--join is for client agents',
    ],
    [
      ['agent', '--join', 'h:1', '--name', 'a', '--data-dir', neverCreated, '--peer-addr', 'h:2'],
      '--peer-addr is for server members',
    ],
    [['agent', '--join', 'h', '--name', 'a', '--data-dir', neverCreated], '--join: "h" is not host:port'],
    [['agent', '--join', ' , ', '--name', 'a', '--data-dir', neverCreated], '--join: no server given'],
    [['agent', '--join', 'h:1', '--data-dir', neverCreated], '--name is required'],
    [['agent', '--server', '--data-dir', neverCreated], '--name is required'],
    [['agent', '--server', '--name', 'a'], '--data-dir is required'],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--client-addr', 'nope'],
      '--client-addr',
    ],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--election-timeout', 'soon'],
      'whole number',
    ],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--election-timeout', '100'],
      'out of range',
    ],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--initial-cluster', 'b=http://h:1'],
      'does not list',
    ],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--initial-cluster-state', 'old'],
      'new or existing',
    ],
    [['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--log-level', 'loud'], '--log-level'],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--history-revisions', '0'],
      '--history-revisions: 0 is out of range',
    ],
    [
      ['agent', '--server', '--name', 'a', '--data-dir', neverCreated, '--planted-bug', 'nope'],
      '--planted-bug',
    ],
    [['agent', '--server', '--bogus'], "unknown option '--bogus'"],
    [['agent', '--server', '--name'], 'argument missing'],
  ])('cairn %j exits 2 with a clear reason', async (args, message) => {
    const proc = spawnCairn(args)
    expect((await proc.exited).code).toBe(2)
    expect(proc.output.join('')).toContain(message)
    expect(existsSync(neverCreated)).toBe(false) // nothing was created
  })
})
