/**
 * Random workloads for the kv property tests (not a test file itself): a fast-check arbitrary of
 * steps (commands of every kind over a small key universe, leader expiries, no-ops, membership
 * changes, clock advances), and a runner that turns each step into one log entry and applies it to
 * several state machines, returning a comparable summary of every outcome.
 */
import fc from 'fast-check'
import type { ConfChange, Entry } from '../raft/core/types.ts'
import { type Command, encodeCommand } from './commands.ts'
import type { UnstampedCommand } from './local-kv-store.ts'
import { encodeMemberContext } from './members.ts'
import { packValue } from './msgpack.ts'
import type { ApplyResult, KvStateMachine } from './state-machine.ts'

export type Step =
  | { kind: 'command'; advanceMs: number; command: UnstampedCommand }
  | { kind: 'expire'; advanceMs: number }
  | { kind: 'noop'; advanceMs: number }
  | { kind: 'conf'; advanceMs: number; change: ConfChange }

const keys = ['/a', '/a/b', '/a/b/c', '/b', '/_h', '/_h/x', '/q', '/d/e', '/d']
const key = fc.constantFrom(...keys)
const value = fc.constantFrom('', 'x', 'y', 'zz', 'v'.repeat(40))
const ttlMs = fc.option(fc.integer({ min: 0, max: 5000 }), { nil: undefined })
const lease = fc.integer({ min: 1, max: 4 })
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined })

/** Drops undefined fields, as a proposer would before encoding. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

const v2Command: fc.Arbitrary<UnstampedCommand> = fc.oneof(
  fc.record({
    op: fc.constant('v2.set' as const),
    key,
    value,
    dir: fc.boolean(),
    ttlMs,
    refresh: maybe(fc.boolean()),
  }),
  fc.record({
    op: fc.constant('v2.create' as const),
    key,
    value,
    dir: fc.boolean(),
    ttlMs,
    unique: maybe(fc.boolean()),
  }),
  fc.record({ op: fc.constant('v2.update' as const), key, value, ttlMs, refresh: maybe(fc.boolean()) }),
  fc.record({
    op: fc.constant('v2.cas' as const),
    key,
    value,
    prevValue: maybe(value),
    prevIndex: maybe(fc.integer({ min: 0, max: 30 })),
    ttlMs,
  }),
  fc.record({
    op: fc.constant('v2.delete' as const),
    key,
    dir: maybe(fc.boolean()),
    recursive: maybe(fc.boolean()),
  }),
  fc.record({
    op: fc.constant('v2.cad' as const),
    key,
    prevValue: maybe(value),
    prevIndex: maybe(fc.integer({ min: 0, max: 30 })),
  }),
)

const v3Key = fc.constantFrom('/a', '/a/b', '/b', '/v/1', '/v/2', '/v/3')
const txnOp = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: v3Key, value }),
  fc.record({ type: fc.constant('delete' as const), key: v3Key }),
  fc.record({ type: fc.constant('range' as const), key: fc.constant('/'), rangeEnd: fc.constant('\0') }),
)

const v3Command: fc.Arbitrary<UnstampedCommand> = fc.oneof(
  fc.record({
    op: fc.constant('put' as const),
    key: v3Key,
    value,
    lease: maybe(lease),
    prevKv: maybe(fc.boolean()),
  }),
  fc.record({ op: fc.constant('delete' as const), key: fc.constant('/v/'), rangeEnd: fc.constant('/v0') }),
  fc.record({
    op: fc.constant('txn' as const),
    compare: fc.array(
      fc.record({
        key: v3Key,
        target: fc.constantFrom('version' as const, 'modRevision' as const, 'createRevision' as const),
        result: fc.constantFrom('equal' as const, 'greater' as const, 'less' as const),
        value: fc.integer({ min: 0, max: 10 }),
      }),
      { maxLength: 2 },
    ),
    success: fc.array(txnOp, { maxLength: 3 }),
    failure: fc.array(txnOp, { maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant('lease.grant' as const),
    lease: maybe(lease),
    ttlMs: fc.integer({ min: 1, max: 4000 }),
  }),
  fc.record({ op: fc.constant('lease.keepAlive' as const), lease }),
  fc.record({ op: fc.constant('lease.revoke' as const), lease }),
  fc.record({
    op: fc.constant('member.update' as const),
    nodeId: fc.integer({ min: 1, max: 3 }),
    name: maybe(fc.constantFrom('n1', 'n2')),
  }),
  fc.record({ op: fc.constant('compact' as const), revision: fc.integer({ min: 0, max: 20 }) }),
)

const advanceMs = fc.constantFrom(0, 0, 10, 500, 1500, 4000)

export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      advanceMs,
      command: v2Command.map(defined),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      advanceMs,
      command: v3Command.map(defined),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('expire' as const), advanceMs }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('noop' as const), advanceMs }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('conf' as const),
      advanceMs,
      change: fc.record({
        type: fc.constantFrom('addVoter' as const, 'addLearner' as const, 'removeNode' as const),
        nodeId: fc.integer({ min: 1, max: 3 }),
        context: fc.constant(
          encodeMemberContext({ name: 'm', peerUrls: ['http://10.0.0.1:7001'], clientUrls: [] }),
        ),
      }),
    }),
  },
)

/** Applies each step as the next entry to every state machine (in order); returns summaries per machine. */
export function runSteps(
  machines: readonly KvStateMachine[],
  steps: readonly Step[],
  clock: { nowMs: number },
): unknown[][] {
  const out: unknown[][] = machines.map(() => [])
  let request = 0
  for (const step of steps) {
    clock.nowMs += step.advanceMs
    const entry = entryFor(machines[0] as KvStateMachine, step, clock.nowMs, `r${request++}`)
    if (entry === undefined) continue
    machines.forEach((sm, i) => {
      if (sm.appliedIndex + 1 !== entry.index) throw new Error('machines out of step')
      out[i]?.push(summarize(sm.apply(entry)))
    })
  }
  return out
}

function entryFor(leader: KvStateMachine, step: Step, nowMs: number, id: string): Entry | undefined {
  const base = { index: leader.appliedIndex + 1, term: 1 }
  switch (step.kind) {
    case 'noop':
      return { ...base, type: 'normal', data: new Uint8Array(0) }
    case 'conf':
      return { ...base, type: 'conf', data: new Uint8Array(0), change: step.change }
    case 'expire': {
      const command = leader.expireCommand(id, nowMs)
      return command === undefined ? undefined : { ...base, type: 'normal', data: encodeCommand(command) }
    }
    case 'command': {
      const command = { ...step.command, id, now: nowMs } as unknown as Command
      let data: Uint8Array
      try {
        data = encodeCommand(command)
      } catch {
        data = packValue(command) // let apply reject it, as it would a bad proposal
      }
      return { ...base, type: 'normal', data }
    }
  }
}

/** A plain, comparable form of an apply outcome. */
export function summarize(outcome: ApplyResult): unknown {
  if (outcome.type === 'command' && !outcome.ok) {
    return {
      id: outcome.id,
      error: outcome.error.code,
      cause: outcome.error.etcdCause,
      index: outcome.error.index,
    }
  }
  if (outcome.type === 'invalid') return { invalid: outcome.error.code }
  return JSON.parse(JSON.stringify(outcome))
}
