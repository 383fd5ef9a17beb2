/**
 * What one command's apply works with: the keyspace, the proposer's stamped clock, and the events
 * it records (appended to the history and handed to watchers once the command is done).
 *
 * Invariant: revisions are taken only through nextRevision(), and only once a change is certain
 * (every check that can fail comes first), so a failed or no-op command never uses a revision.
 */
import type { KvEvent } from './events.ts'
import type { Keyspace } from './keyspace.ts'

export class ApplyContext {
  readonly keyspace: Keyspace
  /** The proposer's wall clock when it stamped the command (ms since the epoch). */
  readonly nowMs: number
  readonly events: KvEvent[] = []

  constructor(keyspace: Keyspace, nowMs: number) {
    this.keyspace = keyspace
    this.nowMs = nowMs
  }

  /** Starts the next revision and returns it. */
  nextRevision(): number {
    this.keyspace.revision++
    return this.keyspace.revision
  }

  record(event: KvEvent): void {
    this.events.push(event)
  }

  /** The absolute deadline of a TTL given in ms, or undefined for none. */
  deadlineOf(ttlMs: number | undefined): number | undefined {
    return ttlMs === undefined ? undefined : this.nowMs + ttlMs
  }
}
