/**
 * Proves the client commands of `cairn` (kv, member, status) against a real agent: a one-member
 * cluster runs as a child process on random loopback ports (never 4001) and ./bin/cairn runs as
 * another, exactly as a user types it. Checked: the printed values and JSON of every kv command,
 * a watch that sees a put made after it started, the member table and status lines, a member
 * started with the exact flags `member add` printed that joins and serves, and the
 * failure contract — an etcd error is `Error: <message> (<cause>)` with exit 1, an unreachable
 * endpoint names itself with the hint and exits 1, bad flags exit 2.
 */
import { spawn, spawnSync } from 'node:child_process'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import {
  AgentCluster,
  type AgentProcess,
  cairnBin,
  http,
  pollUntil,
  put,
  spawnCairn,
} from './helpers/agent-processes.ts'
import { freePorts } from './helpers/ports.ts'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function cairn(args: string[], env: Record<string, string> = {}): Run {
  const result = spawnSync(process.execPath, [cairnBin, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CAIRN_ENDPOINT: '', ...env },
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

let cluster: AgentCluster | undefined
/** A member started outside the cluster helper (member add); killed first. */
let joiner: AgentProcess | undefined

afterEach(async () => {
  joiner?.child.kill('SIGKILL')
  await joiner?.exited
  joiner = undefined
  await cluster?.destroy()
  cluster = undefined
})

/** A one-member cluster with a leader; returns its client URL. */
async function startAgent(): Promise<string> {
  cluster = await AgentCluster.create(1)
  cluster.startAll()
  await cluster.leader()
  return cluster.clientUrl('m1')
}

describe('cairn kv', () => {
  it('put, get, ls, rm round-trip, in table and json output', async () => {
    const url = await startAgent()
    const e = ['--endpoint', url]
    expect(cairn(['kv', 'put', '/app/db', 'postgres://x', ...e])).toMatchObject({
      code: 0,
      stdout: 'postgres://x\n',
    })
    expect(cairn(['kv', 'put', 'app/cache/size', '64', ...e]).code).toBe(0)
    expect(cairn(['kv', 'get', 'app/db', ...e])).toMatchObject({ code: 0, stdout: 'postgres://x\n' })

    const json = cairn(['kv', 'get', '/app/db', '-o', 'json', ...e])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      key: '/app/db',
      value: 'postgres://x',
      modifiedIndex: await modifiedIndexOf(url, 'app/db'),
    })

    expect(cairn(['kv', 'ls', '/app', ...e]).stdout).toBe('/app/cache/\n/app/db\n')
    expect(cairn(['kv', 'ls', '--recursive', ...e]).stdout).toBe(
      '/app/\n/app/cache/\n/app/cache/size\n/app/db\n',
    )
    const lsJson = JSON.parse(cairn(['kv', 'ls', 'app', '-o', 'json', ...e]).stdout)
    expect(lsJson).toMatchObject({ key: '/app', dir: true })
    expect(lsJson.nodes.map((n: { key: string }) => n.key)).toEqual(['/app/cache', '/app/db'])

    const notEmpty = cairn(['kv', 'rm', 'app', ...e])
    expect(notEmpty.code).toBe(1)
    expect(notEmpty.stderr).toBe('Error: Not a file (/app)\n')
    expect(cairn(['kv', 'rm', 'app', '--recursive', ...e])).toMatchObject({
      code: 0,
      stdout: 'deleted /app\n',
    })
    expect(cairn(['kv', 'ls', ...e])).toMatchObject({ code: 0, stdout: '' })
  })

  it('put --ttl sets an expiring key; rm --dir removes an empty directory', async () => {
    const url = await startAgent()
    const e = ['--endpoint', url]
    const withTtl = JSON.parse(cairn(['kv', 'put', 'lease', 'x', '--ttl', '60', '-o', 'json', ...e]).stdout)
    expect(withTtl).toMatchObject({ action: 'set', node: { key: '/lease', value: 'x', ttl: 60 } })
    expect(withTtl.node.expiration).toBeTypeOf('string')
    expect(cairn(['kv', 'put', 'lease', 'x', '--ttl', 'soon', ...e]).code).toBe(2)

    expect((await http('PUT', `${url}/v2/keys/empty`, 'dir=true'))?.status).toBe(201)
    expect(cairn(['kv', 'rm', 'empty', '--dir', ...e])).toMatchObject({ code: 0, stdout: 'deleted /empty\n' })
  })

  it('a missing key exits 1 with the etcd message and cause', async () => {
    const url = await startAgent()
    const run = cairn(['kv', 'get', 'nope'], { CAIRN_ENDPOINT: url }) // the endpoint from the environment
    expect(run).toMatchObject({ code: 1, stdout: '', stderr: 'Error: Key not found (/nope)\n' })
  })

  it('watch prints the first change made after it started, then exits', async () => {
    const url = await startAgent()
    const baseline = await agentWatchers(url)
    const watch = spawn(process.execPath, [cairnBin, 'kv', 'watch', 'jobs', '--recursive', '--endpoint', url])
    let stdout = ''
    watch.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    const exited = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)))
    try {
      await pollUntil(
        async () => ((await storeWatchers(url)) === baseline + 1 ? true : undefined),
        'the watch to be registered',
        20_000,
      )
      expect(await put(url, 'jobs/1', 'build')).toBe(true)
      expect(await exited).toBe(0)
      expect(stdout).toBe('set /jobs/1 build\n')
    } finally {
      watch.kill('SIGKILL')
    }
  })

  it('watch --forever follows modifiedIndex + 1 and misses no event between polls', async () => {
    const url = await startAgent()
    const baseline = await agentWatchers(url)
    const args = ['kv', 'watch', 'k', '--forever', '-o', 'json', '--endpoint', url]
    const watch = spawn(process.execPath, [cairnBin, ...args])
    let stdout = ''
    watch.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    try {
      await pollUntil(
        async () => ((await storeWatchers(url)) === baseline + 1 ? true : undefined),
        'the watch to be registered',
        20_000,
      )
      // Three writes back to back: the second and third land while the CLI is between polls.
      for (const v of ['a', 'b', 'c']) expect(await put(url, 'k', v)).toBe(true)
      const lines = await pollUntil(
        async () => {
          const l = stdout.split('\n').filter((s) => s !== '')
          return l.length >= 3 ? l : undefined
        },
        'three events',
        20_000,
      )
      expect(lines.map((l) => JSON.parse(l).node.value)).toEqual(['a', 'b', 'c'])
      expect(watch.exitCode).toBe(null)
    } finally {
      watch.kill('SIGKILL')
    }
  })
})

