/**
 * A change event: what one write did to one node, at one revision.
 *
 * The same object is returned to the proposer, kept in the history and handed to every matching
 * watcher; its etcd JSON is built once, lazily, and shared (encode once, fan out). The JSON's `ttl`
 * is computed against the proposer's stamped clock (`nowMs`), as etcd computed it when the event
 * happened, so it is the same on every member.
 *
 * Invariants: immutable after construction; `revision` >= 1; node.modifiedIndex === revision.
 */
import { renderEvent } from './v2-json.ts'
import type { V2Node, V2WriteAction } from './v2-node.ts'

/** Fixed accounting per event against historyBytesMax, beyond the keys and values it carries. */
export const eventOverheadBytes = 128

export class KvEvent {
  readonly action: V2WriteAction
  readonly revision: number
  readonly node: V2Node
  readonly prevNode: V2Node | undefined
  /** A refresh: kept in the history (it used a revision) but never delivered to watchers. */
  readonly refresh: boolean
  /** The proposer's clock when the command was stamped. */
  readonly nowMs: number
  /** Approximate bytes held, for historyBytesMax. */
  readonly sizeBytes: number
  #json: string | undefined

  constructor(
    action: V2WriteAction,
    revision: number,
    node: V2Node,
    prevNode: V2Node | undefined,
    nowMs: number,
    refresh = false,
  ) {
    if (node.modifiedIndex !== revision) throw new Error('kv event: node.modifiedIndex must be the revision')
    this.action = action
    this.revision = revision
    this.node = node
    this.prevNode = prevNode
    this.nowMs = nowMs
    this.refresh = refresh
    this.sizeBytes = eventOverheadBytes + viewBytes(node) + (prevNode === undefined ? 0 : viewBytes(prevNode))
  }

  get key(): string {
    return this.node.key
  }

  /** A deletion or expiry of a directory: every key below it is gone too. */
  get removesDir(): boolean {
    return (
      (this.action === 'delete' || this.action === 'expire' || this.action === 'compareAndDelete') &&
      this.prevNode?.dir === true
    )
  }

  /** The etcd v2 JSON of this event (without a trailing newline), built once. */
  json(): string {
    if (this.#json === undefined) this.#json = JSON.stringify(renderEvent(this, this.nowMs))
    return this.#json
  }
}

/** UTF-16 code units of the key and value: a cheap, deterministic stand-in for their bytes. */
function viewBytes(view: V2Node): number {
  return view.key.length + (view.value === undefined ? 0 : view.value.length)
}
