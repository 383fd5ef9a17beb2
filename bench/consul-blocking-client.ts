/**
 * bench/consul-blocking-client: one worker thread of the blocking-query fan-out bench
 * (consul-blocking.ts). It opens its share of long polls (`GET <path>`, a blocking query with
 * ?index and a long ?wait) spread over the members, tells the parent once every request has been
 * written to its socket, and records when each response completed on the process-wide monotonic
 * clock. A blocking query sends no headers until it answers, so "sent" is the client's side of
 * "registered"; the parent also waits for the servers' own count of waiting queries.
 *
 * Messages: thread -> parent `sent`, `done` (doneAtMs per query, NaN when it failed).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { type Dispatcher, Pool } from 'undici'

export interface BlockingClientData {
  urls: string[]
  path: string
  first: number
  count: number
}

export type BlockingClientMessage =
  | { type: 'sent' }
  | { type: 'done'; doneAtMs: Float64Array; failed: number }

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

async function run(data: BlockingClientData, port: NonNullable<typeof parentPort>): Promise<void> {
  const perMember = Math.ceil(data.count / data.urls.length) + 1
  const pools = data.urls.map((url) => new Pool(url, { connections: perMember, pipelining: 1 }))
  const doneAtMs = new Float64Array(data.count).fill(Number.NaN)
  let sent = 0
  let failed = 0
  const all: Promise<void>[] = []
  for (let i = 0; i < data.count; i++) {
    const pool = pools[(data.first + i) % pools.length] as Pool
    all.push(
      new Promise<void>((resolve) => {
        pool.dispatch({ method: 'GET', path: data.path, headersTimeout: 0, bodyTimeout: 0 }, {
          onConnect() {},
          // undici calls it once the request is on the socket; its typings leave it out.
          onRequestSent() {
            if (++sent === data.count) port.postMessage({ type: 'sent' } satisfies BlockingClientMessage)
          },
          onHeaders(status) {
            if (status !== 200) failed++
            return true
          },
          onData() {
            return true
          },
          onComplete() {
            doneAtMs[i] = nowMs()
            resolve()
          },
          onError() {
            failed++
            resolve()
          },
        } as Dispatcher.DispatchHandlers)
      }),
    )
  }
  await Promise.all(all)
  port.postMessage({ type: 'done', doneAtMs, failed } satisfies BlockingClientMessage)
}

if (parentPort !== null) await run(workerData as BlockingClientData, parentPort)
