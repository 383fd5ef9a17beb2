/**
 * The keyspace: one tree of nodes (files and directories) under a global revision (the etcd index).
 *
 * This file holds the data and the low-level mutations only; the etcd v2 operations (v2-store.ts)
 * and the v3-style ones (mvcc.ts) decide what to change and which events to record.
 *
 * Invariants:
 *   - Every node's key is clean (key-path.ts); the root `/` always exists, is a directory and has
 *     revision 0. Each other node's parent exists and is a directory holding it under its base name.
 *   - `#nodes` maps every key to its node; `#files` holds exactly the keys of file nodes.
 *   - A node has a TTL deadline iff it is in `#ttl` with that deadline; a file has `lease !== 0` iff
 *     its key is in that lease's key set.
 *   - createRevision <= modRevision <= revision for every node; version >= 1.
 *   - `bytes` is the sum of node.sizeBytes over all nodes but the root.
 */
import { DeadlineIndex } from './deadline-index.ts'
import { baseName, isCleanKey, parentKey, rootKey } from './key-path.ts'
import { KvError } from './kv-error.ts'
import { LeaseTable } from './leases.ts'
import { kvLimits, utf8Bytes } from './limits.ts'
import { SortedKeys } from './sorted-keys.ts'

export interface KvNode {
  readonly key: string
  readonly dir: boolean
  /** '' for directories. */
  value: string
  readonly createRevision: number
  modRevision: number
  /** 1 when created, +1 per modification. */
  version: number
  /** Absolute TTL deadline (ms since the epoch), or undefined for a permanent node. */
  deadlineMs: number | undefined
  /** Attached lease id, 0 for none (files only). */
  lease: number
  /** Bytes charged against kvLimits.keyspaceBytesMax. */
  sizeBytes: number
  /** Children by base name (directories only). */
  readonly children: Map<string, KvNode> | undefined
}

/** A node as a snapshot records it. */
export interface NodeRecord {
  key: string
  dir: boolean
  value: string
  createRevision: number
  modRevision: number
  version: number
  deadlineMs: number | undefined
  lease: number
}

export interface NewNode {
  dir: boolean
  value: string
  revision: number
  deadlineMs: number | undefined
  lease: number
}

export class Keyspace {
  /** The global revision: +1 per applied write that changed something. */
  revision = 0
  readonly leases = new LeaseTable()
  readonly root: KvNode
  #nodes = new Map<string, KvNode>()
  #files = new SortedKeys()
  #ttl = new DeadlineIndex()
  #bytes = 0
  readonly #bytesMax: number

  /** `bytesMax` is kvLimits.keyspaceBytesMax; only unit tests pass a smaller one. */
  constructor(bytesMax: number = kvLimits.keyspaceBytesMax) {
    this.#bytesMax = bytesMax
    this.root = makeNode(rootKey, { dir: true, value: '', revision: 0, deadlineMs: undefined, lease: 0 })
    this.root.sizeBytes = 0
    this.#nodes.set(rootKey, this.root)
  }

  get bytes(): number {
    return this.#bytes
  }

  get nodeCount(): number {
    return this.#nodes.size
  }

  get fileCount(): number {
    return this.#files.size
  }

  get(key: string): KvNode | undefined {
    return this.#nodes.get(key)
  }

  /** etcd's internalGet: the node, or KV_KEY_NOT_FOUND / KV_NOT_DIR naming the first bad path. */
  resolve(key: string): KvNode {
    const node = this.#nodes.get(key)
    if (node !== undefined) return node
    let parent = this.root
    let path = ''
    for (const segment of key.slice(1).split('/')) {
      if (!parent.dir) throw new KvError('KV_NOT_DIR', parent.key, this.revision)
      path = `${path}/${segment}`
      const child = parent.children?.get(segment)
      if (child === undefined) throw new KvError('KV_KEY_NOT_FOUND', path, this.revision)
      parent = child
    }
    return parent
  }

  /** Throws KV_NOT_DIR if a strict ancestor of `key` is a file (etcd's checkDir walk). */
  checkAncestors(key: string): void {
    let parent = this.root
    const segments = key.slice(1).split('/')
    for (let i = 0; i < segments.length - 1; i++) {
      const child = parent.children?.get(segments[i] as string)
      if (child === undefined) return
      if (!child.dir) throw new KvError('KV_NOT_DIR', child.key, this.revision)
      parent = child
    }
  }

