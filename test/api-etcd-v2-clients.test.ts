/**
 * Real clients against a real Cairn member serving the etcd v2 API:
 *   - the `node-etcd` package (callback API): set, get, mkdir, ls, del, compareAndSwap, a watch
 *     that fires, and its Watcher helper;
 *   - `etcdctl` in v2 mode (ETCDCTL_API=2, --no-sync): set, get, mk, mkdir, ls, update, rm, rmdir,
 *     watch, member list, cluster-health; skipped with a message when etcdctl is not installed.
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiCluster, startApiCluster } from './api-harness.ts'
import { etcdctlAvailable } from './helpers/etcd.ts'

const require = createRequire(import.meta.url)
/** What these tests read from node-etcd's parsed replies. */
interface Reply {
  action: string
  node: { key: string; value?: string; dir?: boolean; nodes: { key: string }[] }
}
type Callback = (error: (Error & { errorCode?: number }) | null, body: Reply, headers?: unknown) => void
interface NodeEtcd {
  set(key: string, value: string, options: object, cb: Callback): void
  get(key: string, options: object, cb: Callback): void
  mkdir(key: string, options: object, cb: Callback): void
  del(key: string, options: object, cb: Callback): void
  compareAndSwap(key: string, value: string, old: string, options: object, cb: Callback): void
  watch(key: string, options: object, cb: Callback): void
  watcher(
    key: string,
    index?: number | null,
    options?: object,
  ): {
    on(event: string, cb: (value: Reply) => void): void
    stop(): void
  }
}
const Etcd = require('node-etcd') as new (hosts: string[]) => NodeEtcd

function call(
  fn: (cb: Callback) => void,
): Promise<{ error: (Error & { errorCode?: number }) | null; body: Reply }> {
  return new Promise((resolve) => fn((error, body) => resolve({ error, body })))
}

let cluster: ApiCluster
let base: string

beforeAll(async () => {
  cluster = await startApiCluster(1)
  await cluster.leader()
  base = cluster.members[0]!.url
})
afterAll(async () => {
  await cluster.stop()
})

describe('node-etcd', () => {
  it('set, get, mkdir, ls, compareAndSwap, del', async () => {
    const etcd = new Etcd([base.replace('http://', '')])
    expect((await call((cb) => etcd.set('ne/a', 'one', {}, cb))).body).toMatchObject({ action: 'set' })
    expect((await call((cb) => etcd.get('ne/a', {}, cb))).body.node.value).toBe('one')
    expect((await call((cb) => etcd.mkdir('ne/dir', {}, cb))).body.node.dir).toBe(true)
    const ls = await call((cb) => etcd.get('ne', { recursive: true }, cb))
    expect(ls.body.node.nodes.map((n: { key: string }) => n.key)).toEqual(['/ne/a', '/ne/dir'])
    const swapped = await call((cb) => etcd.compareAndSwap('ne/a', 'two', 'one', {}, cb))
    expect(swapped.body).toMatchObject({ action: 'compareAndSwap', node: { value: 'two' } })
    const refused = await call((cb) => etcd.compareAndSwap('ne/a', 'three', 'one', {}, cb))
    expect(refused.error?.errorCode).toBe(101)
    expect((await call((cb) => etcd.del('ne/a', {}, cb))).body.action).toBe('delete')
    const gone = await call((cb) => etcd.get('ne/a', {}, cb))
    expect(gone.error?.errorCode).toBe(100)
  })

  it('watch returns the next change; the Watcher helper follows changes', async () => {
    const etcd = new Etcd([base.replace('http://', '')])
    const fired = call((cb) => etcd.watch('ne/w', {}, cb))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call((cb) => etcd.set('ne/w', 'v1', {}, cb))
    expect((await fired).body).toMatchObject({ action: 'set', node: { value: 'v1' } })

    const watcher = etcd.watcher('ne/w2')
    const seen: string[] = []
    const two = new Promise<void>((resolve) =>
      watcher.on('change', (event: Reply) => {
        seen.push(event.node.value ?? '')
        if (seen.length === 2) resolve()
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call((cb) => etcd.set('ne/w2', 'a', {}, cb))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await call((cb) => etcd.set('ne/w2', 'b', {}, cb))
    await two
    watcher.stop()
    expect(seen).toEqual(['a', 'b'])
  })
})

const haveEtcdctl = etcdctlAvailable()
if (!haveEtcdctl) console.warn('api-etcd-v2-clients: etcdctl is not installed; the etcdctl tests are skipped')

/** Runs etcdctl asynchronously (the server is in this process: a sync spawn would block it). */
function etcdctl(...args: string[]): Promise<{ status: number | null; out: string; err: string }> {
  const child = spawn('etcdctl', ['--endpoints', base, ...args], {
    env: { ...process.env, ETCDCTL_API: '2' },
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, out, err })))
}

const ctl = (...args: string[]) => etcdctl('--no-sync', ...args)

describe.skipIf(!haveEtcdctl)('etcdctl v2', () => {
  it('set, get, mk, mkdir, ls, update, rm, rmdir', async () => {
    expect(await ctl('set', '/ctl/a', 'one')).toMatchObject({ status: 0, out: 'one\n' })
    expect(await ctl('get', '/ctl/a')).toMatchObject({ status: 0, out: 'one\n' })
    expect(await ctl('mk', '/ctl/b', 'two')).toMatchObject({ status: 0, out: 'two\n' })
    const again = await ctl('mk', '/ctl/b', 'two')
    expect(again.status).not.toBe(0)
    expect(again.err).toContain('Key already exists')
    expect((await ctl('mkdir', '/ctl/d')).status).toBe(0)
    expect(await ctl('ls', '/ctl')).toMatchObject({ status: 0, out: '/ctl/a\n/ctl/b\n/ctl/d\n' })
    expect(await ctl('update', '/ctl/a', 'uno')).toMatchObject({ status: 0, out: 'uno\n' })
    expect((await ctl('update', '/ctl/none', 'x')).err).toContain('Key not found')
    expect((await ctl('rm', '/ctl/a')).status).toBe(0)
    expect((await ctl('get', '/ctl/a')).err).toContain('Key not found')
    expect((await ctl('rmdir', '/ctl/d')).status).toBe(0)
    expect(await ctl('ls', '/ctl')).toMatchObject({ status: 0, out: '/ctl/b\n' })
  })

  it('watch prints the next value', async () => {
    const child = spawn('etcdctl', ['--endpoints', base, '--no-sync', 'watch', '/ctl/w'], {
      env: { ...process.env, ETCDCTL_API: '2' },
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const deadline = Date.now() + 10_000
    while (cluster.members[0]!.sm.watcherCount === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await fetch(`${base}/v2/keys/ctl/w`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'value=seen',
    })
    expect(await exited).toBe(0)
    expect(out).toBe('seen\n')
  })

  it('member list and cluster-health (with and without --no-sync)', async () => {
    const list = await ctl('member', 'list')
    expect(list.status).toBe(0)
    expect(list.out).toContain(`name=m1`)
    expect(list.out).toContain(`clientURLs=${base}`)
    const health = await ctl('cluster-health')
    expect(health.status).toBe(0)
    expect(health.out).toContain('cluster is healthy')
    const synced = await etcdctl('get', '/ctl/b')
    expect(synced).toMatchObject({ status: 0, out: 'two\n' })
  })
})
