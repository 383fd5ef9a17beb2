/**
 * A member publishes its own attributes (name, peer and client URLs) through the log after it
 * starts, as etcd members do: `--initial-cluster` tells every founder the others' peer URLs but
 * not their client URLs, and clients (`etcdctl` syncs the member list before anything else) need
 * those. The record is replicated state, so every member answers /v2/members the same way.
 *
 * Invariants: at most one publish proposal is in flight (RaftNode parks it until a leader is
 * known); it stops once the recorded attributes equal this member's, or when stopped; failed
 * attempts back off from publishRetryMsMin up to publishRetryMsMax.
 */
import type { ReplicatedStore } from '../kv/replicated-store.ts'

/** Longest wait between two failed publish attempts. */
export const publishRetryMsMax = 2_000
/** First wait after a failed publish attempt. */
export const publishRetryMsMin = 50

export interface SelfAttributes {
  id: number
  name: string
  peerUrls: string[]
  clientUrls: string[]
}

export interface Publisher {
  /** Resolves once the attributes are recorded (or the publisher stopped). */
  readonly done: Promise<void>
  stop(): void
}

export function publishSelf(store: ReplicatedStore, self: SelfAttributes): Publisher {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let wake: (() => void) | undefined
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve
      timer = setTimeout(resolve, ms)
      timer.unref?.()
    })
  const done = (async () => {
    let retryMs = publishRetryMsMin
    while (!stopped && !isRecorded(store, self)) {
      try {
        // RaftNode holds a proposal until a leader is known, so no polling for one here.
        const { id, ...attributes } = self
        const result = await store.write({ op: 'member.update', nodeId: id, ...attributes })
        // Applied: the loop condition rechecks the record. Refused by the state machine (e.g. this
        // member's own addition is not applied here yet): back off like a failure, never spin.
        if (result.type === 'command' && result.ok) continue
      } catch {
        // Timed out (no quorum yet) or stopped: back off before trying again.
      }
      await sleep(retryMs)
      retryMs = Math.min(retryMs * 2, publishRetryMsMax)
    }
  })()
  return {
    done,
    stop() {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      wake?.()
    },
  }
}

function isRecorded(store: ReplicatedStore, self: SelfAttributes): boolean {
  const member = store.stateMachine.members().find((m) => m.id === self.id)
  if (member === undefined) return false
  return (
    member.name === self.name &&
    sameList(member.peerUrls, self.peerUrls) &&
    sameList(member.clientUrls, self.clientUrls)
  )
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
