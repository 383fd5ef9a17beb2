/**
 * Nothing persisted is lost across a crash.
 *
 * Before a restarted node is built, the state its disk hands back must equal what the checkers saw
 * it persist (hard state, snapshot index, last index, last term, prefix hash of the whole log).
 * After the core is built from it, the core must report that same term, vote, commit and last index.
 * Pure functions over a LogShadow, so that tests can feed them tiny states.
 */
import type { PersistedState, Status } from '../../core/types.ts'
import { combineHash, entryHash } from '../hash.ts'
import type { Fail } from './fail.ts'
import type { LogShadow } from './log-shadow.ts'

export function checkRecovered(node: number, shadow: LogShadow, loaded: PersistedState, fail: Fail): void {
  const hs = loaded.hardState
  const want = shadow.hardState
  if (hs.term !== want.term || hs.vote !== want.vote || hs.commit !== want.commit) {
    fail('durability', `node ${node} recovered hard state ${fmt(hs)} but had persisted ${fmt(want)}`)
    return
  }
  const snapshotIndex = loaded.snapshot?.meta.index ?? 0
  if (snapshotIndex !== shadow.snapshotIndex) {
    fail(
      'durability',
      `node ${node} recovered snapshot ${snapshotIndex} but had persisted ${shadow.snapshotIndex}`,
    )
    return
  }
  const lastIndex = loaded.logStart.index + loaded.entries.length
  if (lastIndex !== shadow.lastIndex) {
    fail(
      'durability',
      `node ${node} recovered a log up to ${lastIndex} but had persisted up to ${shadow.lastIndex}`,
    )
    return
  }
  const startPrefix = shadow.prefixAt(loaded.logStart.index)
  if (startPrefix === undefined) {
    fail('durability', `node ${node} recovered log start ${loaded.logStart.index} it never persisted`)
    return
  }
  let prefix = startPrefix
  for (const entry of loaded.entries) prefix = combineHash(prefix, entryHash(entry))
  if (prefix !== shadow.lastPrefix)
    fail('durability', `node ${node} recovered log entries unlike the persisted ones`)
}

export function checkCoreRecovered(node: number, loaded: PersistedState, status: Status, fail: Fail): void {
  const hs = loaded.hardState
  const lastIndex = loaded.logStart.index + loaded.entries.length
  if (status.term !== hs.term || status.vote !== hs.vote || status.commit < hs.commit) {
    fail('durability', `node ${node} core started at ${fmt(status)} from persisted ${fmt(hs)}`)
  } else if (status.lastIndex !== lastIndex) {
    fail(
      'durability',
      `node ${node} core started with last index ${status.lastIndex}, persisted ${lastIndex}`,
    )
  }
}

function fmt(hs: { term: number; vote: number; commit: number }): string {
  return `{term ${hs.term}, vote ${hs.vote}, commit ${hs.commit}}`
}
