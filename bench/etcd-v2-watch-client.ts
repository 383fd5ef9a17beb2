/**
 * bench/etcd-v2-watch-client: one worker thread of the watch fan-out client (etcd-v2-watch.ts).
 *
 * Reading thousands of responses at once costs the client about as much as it costs a server to
 * send them, so the watchers are split over a few threads, each with its own event loop. A thread
 * opens its share of the watches (`first` numbers its first watcher, so the round-robin over
 * members continues across threads), tells the parent when every head is in, and records for
 * each watcher the moment its response completed on the process-wide monotonic clock
 * (process.hrtime, the same clock in every thread of the process).
 *
 * Each watch is one plain TCP socket that writes one GET and reads one HTTP/1.1 response: the
 * status line of the head, then the body by Content-Length or by chunks, which is all a long poll
 * needs. An HTTP client library (undici) cost about 20 µs per response here, which put the row's
 * client floor near 90 ms for 5,000 watchers, above half of what either server took; this reader
 * costs a few µs, so the row measures the servers rather than the client.
 *
 * Messages: parent -> thread `start` (the PUT is about to be sent: begin measuring how busy this
 * thread is), `report` (send what you have now); thread -> parent `registered`,
 * `failed` (message), `done` (doneAtMs per watcher, NaN when missed, and the share of the time
 * since `start` this thread's event loop was busy). The parent ends the thread with terminate(),
 * which closes its sockets.
 */
import { connect, type Socket } from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'

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

/** Bytes of a response head or of a chunk-size line past which the response counts as broken. */
const headBytesMax = 16 * 1024

/**
 * Reads one HTTP/1.1 response from pushed bytes. `push` returns 'head' when the head came in and
 * the body is not complete yet, 'more' while the body still comes, 'done' when it is complete, and
 * 'broken' when the bytes are not a response this reader understands: among them a body with
 * neither Content-Length nor chunks (ended by the connection's close), which it would otherwise
 * take as complete at once and time too early.
 */
class ResponseReader {
  status = 0
  #pending: Buffer | undefined
  #headDone = false
  /** Content-Length body: bytes still to come. -1: chunked. */
  #left = 0
  /** Chunked body: bytes of the current chunk (with its CRLF) still to skip. */
  #skip = 0

  push(data: Buffer): 'more' | 'head' | 'done' | 'broken' {
    let buf = this.#pending === undefined ? data : Buffer.concat([this.#pending, data])
    this.#pending = undefined
    let sawHead = false
    if (!this.#headDone) {
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return this.#keep(buf, 'more')
      const head = buf.toString('latin1', 0, end)
      this.status = Number(head.slice(9, 12))
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head)
      if (length === null && !chunked) return 'broken'
      this.#left = length !== null ? Number(length[1]) : -1
      this.#headDone = true
      sawHead = true
      buf = buf.subarray(end + 4)
    }
    const outcome = this.#left >= 0 ? this.#readLength(buf) : this.#readChunks(buf)
    return outcome === 'more' && sawHead ? 'head' : outcome
  }

  #readLength(buf: Buffer): 'more' | 'done' {
    this.#left -= buf.length
    return this.#left <= 0 ? 'done' : 'more'
  }

  #readChunks(buf: Buffer): 'more' | 'done' | 'broken' {
    let at = 0
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, buf.length - at)
        this.#skip -= n
        at += n
        if (this.#skip > 0) return 'more'
      }
      const lineEnd = buf.indexOf('\r\n', at)
      if (lineEnd < 0) return this.#keep(buf.subarray(at), 'more')
      const size = Number.parseInt(buf.toString('latin1', at, lineEnd), 16)
      if (!Number.isFinite(size)) return 'broken'
      if (size === 0) return 'done' // the trailer's CRLF may follow; nothing else is read
      this.#skip = size + 2
      at = lineEnd + 2
    }
  }

  #keep<T extends string>(buf: Buffer, outcome: T): T | 'broken' {
    if (buf.length > headBytesMax) return 'broken'
    this.#pending = Buffer.from(buf)
    return outcome
  }
}

function openWatch(url: URL, path: string, doneAtMs: Float64Array, index: number): Watch {
  let resolveHead: (status: number) => void = () => {}
  let resolveDone: () => void = () => {}
  const head = new Promise<number>((resolve) => {
    resolveHead = resolve
  })
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const reader = new ResponseReader()
  const socket: Socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true })
  const fail = () => {
    resolveHead(0)
    resolveDone()
  }
  socket.on('error', fail)
  socket.on('close', fail)
  socket.on('data', (data: Buffer) => {
    const outcome = reader.push(data)
    if (outcome === 'head') {
      resolveHead(reader.status)
    } else if (outcome === 'done') {
      doneAtMs[index] = nowMs()
      resolveHead(reader.status)
      resolveDone() // the socket stays open: closing 5,000 of them would slow the tail it measures
    } else if (outcome === 'broken') {
      socket.destroy()
    }
  })
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: */*\r\n\r\n`)
  return { head, done }
}

async function run(data: WatchClientData, port: NonNullable<typeof parentPort>): Promise<void> {
  const urls = data.urls.map((u) => new URL(u))
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
      const url = urls[(data.first + i) % urls.length] as URL
      batch.push(openWatch(url, data.path, doneAtMs, i))
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
