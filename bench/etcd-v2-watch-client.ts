/**
 * bench/etcd-v2-watch-client: one worker thread of the watch fan-out client (etcd-v2-watch.ts).
 *
 * Reading thousands of responses at once costs the client about as much as it costs a server to
 * send them, so the watchers are split over a few threads, each with its own event loop and
 * undici pools. A thread opens its share of the watches (`first` numbers its first watcher, so
 * the round-robin over members continues across threads), tells the parent when every head is
 * in, and records for each watcher the moment its response completed on the process-wide
 * monotonic clock (process.hrtime, the same clock in every thread of the process).
 *
 * Messages: parent -> thread `start` (the PUT is about to be sent: begin measuring how busy this
 * thread is), `report` (send what you have now); thread -> parent `registered`,
 * `failed` (message), `done` (doneAtMs per watcher, NaN when missed, and the share of the time
 * since `start` this thread's event loop was busy). The parent ends the thread with terminate(),
 * which closes its sockets.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Pool } from 'undici'

export interface WatchClientData {
  urls: string[]
  path: string
  first: number
  count: number
  registerBatch: number
}

export type WatchClientMessage =
  | { type: 'registered' }
  | { type: 'failed'; message: string }
  | { type: 'done'; doneAtMs: Float64Array; busy: number }

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

interface Watch {
  head: Promise<number>
  done: Promise<void>
}

function openWatch(pool: Pool, path: string, doneAtMs: Float64Array, index: number): Watch {
  let resolveHead: (status: number) => void = () => {}
  let resolveDone: () => void = () => {}
  const head = new Promise<number>((resolve) => {
    resolveHead = resolve
  })
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  pool.dispatch(
    { method: 'GET', path, headersTimeout: 0, bodyTimeout: 0 },
    {
      onConnect() {},
      onHeaders(status) {
        resolveHead(status)
        return true
      },
      onData() {
        return true
      },
      onComplete() {
        doneAtMs[index] = nowMs()
        resolveDone()
      },
      onError() {
        resolveHead(0)
        resolveDone()
      },
    },
  )
  return { head, done }
}

async function run(data: WatchClientData, port: NonNullable<typeof parentPort>): Promise<void> {
  const perMember = Math.ceil(data.count / data.urls.length) + 1
  const pools = data.urls.map((url) => new Pool(url, { connections: perMember, pipelining: 1 }))
  const doneAtMs = new Float64Array(data.count).fill(Number.NaN)
  let elu = performance.eventLoopUtilization()
  let reported = false
  const report = () => {
    if (reported) return
    reported = true
    const busy = performance.eventLoopUtilization(elu).utilization
    port.postMessage({ type: 'done', doneAtMs, busy } satisfies WatchClientMessage)
  }
  port.on('message', (message: string) => {
    if (message === 'start') elu = performance.eventLoopUtilization()
    if (message === 'report') report()
  })
  const watches: Watch[] = []
  for (let first = 0; first < data.count; first += data.registerBatch) {
    const batch: Watch[] = []
    for (let i = first; i < Math.min(data.count, first + data.registerBatch); i++) {
      const pool = pools[(data.first + i) % pools.length] as Pool
      batch.push(openWatch(pool, data.path, doneAtMs, i))
    }
    const heads = await Promise.all(batch.map((w) => w.head))
    const bad = heads.find((status) => status !== 200)
    if (bad !== undefined) {
      const message = `a watch was refused: ${bad === 0 ? 'connection error' : `HTTP ${bad}`}`
      port.postMessage({ type: 'failed', message } satisfies WatchClientMessage)
      return
    }
    watches.push(...batch)
  }
  port.postMessage({ type: 'registered' } satisfies WatchClientMessage)
  await Promise.all(watches.map((w) => w.done))
  report()
}

if (parentPort !== null) await run(workerData as WatchClientData, parentPort)
