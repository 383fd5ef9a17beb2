/**
 * /v2/stats/store counters, kept by this member's v2 surface (etcd kept them in its v2 store).
 *
 * Departure: etcd counted writes cluster-wide (in apply) and reads here; Cairn counts both for the
 * requests this member answered, and `expireCount` is not counted (expiry happens in apply, below
 * this layer). The counters are in memory and restart from 0, as etcd's.
 */
import type { CommandOp } from '../../kv/commands.ts'

export interface StoreStatsJson {
  getsSuccess: number
  getsFail: number
  setsSuccess: number
  setsFail: number
  deleteSuccess: number
  deleteFail: number
  updateSuccess: number
  updateFail: number
  createSuccess: number
  createFail: number
  compareAndSwapSuccess: number
  compareAndSwapFail: number
  compareAndDeleteSuccess: number
  compareAndDeleteFail: number
  expireCount: number
  watchers: number
}

type Counted = 'gets' | 'sets' | 'delete' | 'update' | 'create' | 'compareAndSwap' | 'compareAndDelete'

const counterOfOp: Partial<Record<CommandOp, Counted>> = {
  'v2.set': 'sets',
  'v2.create': 'create',
  'v2.update': 'update',
  'v2.cas': 'compareAndSwap',
  'v2.delete': 'delete',
  'v2.cad': 'compareAndDelete',
}

/** What a reader outside the v2 surface (the agent's /metrics) may see of the counters. */
export interface StoreStatsView {
  json(watchers: number): StoreStatsJson
}

export class StoreStats implements StoreStatsView {
  readonly #counts: Omit<StoreStatsJson, 'watchers'> = {
    getsSuccess: 0,
    getsFail: 0,
    setsSuccess: 0,
    setsFail: 0,
    deleteSuccess: 0,
    deleteFail: 0,
    updateSuccess: 0,
    updateFail: 0,
    createSuccess: 0,
    createFail: 0,
    compareAndSwapSuccess: 0,
    compareAndSwapFail: 0,
    compareAndDeleteSuccess: 0,
    compareAndDeleteFail: 0,
    expireCount: 0,
  }

  countGet(ok: boolean): void {
    this.#bump('gets', ok)
  }

  countWrite(op: CommandOp, ok: boolean): void {
    const name = counterOfOp[op]
    if (name !== undefined) this.#bump(name, ok)
  }

  json(watchers: number): StoreStatsJson {
    return { ...this.#counts, watchers }
  }

  #bump(name: Counted, ok: boolean): void {
    this.#counts[`${name}${ok ? 'Success' : 'Fail'}`]++
  }
}
