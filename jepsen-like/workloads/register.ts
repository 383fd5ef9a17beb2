/**
 * The register workload: independent keys, each a register under read (quorum=true), write and
 * compare-and-swap, with unique values, checked for linearizability per key.
 *
 * Keys rotate as in Jepsen's `independent`: `liveKeysCount` keys are in use at a time; a key that
 * has had `keyOpsMax` operations invoked is retired and a fresh key takes its place, so every
 * per-key history stays small enough for the linearizability search. A cas expects one of the last
 * values seen on its key (read or written by any client), so that some succeed; with no value seen
 * yet it is a write instead. After the heal, the final reader reads every key ever used once more.
 *
 * Invariants: every value written (write, or the new value of a cas) is unique in the run; a key's
 * op count never exceeds keyOpsMax (checked when the op is drawn).
 */
import type { Prng } from '../../src/raft/core/prng.ts'
import type { EtcdClient } from '../client.ts'
import {
  clientLoop,
  finalRead,
  finalReadsMs,
  makeClient,
  recordOp,
  UniqueValues,
  type Workload,
  type WorkloadContext,
} from './workload.ts'

/** Keys in use at the same time. */
export const liveKeysCount = 4
/** Operations invoked on one key before it is retired. */
export const keyOpsMax = 200
/** Recent values remembered per key for cas expectations. */
const recentValuesMax = 3
const keyPrefix = '/jepsen/register/'

interface KeyState {
  key: string
  ops: number
  recent: string[]
}

export class RegisterWorkload implements Workload {
  readonly name = 'register'
  readonly #ctx: WorkloadContext
  readonly #live: KeyState[] = []
  readonly #used: string[] = []
  #nextKey = 0

  constructor(ctx: WorkloadContext) {
    this.#ctx = ctx
    for (let i = 0; i < liveKeysCount; i++) this.#live.push(this.#freshKey())
  }

  async run(signal: AbortSignal): Promise<void> {
    const clients = Array.from({ length: this.#ctx.concurrency }, (_, process) => {
      const prng = this.#ctx.prng.fork()
      const client = makeClient(this.#ctx, process, prng)
      const values = new UniqueValues(process)
      return clientLoop(this.#ctx, prng, signal, () => this.#step(process, client, prng, values))
    })
    await Promise.all(clients)
  }

  async final(): Promise<void> {
    const process = this.#ctx.concurrency
    const prng = this.#ctx.prng.fork()
    const client = makeClient(this.#ctx, process, prng)
    const deadline = performance.now() + finalReadsMs
    for (const key of this.#used) {
      await finalRead(
        this.#ctx,
        client,
        { process, f: 'read', key, value: null },
        () => client.read(key),
        (v) => v,
        deadline,
      )
    }
  }

  async #step(process: number, client: EtcdClient, prng: Prng, values: UniqueValues): Promise<void> {
    const state = this.#drawKey(prng)
    const { key } = state
    const roll = prng.float()
    if (roll < 1 / 3) {
      const outcome = await recordOp(
        this.#ctx,
        client,
        { process, f: 'read', key, value: null },
        () => client.read(key),
        (v) => v,
      )
      if (outcome.type === 'ok' && outcome.value !== null) remember(state, outcome.value)
      return
    }
    const value = values.next()
    const expected = state.recent.length === 0 ? undefined : prng.pick(state.recent)
    if (roll < 2 / 3 || expected === undefined) {
      const outcome = await recordOp(this.#ctx, client, { process, f: 'write', key, value }, () =>
        client.write(key, value),
      )
      if (outcome.type === 'ok') remember(state, value)
      return
    }
    const outcome = await recordOp(
      this.#ctx,
      client,
      { process, f: 'cas', key, value: [expected, value] },
      () => client.cas(key, expected, value),
    )
    if (outcome.type === 'ok') remember(state, value)
  }

  /** A live key for one more operation; retires it (and opens a fresh one) at its limit. */
  #drawKey(prng: Prng): KeyState {
    const slot = prng.int(0, this.#live.length)
    let state = this.#live[slot] as KeyState
    if (state.ops >= keyOpsMax) {
      state = this.#freshKey()
      this.#live[slot] = state
    }
    state.ops++
    return state
  }

  #freshKey(): KeyState {
    const key = `${keyPrefix}${this.#nextKey++}`
    this.#used.push(key)
    return { key, ops: 0, recent: [] }
  }
}

function remember(state: KeyState, value: string): void {
  if (state.recent.includes(value)) return
  state.recent.push(value)
  if (state.recent.length > recentValuesMax) state.recent.shift()
}
