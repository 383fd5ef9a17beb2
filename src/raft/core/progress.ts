/**
 * The leader's view of one follower: how much of the log it has, and how to send it more.
 *
 *   probe      one append in flight per heartbeat interval, until the follower's match is found
 *   replicate  optimistic pipelining: next moves ahead on send, up to the inflight window
 *   snapshot   a snapshot is on its way; nothing else is sent until it lands or fails
 *
 * Invariants: 0 <= match < next; in snapshot state pendingSnapshot > 0; inflights is empty unless
 * in replicate state.
 */
import { Inflights } from './inflights.ts'
import type { ProgressStatus } from './types.ts'

export type ProgressState = 'probe' | 'replicate' | 'snapshot'

export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append was sent and no answer came back yet. */
  probeSent = false
  pendingSnapshot = 0
  /** Heard from since the last check-quorum round. */
  recentActive = false
  isLearner: boolean
  readonly inflights: Inflights

  constructor(next: number, isLearner: boolean, inflightMsgsMax: number) {
    this.next = next
    this.isLearner = isLearner
    this.inflights = new Inflights(inflightMsgsMax)
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1)
    } else {
      this.next = this.match + 1
    }
    this.#resetState('probe')
  }

  becomeReplicate(): void {
    this.next = this.match + 1
    this.#resetState('replicate')
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState('snapshot')
    this.pendingSnapshot = snapshotIndex
  }

  #resetState(state: ProgressState): void {
    this.state = state
    this.probeSent = false
    this.pendingSnapshot = 0
    this.inflights.reset()
  }

  /** Records an acknowledgement up to index; returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false
    if (this.match < index) {
      this.match = index
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /**
   * Handles a rejection of the append that probed `rejected`; `matchHint` is the leader's best guess
   * of the follower's last matching index. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  /** Records that an append carrying entries up to lastIndex (or none) was sent. */
  sentEntries(entryCount: number, bytes: number, lastIndex: number): void {
    if (this.state === 'replicate' && entryCount > 0) {
      this.next = lastIndex + 1
      this.inflights.add(lastIndex, bytes)
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.full()
      case 'snapshot':
        return true
    }
  }

  status(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
    }
  }
}
