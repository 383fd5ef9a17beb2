/**
 * The application state machine of the simulation: a key-value map fed by committed entries.
 *
 * A normal entry with data is one client write ({op, client, key, value} as JSON); an empty normal
 * entry is a leader's no-op; conf entries change membership (the core handles them) and change
 * nothing here. Every applied entry, of any kind, extends `chain`, a rolling hash of the applied
 * sequence, so two apps with equal (applied, chain) applied the same entries.
 *
 * Invariants: entries are applied in index order with no gaps (applied + 1 each time); a snapshot
 * carries (applied, chain, map) and restoring it reproduces them exactly.
 */
import type { Entry } from '../core/types.ts'
import { combineHash, emptyPrefixHash, entryHash } from './hash.ts'
import { SimViolation } from './violation.ts'

export interface ClientWrite {
  /** Unique operation id; a retry gets a fresh one. */
  op: number
  client: number
  key: string
  value: string
}

interface SnapshotData {
  applied: number
  chain: number
  kv: [string, string][]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeWrite(write: ClientWrite): Uint8Array {
  return encoder.encode(JSON.stringify(write))
}

/** The client write carried by an entry, or undefined for no-ops and conf entries. */
export function decodeWrite(entry: Entry): ClientWrite | undefined {
  if (entry.type !== 'normal' || entry.data.byteLength === 0) return undefined
  return JSON.parse(decoder.decode(entry.data)) as ClientWrite
}

export class KvApp {
  #applied: number
  #chain: number
  readonly #kv: Map<string, string>

  constructor(applied = 0, chain = emptyPrefixHash, kv = new Map<string, string>()) {
    this.#applied = applied
    this.#chain = chain
    this.#kv = kv
  }

  static fromSnapshot(data: Uint8Array): KvApp {
    const parsed = JSON.parse(decoder.decode(data)) as SnapshotData
    return new KvApp(parsed.applied, parsed.chain, new Map(parsed.kv))
  }

  get applied(): number {
    return this.#applied
  }

  get chain(): number {
    return this.#chain
  }

  get(key: string): string | undefined {
    return this.#kv.get(key)
  }

  /** Applies the next committed entry; returns the client write it carried, if any. */
  apply(entry: Entry): ClientWrite | undefined {
    if (entry.index !== this.#applied + 1) {
      throw new SimViolation('ready-contract', `applying entry ${entry.index} after ${this.#applied}`)
    }
    this.#applied = entry.index
    this.#chain = combineHash(this.#chain, entryHash(entry))
    const write = decodeWrite(entry)
    if (write !== undefined) this.#kv.set(write.key, write.value)
    return write
  }

  encodeSnapshot(): Uint8Array {
    const data: SnapshotData = { applied: this.#applied, chain: this.#chain, kv: [...this.#kv] }
    return encoder.encode(JSON.stringify(data))
  }
}