  /** Throws KV_SPACE_EXCEEDED if adding `addBytes` would pass keyspaceBytesMax. */
  checkSpace(addBytes: number): void {
    if (addBytes > 0 && this.#bytes + addBytes > this.#bytesMax) {
      throw new KvError('KV_SPACE_EXCEEDED', `${this.#bytes} bytes held`, this.revision)
    }
  }

  /** Bytes a new node at `key` and its missing ancestor directories would add. */
  growthOf(key: string, value: string): number {
    let bytes = nodeSizeBytes(key, value)
    for (let k = parentKey(key); !this.#nodes.has(k); k = parentKey(k)) bytes += nodeSizeBytes(k, '')
    return bytes
  }

  /**
   * Creates `key` (absent) and any missing ancestor directories, all at `fields.revision`.
   * The caller has checked ancestors (checkAncestors) and limits.
   */
  insert(key: string, fields: NewNode): KvNode {
    if (this.#nodes.has(key)) throw new Error(`keyspace: insert over existing ${key}`)
    const parent = this.#ensureDir(parentKey(key), fields.revision)
    const node = makeNode(key, fields)
    parent.children?.set(baseName(key), node)
    this.#nodes.set(key, node)
    this.#bytes += node.sizeBytes
    if (!node.dir) this.#files.add(key)
    if (node.deadlineMs !== undefined) this.#ttl.set(key, node.deadlineMs)
    if (node.lease !== 0) this.leases.attach(node.lease, key)
    return node
  }

  /**
   * Puts a new file node in the place of the file `existing` (etcd v2's set over a file: new
   * revisions, version 1, the new deadline and lease). The keys, the set of files and the parent's
   * children's names stay as they were, so only the maps' entries and the counts change.
   * The caller has checked limits.
   */
  replaceFile(existing: KvNode, fields: NewNode): KvNode {
    const key = existing.key
    if (existing.dir || fields.dir || this.#nodes.get(key) !== existing)
      throw new Error(`keyspace: replaceFile needs a file in the keyspace and a file, at ${key}`)
    const slash = key.lastIndexOf('/')
    const parent = this.#nodes.get(slash === 0 ? rootKey : key.slice(0, slash))
    if (parent?.children === undefined) throw new Error(`keyspace: ${key} has no parent directory`)
    const node = makeNode(key, fields)
    parent.children.set(key.slice(slash + 1), node)
    this.#nodes.set(key, node)
    this.#bytes += node.sizeBytes - existing.sizeBytes
    if (existing.deadlineMs !== undefined || node.deadlineMs !== undefined)
      this.#ttl.set(key, node.deadlineMs)
    if (existing.lease !== 0) this.leases.detach(existing.lease, key)
    if (node.lease !== 0) this.leases.attach(node.lease, key)
    return node
  }

  /**
   * Restore only: adds a node exactly as a snapshot recorded it. Its parent must be loaded already
   * and its lease granted; throws KV_SNAPSHOT_INVALID for a record that breaks an invariant.
   */
  load(record: NodeRecord): void {
    const parent = this.#nodes.get(parentKey(record.key))
    const bad = (why: string) => new KvError('KV_SNAPSHOT_INVALID', `node ${record.key}: ${why}`, 0)
    if (record.key === rootKey || !isCleanKey(record.key)) throw bad('not a clean key')
    if (this.#nodes.has(record.key)) throw bad('listed twice')
    if (parent === undefined || !parent.dir) throw bad('no parent directory')
    if (
      record.version < 1 ||
      record.createRevision > record.modRevision ||
      record.modRevision > this.revision
    ) {
      throw bad('bad revisions')
    }
    if (record.lease !== 0 && (record.dir || this.leases.get(record.lease) === undefined))
      throw bad('bad lease')
    const node = makeNode(record.key, { ...record, revision: record.createRevision })
    node.modRevision = record.modRevision
    node.version = record.version
    parent.children?.set(baseName(record.key), node)
    this.#nodes.set(record.key, node)
    this.#bytes += node.sizeBytes
    if (!node.dir) this.#files.add(record.key)
    if (node.deadlineMs !== undefined) this.#ttl.set(record.key, node.deadlineMs)
    if (node.lease !== 0) this.leases.attach(node.lease, record.key)
  }

  /** Replaces a file's value (or only bumps a directory's revision) at `revision`. */
  write(node: KvNode, value: string, revision: number): void {
    if (!node.dir) {
      const sizeBytes = nodeSizeBytes(node.key, value)
      this.#bytes += sizeBytes - node.sizeBytes
      node.sizeBytes = sizeBytes
      node.value = value
    }
    node.modRevision = revision
    node.version++
  }

  setDeadline(node: KvNode, deadlineMs: number | undefined): void {
    node.deadlineMs = deadlineMs
    this.#ttl.set(node.key, deadlineMs)
  }

  setLease(node: KvNode, lease: number): void {
    if (node.lease === lease) return
    if (node.lease !== 0) this.leases.detach(node.lease, node.key)
    node.lease = lease
    if (lease !== 0) this.leases.attach(lease, node.key)
  }

  /** Removes the node and everything below it; returns how many nodes were removed. */
  removeSubtree(node: KvNode): number {
    if (node === this.root) throw new Error('keyspace: removing the root')
    this.#parentOf(node).children?.delete(baseName(node.key))
    let removed = 0
    const stack = [node]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      if (next.children !== undefined) for (const child of next.children.values()) stack.push(child)
      this.#forget(next)
      removed++
    }
    return removed
  }

  /** File keys in [start, end) in key order ('\0' end: unbounded). */
  fileKeys(start: string, end: string): Generator<string> {
    return this.#files.range(start, end)
  }

  /** Keys whose TTL deadline is <= nowMs, earliest first. */
  ttlDue(nowMs: number, countMax: number): string[] {
    return this.#ttl.due(nowMs, countMax)
  }

  /**
   * Every node but the root, parents before children (key order). The files come already sorted
   * from `#files`; only the directories (few, as a rule) are sorted here, then the two are merged.
   */
  sortedNodes(): KvNode[] {
    const dirs: string[] = []
    for (const [key, node] of this.#nodes) if (node.dir && key !== rootKey) dirs.push(key)
    dirs.sort()
    const nodes: KvNode[] = []
    let d = 0
    for (const file of this.#files) {
      while (d < dirs.length && (dirs[d] as string) < file)
        nodes.push(this.#nodes.get(dirs[d++] as string) as KvNode)
      nodes.push(this.#nodes.get(file) as KvNode)
    }
    while (d < dirs.length) nodes.push(this.#nodes.get(dirs[d++] as string) as KvNode)
    return nodes
  }

  #parentOf(node: KvNode): KvNode {
    const parent = this.#nodes.get(parentKey(node.key))
    if (parent === undefined || !parent.dir) throw new Error(`keyspace: ${node.key} has no parent directory`)
    return parent
  }

  #ensureDir(key: string, revision: number): KvNode {
    const existing = this.#nodes.get(key)
    if (existing !== undefined) {
      if (!existing.dir) throw new Error(`keyspace: ${key} is a file`)
      return existing
    }
    return this.insert(key, { dir: true, value: '', revision, deadlineMs: undefined, lease: 0 })
  }

  #forget(node: KvNode): void {
    this.#nodes.delete(node.key)
    this.#bytes -= node.sizeBytes
    if (!node.dir) this.#files.delete(node.key)
    if (node.deadlineMs !== undefined) this.#ttl.set(node.key, undefined)
    if (node.lease !== 0) this.leases.detach(node.lease, node.key)
  }
}

export function nodeSizeBytes(key: string, value: string): number {
  return kvLimits.nodeOverheadBytes + utf8Bytes(key) + (value === '' ? 0 : utf8Bytes(value))
}

function makeNode(key: string, fields: NewNode): KvNode {
  return {
    key,
    dir: fields.dir,
    value: fields.dir ? '' : fields.value,
    createRevision: fields.revision,
    modRevision: fields.revision,
    version: 1,
    deadlineMs: fields.deadlineMs,
    lease: fields.lease,
    sizeBytes: nodeSizeBytes(key, fields.dir ? '' : fields.value),
    children: fields.dir ? new Map() : undefined,
  }
}
