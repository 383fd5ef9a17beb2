/**
 * The store API that client agents use, against real `cairn agent --server` processes: a
 * RemoteKvStore given all three members writes, reads and watches through them, and its watch
 * carries on across a kill -9 of the member it was streaming from, with no event lost or repeated.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { RemoteKvStore } from '../src/kv/remote-kv-store.ts'
import { AgentCluster, pollUntil } from './helpers/agent-processes.ts'

let cluster: AgentCluster | undefined
let remote: RemoteKvStore | undefined

afterEach(async () => {
  await remote?.close()
  remote = undefined
  await cluster?.destroy()
  cluster = undefined
})

/** A write retried only when a read shows it was not applied (a retried write could apply twice). */
async function putOnce(store: RemoteKvStore, key: string, value: string): Promise<void> {
  await pollUntil(
    async () => {
      try {
        await store.put({ key, value })
        return true
      } catch {
        const now = await store.range({ key }).catch(() => undefined)
        return now?.kvs[0]?.value === value ? true : undefined
      }
    },
    `write ${key}`,
    15_000,
  )
}

describe('the store API across real agents', () => {
  it('writes, reads and watches through the servers, and a watch survives the loss of its server', async () => {
    const c = await AgentCluster.create(3)
    cluster = c
    c.startAll()
    await c.leader()
    const store = new RemoteKvStore({ servers: c.names.map((n) => c.clientUrl(n)) })
    remote = store
    const first = await pollUntil(
      async () => store.put({ key: '/app/k0', value: 'v0' }).catch(() => undefined),
      'a first write',
      10_000,
    )
    const watcher = store.watch({ key: '/app', recursive: true, stream: true, sinceRevision: first.revision })
    const seen: string[] = []
    const take = () => {
      for (const event of watcher.take()) seen.push(`${event.key}=${event.node.value}`)
    }
    watcher.setListener(() => queueMicrotask(take))
    for (let i = 1; i <= 20; i++) await store.put({ key: `/app/k${i}`, value: `v${i}` })
    await pollUntil(async () => (seen.length >= 21 ? true : undefined), '21 events', 10_000)

    const victim = c.names.find((n) => c.clientUrl(n) === store.currentServer)
    expect(victim).toBeDefined()
    await c.kill(victim as string, 'SIGKILL')
    for (let i = 21; i <= 40; i++) await putOnce(store, `/app/k${i}`, `v${i}`)
    await pollUntil(
      async () => (seen.length >= 41 ? true : undefined),
      '41 events',
      15_000,
      () => c.outputs(),
    )
    expect(seen).toEqual(Array.from({ length: 41 }, (_, i) => `/app/k${i}=v${i}`))
    const range = await store.range({ key: '/app/', rangeEnd: '/app0' })
    expect(range.count).toBe(41)
    expect(watcher.status).toBe('live')
  })
})
