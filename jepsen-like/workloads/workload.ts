/**
 * What a workload is to the runner, and the pieces every workload shares: the context it runs in,
 * recording one client operation (invoke, then exactly one completion), and the client loop with
 * its seeded stagger.
 *
 * Invariants: a client process has one operation outstanding at a time (recordOp awaits the
 * completion before returning, and a client loop is sequential); process numbers 0..concurrency-1
 * are the clients, `concurrency` is the final reader; values written are unique in the run
 * (`uniqueValue` mixes the process and its own counter).
 */
import type { Agent } from 'undici'
import type { Prng } from '../../src/raft/core/prng.ts'
import { type Endpoint, EtcdClient, type Outcome } from '../client.ts'
import type { HistoryRecorder } from '../history.ts'

export const workloadNames = ['register', 'set', 'watch'] as const
export type WorkloadName = (typeof workloadNames)[number]

export interface WorkloadContext {
  recorder: HistoryRecorder
  endpoints: Endpoint[]
  /** Client processes (0..concurrency-1). */
  concurrency: number
  /** Target operations per second over all clients (each client staggers its own). */
  rate: number
  /** Length of the faulty phase, for workloads that schedule within it (watchers' starts). */
  timeMs: number
  prng: Prng
  clientTimeoutMs: number
  dispatcher: Agent
  log(line: string): void
}

export interface Workload {
  readonly name: WorkloadName
  /** Client operations until `signal` aborts; resolves once every client has finished its last op. */
  run(signal: AbortSignal): Promise<void>
  /** After the cluster is healed and quiet: the final reads (recorded in the history). */
  final(): Promise<void>
}

/** Longest the final reads of a workload may retry, all together (a healed cluster answers at once). */
export const finalReadsMs = 60_000

export function makeClient(ctx: WorkloadContext, process: number, prng: Prng): EtcdClient {
  return new EtcdClient({
    endpoints: ctx.endpoints,
    first: process,
    timeoutMs: ctx.clientTimeoutMs,
    random: () => prng.float(),
    dispatcher: ctx.dispatcher,
  })
}

export interface OpStart {
  process: number
  f: string
  key?: string
  value: unknown
}

/**
 * Records an invocation, runs it, records its completion. The completion's value is `okValue` of
 * the result for ok (default: the invoked value), the invoked value for fail and info.
 */
export async function recordOp<T>(
  ctx: WorkloadContext,
  client: EtcdClient,
  start: OpStart,
  run: () => Promise<Outcome<T>>,
  okValue: (value: T) => unknown = () => start.value,
): Promise<Outcome<T>> {
  const base = { process: start.process, f: start.f, ...(start.key === undefined ? {} : { key: start.key }) }
  ctx.recorder.record({ ...base, type: 'invoke', value: start.value, node: client.node })
  const outcome = await run()
  if (outcome.type === 'ok') {
    ctx.recorder.record({ ...base, type: 'ok', value: okValue(outcome.value), node: outcome.node })
  } else {
    ctx.recorder.record({
      ...base,
      type: outcome.type,
      value: start.value,
      error: outcome.error,
      node: outcome.node,
    })
  }
  return outcome
}

/** Runs `step` until the signal aborts, waiting a seeded stagger between steps. */
export async function clientLoop(
  ctx: WorkloadContext,
  prng: Prng,
  signal: AbortSignal,
  step: () => Promise<void>,
): Promise<void> {
  const meanGapMs = (1_000 * ctx.concurrency) / ctx.rate
  while (!signal.aborted) {
    await step()
    await sleep(prng.float() * 2 * meanGapMs, signal)
  }
}

/** Resolves after `ms`, or at once when the signal aborts (never rejects). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

export class UniqueValues {
  #next = 0
  readonly #process: number

  constructor(process: number) {
    this.#process = process
  }

  next(): string {
    return `${this.#process}.${this.#next++}`
  }
}

/**
 * Retries a read until it is ok or `deadline` (a performance.now() time) passes, recording every
 * attempt; the last outcome. Workloads with several final reads share one deadline.
 */
export async function finalRead<T>(
  ctx: WorkloadContext,
  client: EtcdClient,
  start: OpStart,
  run: () => Promise<Outcome<T>>,
  okValue?: (value: T) => unknown,
  deadline = performance.now() + finalReadsMs,
): Promise<Outcome<T>> {
  for (;;) {
    const outcome = await recordOp(ctx, client, start, run, okValue)
    if (outcome.type === 'ok' || performance.now() > deadline) return outcome
    await sleep(200)
  }
}