describe('cairn member and status', () => {
  it('member list shows the member and marks the leader; -o json parses', async () => {
    const url = await startAgent()
    await pollUntil(async () => (await memberPublished(url)) || undefined, 'the member to publish', 20_000)
    const table = cairn(['member', 'list', '--endpoint', url])
    expect(table.code).toBe(0)
    const [header, row] = table.stdout.trim().split('\n')
    expect(header).toMatch(/^ID\s+NAME\s+PEER URLS\s+CLIENT URLS\s+LEADER$/)
    expect(row).toMatch(new RegExp(`^[0-9a-f]+\\s+m1\\s+http://127\\.0\\.0\\.1:\\d+\\s+${url}\\s+\\*$`))

    const json = JSON.parse(cairn(['member', 'list', '-o', 'json', '--endpoint', url]).stdout)
    expect(json.members).toHaveLength(1)
    expect(json.members[0]).toMatchObject({ name: 'm1', clientURLs: [url] })
    expect(json.leader).toBe(json.members[0].id)
  })

  it('member add prints the flags that start the new member; started with them, it joins', async () => {
    const url = await startAgent()
    await pollUntil(async () => (await memberPublished(url)) || undefined, 'the member to publish', 20_000)
    const [peerPort, clientPort] = (await freePorts(2)) as [number, number]
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const added = cairn(['member', 'add', 'm2', peerUrl, '--endpoint', url])
    expect(added.stderr).toBe('')
    expect(added.code).toBe(0)
    expect(added.stdout).toMatch(new RegExp(`^added member [0-9a-f]+ \\(m2, ${peerUrl}\\)`))
    const startLine = added.stdout.split('\n').find((l) => l.startsWith('  cairn agent '))
    expect(startLine).toMatch(
      new RegExp(
        `^  cairn agent --server --name m2 --data-dir <dir> --peer-addr 127\\.0\\.0\\.1:${peerPort} ` +
          '--initial-cluster-state existing --cluster-id [0-9a-f]+ ' +
          `--initial-cluster m1=http://127\\.0\\.0\\.1:\\d+,m2=${peerUrl}$`,
      ),
    )

    // Start the member exactly as printed (plus this test cluster's token, timing and client port).
    const c = cluster!
    const args = startLine!.trim().split(' ').slice(1)
    args[args.indexOf('<dir>')] = `${c.dir}/m2`
    args.push('--client-addr', `127.0.0.1:${clientPort}`, '--initial-cluster-token', 'agent-test')
    args.push('--heartbeat-interval', '100', '--election-timeout', '1000')
    joiner = spawnCairn(args, 'm2')
    const joined = await pollUntil(
      async () => {
        const run = cairn(['status', '-o', 'json', '--endpoint', url])
        const rows = run.code === 0 ? JSON.parse(run.stdout).members : []
        return rows.length === 2 && rows.every((r: { status?: unknown }) => r.status) ? rows : undefined
      },
      'both members in cairn status',
      30_000,
      () => joiner?.output.join('') ?? '',
    )
    expect(joined.map((r: { status: { name: string } }) => r.status.name).sort()).toEqual(['m1', 'm2'])
    // Caught up: promoting it now works, unless the leader's promoter was quicker (then it is a voter).
    const newId = added.stdout.match(/^added member ([0-9a-f]+)/)![1]!
    const promote = cairn(['member', 'promote', newId, '--endpoint', url])
    if (promote.code === 0) expect(promote.stdout).toBe(`promoted member ${newId} to voter\n`)
    else expect(promote.stderr).toBe('Error: membership: member is not a learner\n')
    await pollUntil(
      async () => {
        const run = cairn(['status', '-o', 'json', '--endpoint', url])
        const voters: string[] =
          run.code === 0 ? (JSON.parse(run.stdout).members[0].status?.voters ?? []) : []
        return voters.includes(newId) ? true : undefined
      },
      'the new member to be a voter',
      20_000,
    )
    expect(cairn(['kv', 'put', 'after-join', 'yes', '--endpoint', url]).code).toBe(0)
    const secondUrl = `http://127.0.0.1:${clientPort}`
    await pollUntil(
      async () =>
        cairn(['kv', 'get', 'after-join', '--endpoint', secondUrl]).stdout === 'yes\n' ? true : undefined,
      'the new member to serve the key',
      20_000,
    )
  })

  it('member add and remove report the API errors', async () => {
    const url = await startAgent()
    await pollUntil(async () => (await memberPublished(url)) || undefined, 'the member to publish', 20_000)
    const taken = JSON.parse(cairn(['member', 'list', '-o', 'json', '--endpoint', url]).stdout).members[0]
      .peerURLs[0]
    const again = cairn(['member', 'add', 'm3', taken, '--endpoint', url])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe(`Error: membership: peerURL exists (${taken})\n`)

    const unknown = cairn(['member', 'remove', 'abc', '--endpoint', url])
    expect(unknown).toMatchObject({ code: 1, stderr: 'Error: membership: member not found\n' })
    expect(cairn(['member', 'remove', 'not-hex', '--endpoint', url]).code).toBe(2)
    expect(cairn(['member', 'add', 'm4', 'nope', '--endpoint', url]).code).toBe(2)
  })

  it('member promote: refused for a voter (409), an unknown id (404) and a learner not caught up (412)', async () => {
    const url = await startAgent()
    await pollUntil(async () => (await memberPublished(url)) || undefined, 'the member to publish', 20_000)
    const self = JSON.parse(cairn(['member', 'list', '-o', 'json', '--endpoint', url]).stdout).members[0].id
    expect(cairn(['member', 'promote', self, '--endpoint', url])).toMatchObject({
      code: 1,
      stderr: 'Error: membership: member is not a learner\n',
    })
    expect(cairn(['member', 'promote', 'abc', '--endpoint', url])).toMatchObject({
      code: 1,
      stderr: 'Error: membership: member not found\n',
    })
    expect(cairn(['member', 'promote', 'not-hex', '--endpoint', url]).code).toBe(2)
    // A learner that was added but never started has nothing: the leader refuses to count it.
    const [peerPort] = (await freePorts(1)) as [number]
    const added = JSON.parse(
      cairn(['member', 'add', 'm9', `http://127.0.0.1:${peerPort}`, '-o', 'json', '--endpoint', url]).stdout,
    ).member.id
    const early = cairn(['member', 'promote', added, '--endpoint', url])
    expect(early.code).toBe(1)
    expect(early.stderr).toContain('has not caught up with the leader yet')
    const status = JSON.parse(cairn(['status', '-o', 'json', '--endpoint', url]).stdout)
    expect(status.members.find((m: { id: string }) => m.id === added)).toBeDefined()
  })

  it('status prints one line per member and the cluster id', async () => {
    const url = await startAgent()
    await pollUntil(async () => (await memberPublished(url)) || undefined, 'the member to publish', 20_000)
    expect(await put(url, 'a', '1')).toBe(true)
    const revision = await modifiedIndexOf(url, 'a')
    const run = cairn(['status', '--endpoint', url])
    // The agent writes its own records too (catalog, machine lease), so the store may move between
    // the PUT and the status: what status prints must lie between the two, and is the PUT's
    // revision whenever nothing else was written.
    const after = await currentIndex(url)
    expect(run.code).toBe(0)
    const [header, row, clusterLine] = run.stdout.trim().split('\n')
    expect(header).toMatch(/^NAME\s+ID\s+ROLE\s+TERM\s+APPLIED\s+REVISION\s+LEADER$/)
    const printed = /^m1\s+([0-9a-f]+)\s+leader\s+\d+\s+\d+\s+(\d+)\s+\1$/.exec(row ?? '')
    expect(printed, row).not.toBeNull()
    const printedRevision = Number(printed?.[2])
    expect(printedRevision).toBeGreaterThanOrEqual(revision)
    expect(printedRevision).toBeLessThanOrEqual(after)
    if (after === revision) expect(printedRevision).toBe(revision)
    expect(clusterLine).toMatch(/^cluster id: [0-9a-f]+$/)

    const before = await currentIndex(url)
    const json = JSON.parse(cairn(['status', '-o', 'json', '--endpoint', url]).stdout)
    const afterJson = await currentIndex(url)
    expect(json.clusterId).toMatch(/^[0-9a-f]+$/)
    expect(json.members[0].status).toMatchObject({ name: 'm1', role: 'leader' })
    expect(json.members[0].status.revision).toBeGreaterThanOrEqual(before)
    expect(json.members[0].status.revision).toBeLessThanOrEqual(afterJson)
  })
})

