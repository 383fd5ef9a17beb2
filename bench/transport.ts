/**
 * bench/transport: messages/s and MB/s between two TCP peer transports on loopback.
 *
 * Member 1 (this process) sends append messages to member 2 (a child process by default, as two
 * members would run; --same-process puts both in one event loop). Entries carry 256 bytes each,
 * 1 or 64 entries per message, `perSend` messages per send() call (one Ready's worth), with at most
 * a window of messages in flight (sent, not yet delivered to member 2's onMessage; at most 4096
 * messages and `windowBytes` of payload). Every message takes the whole path: batch encoding, the
 * socket, frame decoding, msgpackr decoding, validateMessage, onMessage. MB/s counts entry payload
 * bytes only (not framing or message fields).
 *
 * Then one 256 MiB snapshot is streamed and timed until the receiver's ack. A last, in-process section measures the batching choice: one frame holding an array of
 * messages (what the transport does) against one frame per message, encode + decode + validate.
 *
 *   npx tsx bench/transport.ts                       both entry counts, 3 s each
 *   npx tsx bench/transport.ts --seconds 1 --entries 64 --per-send 16 --window-bytes 4194304
 *   npx tsx bench/transport.ts --same-process
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Entry, Message } from '../src/raft/core/types.ts'
import { decodeBody, encodeBody } from '../src/raft/transport/message-codec.ts'
import { createPeerTransport } from '../src/raft/transport/tcp-transport.ts'
import { validateMessage } from '../src/raft/transport/validate.ts'

const entryBytes = 256
const quietLog = { warn() {}, info() {}, debug() {} }
const listen = { host: '127.0.0.1', port: 0 }
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

function events(onMessage: (m: Message) => void) {
  return { onMessage, onUnreachable() {}, onSnapshotStatus() {}, onPeerDown() {} }
}

const payload = new Uint8Array(entryBytes).fill(0x5a)

/** An append of `count` entries following `index` (entries are contiguous, as validation requires). */
function appendMessage(index: number, count: number): Message {
  const entries: Entry[] = new Array(count)
  for (let i = 0; i < count; i++)
    entries[i] = { index: index + 1 + i, term: 1, type: 'normal', data: payload }
  return { type: 'app', from: 1, to: 2, term: 1, index, logTerm: 1, commit: index, entries }
}

/** Member 2: counts delivered messages; `received()` is this process's view of that count. */
interface Receiver {
  address: { host: string; port: number }
  received(): number
  stop(): Promise<void>
}

async function localReceiver(): Promise<Receiver> {
  let received = 0
  const b = createPeerTransport({
    clusterId: 'bench',
    memberId: 2,
    listen,
    log: quietLog,
    events: events(() => received++),
  })
  const address = await b.start()
  return { address, received: () => received, stop: () => b.stop() }
}

/** Member 2 in a child process; it reports its count over IPC at most once per event-loop turn. */
async function childReceiver(): Promise<Receiver> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--receiver'], {
    execArgv: ['--import', 'tsx'],
  })
  let received = 0
  const address = await new Promise<{ host: string; port: number }>((resolve) => {
    child.on('message', (m: { address?: { host: string; port: number }; received?: number }) => {
      if (m.address !== undefined) resolve(m.address)
      if (m.received !== undefined) received = m.received
    })
  })
  return {
    address,
    received: () => received,
    stop: () => new Promise<void>((resolve) => child.once('exit', () => resolve()).kill()),
  }
}

async function receiverMain(): Promise<void> {
  let received = 0
  let reporting = false
  const report = () => {
    reporting = false
    process.send?.({ received })
  }
  const b = createPeerTransport({
    clusterId: 'bench',
    memberId: 2,
    listen,
    log: quietLog,
    events: events(() => {
      received++
      if (!reporting) {
        reporting = true
        setImmediate(report)
      }
    }),
  })
  process.send?.({ address: await b.start() })
}

interface Result {
  messages: number
  seconds: number
  messagesPerSecond: number
  megabytesPerSecond: number
  meanBatch: number
  dropped: number
}

async function run(
  receiver: Receiver,
  count: number,
  seconds: number,
  perSend: number,
  window: number,
): Promise<Result> {
  const a = createPeerTransport({
    clusterId: 'bench',
    memberId: 1,
    listen,
    log: quietLog,
    events: events(() => {}),
  })
  a.setPeer(2, receiver.address)
  const base = receiver.received()
  const received = () => receiver.received() - base
  // Messages the transport dropped (queue full while slow) never arrive: count them as settled.
  const dropped = () => a.stats().messagesDroppedQueueFull + a.stats().messagesDroppedUnreachable
  let sent = 1
  a.send([appendMessage(0, 0)])
  while (received() < 1) await tick() // connected
  const pump = async (until: number) => {
    while (performance.now() < until) {
      // Bounded per tick: a batch dropped at once (peer slow) frees the window again immediately.
      for (let n = 0; n < window / perSend && sent - received() - dropped() < window; n++) {
        const batch: Message[] = []
        for (let i = 0; i < perSend; i++) batch.push(appendMessage((sent + i) * count, count))
        a.send(batch)
        sent += perSend
      }
      await tick()
    }
    let progressAt = performance.now()
    let last = received()
    while (received() + dropped() < sent) {
      await tick()
      if (received() !== last) [last, progressAt] = [received(), performance.now()]
      if (performance.now() - progressAt > 5_000) throw new Error(`stalled: ${JSON.stringify(a.stats())}`)
    }
  }
  await pump(performance.now() + 300) // warm up the JIT
  const before = { stats: a.stats(), received: received() }
  const start = performance.now()
  await pump(start + seconds * 1000)
  const elapsed = (performance.now() - start) / 1000
  const after = a.stats()
  await a.stop()
  const messages = received() - before.received
  return {
    messages,
    seconds: elapsed,
    messagesPerSecond: messages / elapsed,
    megabytesPerSecond: (messages * count * entryBytes) / elapsed / 1e6,
    meanBatch:
      (after.messagesSent - before.stats.messagesSent) / (after.batchesSent - before.stats.batchesSent),
    dropped: after.messagesDroppedQueueFull - before.stats.messagesDroppedQueueFull,
  }
}

