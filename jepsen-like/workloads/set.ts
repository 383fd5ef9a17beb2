/**
 * The set workload: clients add unique elements to one set, each add an in-order key created by
 * POST under the set's directory (etcd v2's queue idiom; one write, no read-modify-write). After the
 * heal, the final reader lists the directory with a quorum read. The checker then asks: is every
 * acknowledged add present, and is every element present one that some client tried to add?
 *
 * Elements are integers, unique in the run (a shared counter); they are stored as their decimal
 * strings and read back as numbers (a stored value that is not a decimal integer is kept as the
 * string, so a corrupted value shows up as an element nobody added).
 */
import {
  clientLoop,
  finalRead,
  makeClient,
  recordOp,
  type Workload,
  type WorkloadContext,
} from './workload.ts'

export const setKey = '/jepsen/set'

export class SetWorkload implements Workload {
  readonly name = 'set'
  readonly #ctx: WorkloadContext
  #nextElement = 0

  constructor(ctx: WorkloadContext) {
    this.#ctx = ctx
  }

  async run(signal: AbortSignal): Promise<void> {
    const clients = Array.from({ length: this.#ctx.concurrency }, (_, process) => {
      const prng = this.#ctx.prng.fork()
      const client = makeClient(this.#ctx, process, prng)
      return clientLoop(this.#ctx, prng, signal, async () => {
        const element = this.#nextElement++
        await recordOp(this.#ctx, client, { process, f: 'add', key: setKey, value: element }, () =>
          client.add(setKey, String(element)),
        )
      })
    })
    await Promise.all(clients)
  }

  async final(): Promise<void> {
    const process = this.#ctx.concurrency
    const client = makeClient(this.#ctx, process, this.#ctx.prng.fork())
    await finalRead(
      this.#ctx,
      client,
      { process, f: 'read', key: setKey, value: null },
      () => client.list(setKey),
      (values) => values.map(elementOf),
    )
  }
}

function elementOf(text: string): number | string {
  return /^(0|[1-9][0-9]{0,14})$/.test(text) ? Number(text) : text
}