describe('cairn client failures', () => {
  it('an unreachable endpoint exits 1 with the hint', async () => {
    const [port] = await freePorts(1)
    const endpoint = `http://127.0.0.1:${port}`
    for (const args of [['kv', 'get', 'k'], ['member', 'list'], ['status'], ['kv', 'watch', 'k']]) {
      const run = cairn([...args, '--endpoint', endpoint])
      expect(run.code).toBe(1)
      expect(run.stderr).toBe(`cannot reach ${endpoint}: is an agent running? (cairn agent --help)\n`)
    }
  })

  it.each([
    [['kv', 'get', 'k', '-o', 'yaml'], "argument 'yaml' is invalid"],
    [['kv', 'get'], "missing required argument 'key'"],
    [['kv', 'put', 'k', 'v', '--bogus'], "unknown option '--bogus'"],
    [['member', 'add', 'm2'], "missing required argument 'peer-url'"],
    [['kv', 'get', 'k', '--endpoint', 'not a url'], '--endpoint: "not a url" is not a URL'],
  ])('cairn %j exits 2 with the reason', (args, message) => {
    const run = cairn(args)
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(message)
  })
})

async function storeWatchers(url: string): Promise<number | undefined> {
  const res = await http('GET', `${url}/v2/stats/store`)
  return (res?.body as { watchers?: number } | undefined)?.watchers
}