/** Streams one snapshot of `bytes` (1 MiB chunks) and times it until the receiver's ack. */
async function snapshotRun(receiver: Receiver, bytes: number): Promise<number> {
  let done: (ok: boolean) => void = () => {}
  const finished = new Promise<boolean>((resolve) => {
    done = resolve
  })
  const a = createPeerTransport({
    clusterId: 'bench',
    memberId: 1,
    listen,
    log: quietLog,
    events: { onMessage() {}, onUnreachable() {}, onSnapshotStatus: (_, ok) => done(ok), onPeerDown() {} },
  })
  a.setPeer(2, receiver.address)
  const data = new Uint8Array(bytes).fill(0x33)
  const meta = { index: 1, term: 1, confState: { voters: [1, 2], learners: [] } }
  const start = performance.now()
  a.send([{ type: 'snap', from: 1, to: 2, term: 1, snapshot: { meta, data } }])
  const ok = await finished
  const seconds = (performance.now() - start) / 1000
  await a.stop()
  if (!ok) throw new Error('snapshot failed')
  return bytes / seconds / 1e6
}

/** Encode + decode + validate of `perSend` messages: one array frame vs one frame per message. */
function compareFraming(count: number, perSend: number, seconds: number): void {
  const batch = Array.from({ length: perSend }, (_, i) => appendMessage(i * count, count))
  const time = (label: string, once: () => void) => {
    const start = performance.now()
    let rounds = 0
    while (performance.now() < start + seconds * 1000) {
      once()
      rounds++
    }
    const perSecond = (rounds * perSend) / ((performance.now() - start) / 1000)
    console.log(`  ${label.padEnd(30)} ${fmt(perSecond).padStart(10)} messages/s`)
  }
  console.log(`framing in process, ${perSend} appends of ${count} entries (encode + decode + validate):`)
  time('one frame holding an array', () => {
    for (const m of decodeBody(encodeBody(batch)) as unknown[]) validateMessage(m)
  })
  time('one frame per message', () => {
    for (const m of batch) validateMessage(decodeBody(encodeBody(m)))
  })
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      receiver: { type: 'boolean', default: false },
      'same-process': { type: 'boolean', default: false },
      seconds: { type: 'string', default: '3' },
      entries: { type: 'string' },
      'per-send': { type: 'string', default: '16' },
      'window-bytes': { type: 'string', default: String(2 * 1024 * 1024) },
    },
  })
  if (values.receiver) return receiverMain()
  const seconds = Number(values.seconds)
  const perSend = Number(values['per-send'])
  const windowBytes = Number(values['window-bytes'])
  const counts = values.entries === undefined ? [1, 64] : [Number(values.entries)]
  const where = values['same-process'] ? 'both in this process' : 'receiver in a child process'
  console.log(
    `transport: 2 members on loopback (${where}), ${entryBytes}-byte entries, ${perSend} appends per send(), ` +
      `window ${windowBytes} payload bytes, ${seconds} s each, node ${process.version}`,
  )
  const receiver = values['same-process'] ? await localReceiver() : await childReceiver()
  for (const count of counts) {
    const window = Math.max(perSend, Math.min(4096, Math.floor(windowBytes / (count * entryBytes))))
    const r = await run(receiver, count, seconds, perSend, window)
    console.log(
      `${String(count).padStart(3)} entries/append: ${fmt(r.messagesPerSecond).padStart(9)} messages/s ` +
        `${fmt(r.messagesPerSecond * count).padStart(10)} entries/s ${r.megabytesPerSecond.toFixed(1).padStart(6)} MB/s ` +
        `(${r.meanBatch.toFixed(1)} messages per frame, ${r.messages} in ${r.seconds.toFixed(2)} s, ${r.dropped} dropped)`,
    )
  }
  const snapshotBytes = 256 * 1024 * 1024
  const snapshotMBps = await snapshotRun(receiver, snapshotBytes)
  console.log(
    `snapshot of ${snapshotBytes / 1024 / 1024} MiB in 1 MiB chunks: ${snapshotMBps.toFixed(0)} MB/s (SHA-256 on both sides)`,
  )
  await receiver.stop()
  for (const count of counts) compareFraming(count, perSend, Math.min(1, seconds))
}

await main()
