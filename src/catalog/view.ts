/**
 * The catalog read model: what the DNS front end (and later the API) reads to answer a query
 * without a Raft round trip. The agent keeps a MemoryCatalogView up to date from a keyspace watch
 * on the catalog prefix; readers only ever see a whole, consistent view.
 *
 * Invariants:
 * - `revision` starts at 0 and increases by exactly one on every call that changed the view
 *   (a set that stored a different value, a remove that removed something); a reader that saw
 *   revision r and sees r again may reuse anything it derived from the view.
 * - Names compare case-insensitively (ASCII), as DNS names do: `Web` and `web` are one service.
 *   Node names and instance ids are unique per view; an instance belongs to exactly one service.
 * - Every address is a valid IPv4 or IPv6 literal (checked on set); ports are 1..65535.
 * - Returned arrays and objects are fresh or frozen: callers may keep them, never mutate the view
 *   through them. Lookups are O(instances of that service), never O(catalog).
 */
import { isIP } from 'node:net'

export type HealthStatus = 'passing' | 'warning' | 'critical'

export interface ServiceInstance {
  /** Unique in the view (Consul's service ID). */
  readonly id: string
  readonly service: string
  readonly node: string
  /** IPv4 or IPv6 literal. */
  readonly address: string
  readonly port: number
  readonly tags: readonly string[]
  /** Aggregated: the worst of the instance's and its node's checks. */
  readonly status: HealthStatus
}

export interface CatalogNode {
  readonly name: string
  /** IPv4 or IPv6 literal. */
  readonly address: string
  readonly meta: Readonly<Record<string, string>>
}

export interface CatalogView {
  /** Changes (increases) whenever anything a lookup could return has changed. */
  readonly revision: number
  /** Instances of `service` (every status), optionally only those carrying `tag`. Empty if unknown. */
  serviceInstances(service: string, tag?: string): readonly ServiceInstance[]
  /** Whether any instance of `service` is registered, whatever its status. */
  hasService(service: string): boolean
  node(name: string): CatalogNode | undefined
}

/** An in-memory view with set/remove methods; the agent will feed it from a keyspace watch. */
export class MemoryCatalogView implements CatalogView {
  #revision = 0
  /** Lower-cased service name → instance id → instance. */
  readonly #services = new Map<string, Map<string, ServiceInstance>>()
  /** Instance id → lower-cased service name, so an id moved to another service leaves the old one. */
  readonly #serviceOfInstance = new Map<string, string>()
  /** Lower-cased node name → node. */
  readonly #nodes = new Map<string, CatalogNode>()

  get revision(): number {
    return this.#revision
  }

  serviceInstances(service: string, tag?: string): readonly ServiceInstance[] {
    const instances = this.#services.get(service.toLowerCase())
    if (instances === undefined) return []
    const all = [...instances.values()]
    if (tag === undefined) return all
    const wanted = tag.toLowerCase()
    return all.filter((instance) => instance.tags.some((t) => t.toLowerCase() === wanted))
  }

  hasService(service: string): boolean {
    return this.#services.has(service.toLowerCase())
  }

  node(name: string): CatalogNode | undefined {
    return this.#nodes.get(name.toLowerCase())
  }

  /** Adds or replaces the instance with this id. */
  setInstance(instance: ServiceInstance): void {
    assertAddress(instance.address)
    if (!Number.isInteger(instance.port) || instance.port < 1 || instance.port > 65535) {
      throw new RangeError(`port out of range: ${instance.port}`)
    }
    const stored: ServiceInstance = Object.freeze({ ...instance, tags: Object.freeze([...instance.tags]) })
    const key = instance.service.toLowerCase()
    const previous = this.#services.get(this.#serviceOfInstance.get(instance.id) ?? '')?.get(instance.id)
    if (previous !== undefined && sameInstance(previous, stored)) return
    if (previous !== undefined) this.#removeInstance(instance.id)
    let instances = this.#services.get(key)
    if (instances === undefined) this.#services.set(key, (instances = new Map()))
    instances.set(instance.id, stored)
    this.#serviceOfInstance.set(instance.id, key)
    this.#revision++
  }

  /** Returns whether an instance with this id existed. */
  removeInstance(id: string): boolean {
    if (!this.#removeInstance(id)) return false
    this.#revision++
    return true
  }

  setNode(node: CatalogNode): void {
    assertAddress(node.address)
    const stored: CatalogNode = Object.freeze({ ...node, meta: Object.freeze({ ...node.meta }) })
    const previous = this.#nodes.get(node.name.toLowerCase())
    if (previous !== undefined && sameNode(previous, stored)) return
    this.#nodes.set(node.name.toLowerCase(), stored)
    this.#revision++
  }

  /** Removes the node (not its instances: the catalog removes those with their own events). */
  removeNode(name: string): boolean {
    if (!this.#nodes.delete(name.toLowerCase())) return false
    this.#revision++
    return true
  }

  #removeInstance(id: string): boolean {
    const key = this.#serviceOfInstance.get(id)
    if (key === undefined) return false
    const instances = this.#services.get(key)!
    instances.delete(id)
    if (instances.size === 0) this.#services.delete(key)
    this.#serviceOfInstance.delete(id)
    return true
  }
}

function assertAddress(address: string): void {
  if (isIP(address) === 0) throw new TypeError(`not an IPv4 or IPv6 address: ${address}`)
}

function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  return (
    a.service === b.service &&
    a.node === b.node &&
    a.address === b.address &&
    a.port === b.port &&
    a.status === b.status &&
    a.tags.length === b.tags.length &&
    a.tags.every((tag, i) => tag === b.tags[i])
  )
}

function sameNode(a: CatalogNode, b: CatalogNode): boolean {
  const keys = Object.keys(a.meta)
  return (
    a.name === b.name &&
    a.address === b.address &&
    keys.length === Object.keys(b.meta).length &&
    keys.every((k) => b.meta[k] === a.meta[k])
  )
}