/** The key's modifiedIndex as the agent serves it. */
/** The store's revision now: X-Etcd-Index of a GET of the root. */
async function currentIndex(url: string): Promise<number> {
  const res = await request(`${url}/v2/keys/`)
  await res.body.dump()
  const index = Number(res.headers['x-etcd-index'])
  if (!Number.isSafeInteger(index)) throw new Error('no X-Etcd-Index')
  return index
}

async function modifiedIndexOf(url: string, key: string): Promise<number> {
  const body = (await http('GET', `${url}/v2/keys/${key}`))?.body as
    | { node?: { modifiedIndex?: number } }
    | undefined
  const index = body?.node?.modifiedIndex
  if (index === undefined) throw new Error(`no modifiedIndex for ${key}`)
  return index
}

/** The watchers the agent holds for itself (its catalog copy, the lock-delay watch), once settled. */
async function agentWatchers(url: string): Promise<number> {
  return await pollUntil(
    async () => {
      const before = await storeWatchers(url)
      await new Promise((resolve) => setTimeout(resolve, 200))
      const after = await storeWatchers(url)
      return before !== undefined && before === after && before > 0 ? before : undefined
    },
    "the agent's own watchers",
    20_000,
  )
}

async function memberPublished(url: string): Promise<boolean> {
  const res = await http('GET', `${url}/v2/members`)
  const members = (res?.body as { members?: { clientURLs: string[] }[] } | undefined)?.members
  return members?.[0]?.clientURLs.length === 1
}
