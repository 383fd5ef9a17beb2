/**
 * bench/consul-blocking: blocking-query fan-out (issue 5). A 3-member Cairn cluster; one service
 * `web` with a passing TTL check; N clients (default 10,000) hold `GET /v1/health/service/web
 * ?passing&index=X&wait=5m` spread over the three members; then one change (the check fails) and
 * the time until every client has its answer, from the moment the change was sent.
 *
 * Also one control: a change to ANOTHER service first, which must wake nobody (Cairn's blocking
 * queries return only when their own result changed); the bench fails if any query returned then.
 *
 * Consul is not packaged for Debian, so there is no side-by-side row; docs/bench.md ("Blocking
 * queries") has the figures and what the control shows.
 *
 *   npx tsx bench/consul-blocking.ts [--clients 10000] [--threads 4]
 */
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { request } from 'undici'
import type { BlockingClientData, BlockingClientMessage } from './consul-blocking-client.ts'
import { nowMs } from './consul-blocking-client.ts'
import { startCairnCluster } from './etcd-v2-cluster.ts'
import { percentiles } from './etcd-v2-percentiles.ts'

/** A worker thread does not inherit tsx's loader (Node 20): it registers tsx first, as bin/cairn does. */
const clientBootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.resolve('./consul-blocking-client.ts'))}) })`
const registerWaitMs = 120_000
const answerWaitMs = 60_000
/** After every request is on its socket, time for the servers to park them all. */
const settleMs = 2_000

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    threads: { type: 'string', default: String(Math.max(1, Math.min(4, cpus().length))) },
  },
})
const clients = Number(values.clients)
const threads = Number(values.threads)

async function put(url: string, path: string, body?: string): Promise<void> {
  const res = await request(`${url}${path}`, { method: 'PUT', body })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`PUT ${path}: ${res.statusCode} ${text}`)
}

async function indexOf(url: string): Promise<number> {
  const res = await request(`${url}/v1/health/service/web?passing`)
  const body = (await res.body.json()) as unknown[]
  if (body.length !== 1) throw new Error(`expected one passing instance, got ${body.length}`)
  return Number(res.headers['x-consul-index'])
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref()),
  ])
}

const cluster = await startCairnCluster()
const stop = () => cluster.stop()
process.once('SIGINT', () => void stop().then(() => process.exit(130)))
try {
  const [first] = cluster.clientUrls as [string]
  await withDeadline(
    (async () => {
      for (;;) {
        try {
          await put(
            first,
            '/v1/agent/service/register',
            JSON.stringify({
              Name: 'web',
              ID: 'web-1',
              Address: '10.0.0.1',
              Port: 80,
              Check: { TTL: '10m' },
            }),
          )
          return
        } catch {
          await new Promise((r) => setTimeout(r, 200))
        }
      }
    })(),
    30_000,
    'register web',
  )
  await put(first, '/v1/agent/check/pass/service:web-1')
  let index = 0
  for (const url of cluster.clientUrls) {
    for (let tries = 0; ; tries++) {
      try {
        index = Math.max(index, await indexOf(url))
        break
      } catch (error) {
        if (tries > 100) throw error
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }
  const path = `/v1/health/service/web?passing&index=${index}&wait=5m`
  const per = Math.ceil(clients / threads)
  const workers: { worker: Worker; messages: BlockingClientMessage[]; wake: () => void }[] = []
  for (let t = 0; t < threads; t++) {
    const count = Math.min(per, clients - t * per)
    if (count <= 0) break
    const data: BlockingClientData = { urls: cluster.clientUrls, path, first: t * per, count }
    const worker = new Worker(clientBootstrap, { eval: true, workerData: data })
    const entry = { worker, messages: [] as BlockingClientMessage[], wake: () => {} }
    worker.on('message', (m: BlockingClientMessage) => {
      entry.messages.push(m)
      entry.wake()
    })
    workers.push(entry)
  }
  const waitFor = (type: BlockingClientMessage['type'], ms: number) =>
    Promise.all(
      workers.map((w) =>
        withDeadline(
          new Promise<BlockingClientMessage>((resolve) => {
            const check = () => {
              const m = w.messages.find((x) => x.type === type)
              if (m !== undefined) resolve(m)
            }
            w.wake = check
            check()
          }),
          ms,
          `clients ${type}`,
        ),
      ),
    )
  const registerStart = nowMs()
  await waitFor('sent', registerWaitMs)
  await new Promise((r) => setTimeout(r, settleMs))
  const registerMs = nowMs() - registerStart

  // The control: another service changes; nobody may wake.
  await put(
    first,
    '/v1/agent/service/register',
    JSON.stringify({ Name: 'db', ID: 'db-1', Address: '10.0.0.2', Port: 5432 }),
  )
  await new Promise((r) => setTimeout(r, 1_000))
  const earlyDone = workers.some((w) => w.messages.some((m) => m.type === 'done'))

  const sentAt = nowMs()
  await put(first, '/v1/agent/check/fail/service:web-1')
  const reports = (await waitFor('done', answerWaitMs)) as Extract<BlockingClientMessage, { type: 'done' }>[]
  const latencies = reports.flatMap((r) =>
    [...r.doneAtMs].filter((t) => !Number.isNaN(t)).map((t) => t - sentAt),
  )
  const failed = reports.reduce((n, r) => n + r.failed, 0)
  const p = percentiles(latencies)
  const early = latencies.filter((l) => l < 0).length
  console.log(
    `blocking-query fan-out: ${clients} clients over ${cluster.clientUrls.length} members, ${threads} client threads`,
  )
  console.log(`  all parked in ${(registerMs / 1000).toFixed(1)} s (including ${settleMs} ms settle)`)
  console.log(
    `  another service changed: ${earlyDone || early > 0 ? `${early} queries returned (WRONG)` : 'no query returned'}`,
  )
  console.log(
    `  one change to all ${latencies.length} answered: p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms, last ${p.max.toFixed(1)} ms; failed ${failed}`,
  )
  for (const w of workers) await w.worker.terminate()
  if (earlyDone || early > 0 || failed > 0 || latencies.length !== clients) process.exitCode = 1
} finally {
  await stop()
}
