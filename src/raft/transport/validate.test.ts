/**
 * Proves validateMessage, the gate between the network and the core: every well-formed message of
 * every type passes unchanged (directly and through the msgpackr wire codec); any value of the
 * wrong type in any field of any message type is rejected; random values and random bytes are
 * rejected without throwing; unknown fields are stripped.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ConfChange, Entry, Message } from '../core/types.ts'
import { decodeBody, encodeBody } from './message-codec.ts'
import { everyMessageType } from './test-support.ts'
import { validateMessage } from './validate.ts'

/** Plain objects only: validateMessage builds plain objects, toStrictEqual compares prototypes. */
function record<T>(
  model: { [K in keyof T]: fc.Arbitrary<T[K]> },
  requiredKeys?: (keyof T)[],
): fc.Arbitrary<T> {
  return fc.record(model, {
    noNullPrototype: true,
    ...(requiredKeys ? { requiredKeys } : {}),
  }) as fc.Arbitrary<T>
}

const count = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat())
const nodeId = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
const bytes = fc.uint8Array({ maxLength: 40 })

const confChange: fc.Arbitrary<ConfChange> = record(
  {
    type: fc.constantFrom('addVoter', 'addLearner', 'removeNode') as fc.Arbitrary<ConfChange['type']>,
    nodeId,
    context: bytes,
  },
  ['type', 'nodeId'],
)

const entry: fc.Arbitrary<Entry> = fc.oneof(
  record({ index: count, term: count, type: fc.constant('normal' as const), data: bytes }),
  record({
    index: count,
    term: count,
    type: fc.constant('conf' as const),
    data: bytes,
    change: confChange,
  }),
)

const base = { from: nodeId, to: nodeId, term: count }
const snapshot = record({
  meta: record({
    index: count,
    term: count,
    confState: record({
      voters: fc.array(nodeId, { maxLength: 5 }),
      learners: fc.array(nodeId, { maxLength: 3 }),
    }),
  }),
  data: bytes,
})

const anyMessage: fc.Arbitrary<Message> = fc.oneof(
  record({
    ...base,
    type: fc.constant('app' as const),
    index: fc.oneof(fc.nat({ max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER - 5)),
    logTerm: count,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: count,
  }).map((m) => ({ ...m, entries: m.entries.map((e, i) => ({ ...e, index: m.index + 1 + i })) })),
  record({
    ...base,
    type: fc.constant('appResp' as const),
    index: count,
    reject: fc.boolean(),
    rejectHint: count,
    logTerm: count,
  }),
  record({
    ...base,
    type: fc.constantFrom('vote' as const, 'preVote' as const),
    lastLogIndex: count,
    lastLogTerm: count,
    force: fc.boolean(),
  }),
  record({
    ...base,
    type: fc.constantFrom('voteResp' as const, 'preVoteResp' as const),
    reject: fc.boolean(),
  }),
  record({ ...base, type: fc.constant('heartbeat' as const), commit: count, readRound: count }),
  record({ ...base, type: fc.constant('heartbeatResp' as const), readRound: count }),
  record({ ...base, type: fc.constant('snap' as const), snapshot }),
  record({ ...base, type: fc.constant('prop' as const), entries: fc.array(entry, { maxLength: 5 }) }),
  record({ ...base, type: fc.constant('readIndex' as const), ctx: fc.string() }),
  record({ ...base, type: fc.constant('readIndexResp' as const), ctx: fc.string(), index: count }),
  record({ ...base, type: fc.constant('timeoutNow' as const) }),
  record({ ...base, type: fc.constant('transferLeader' as const), transferee: nodeId }),
)

/** What a field must hold, for the corruption property. */
type Kind = 'count' | 'nodeId' | 'bool' | 'string' | 'bytes' | 'optionalBytes' | 'array' | 'tag' | 'record'

const wrongValues: Record<Kind, readonly unknown[]> = {
  count: [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null, undefined, true, 1n, {}, []],
  nodeId: [0, -1, 1.5, Number.NaN, 2 ** 53, '1', null, undefined, false, 1n, {}, []],
  bool: [0, 1, 'true', null, undefined, {}, []],
  string: [1, null, undefined, {}, [], new Uint8Array(1), true],
  bytes: ['abc', [1, 2], null, undefined, {}, 1, new Uint16Array(2), new Uint8ClampedArray(2)],
  optionalBytes: ['abc', [1, 2], null, {}, 1, new Uint16Array(2)],
  array: ['x', {}, null, undefined, 1, { length: 1, 0: 1 }, new Uint8Array(1)],
  tag: ['APP', '', 'toString', '__proto__', null, undefined, 1, {}],
  record: [null, undefined, 1, 'x', [], new Uint8Array(1), true],
}

type Path = (string | number)[]

/** Every field of a well-formed message, with the kind of value it must hold. */
function fieldsOf(message: Message): { path: Path; kind: Kind }[] {
  const fields: { path: Path; kind: Kind }[] = [
    { path: ['type'], kind: 'tag' },
    { path: ['from'], kind: 'nodeId' },
    { path: ['to'], kind: 'nodeId' },
    { path: ['term'], kind: 'count' },
  ]
  const kinds: Record<string, Kind> = {
    index: 'count',
    logTerm: 'count',
    commit: 'count',
    rejectHint: 'count',
    lastLogIndex: 'count',
    lastLogTerm: 'count',
    readRound: 'count',
    reject: 'bool',
    force: 'bool',
    ctx: 'string',
    transferee: 'nodeId',
    entries: 'array',
    snapshot: 'record',
  }
  for (const key of Object.keys(message)) {
    const kind = kinds[key]
    if (kind !== undefined) fields.push({ path: [key], kind })
  }
  if ('entries' in message) {
    message.entries.forEach((e, i) => {
      const at = (...rest: Path) => ['entries', i, ...rest]
      fields.push({ path: at(), kind: 'record' }, { path: at('index'), kind: 'count' })
      fields.push(
        { path: at('term'), kind: 'count' },
        { path: at('type'), kind: 'tag' },
        { path: at('data'), kind: 'bytes' },
      )
      if (e.change !== undefined) {
        fields.push({ path: at('change'), kind: 'record' }, { path: at('change', 'type'), kind: 'tag' })
        fields.push(
          { path: at('change', 'nodeId'), kind: 'nodeId' },
          { path: at('change', 'context'), kind: 'optionalBytes' },
        )
      }
    })
  }
  if (message.type === 'snap') {
    const { voters, learners } = message.snapshot.meta.confState
    fields.push({ path: ['snapshot', 'data'], kind: 'bytes' }, { path: ['snapshot', 'meta'], kind: 'record' })
    fields.push(
      { path: ['snapshot', 'meta', 'index'], kind: 'count' },
      { path: ['snapshot', 'meta', 'term'], kind: 'count' },
    )
    fields.push({ path: ['snapshot', 'meta', 'confState'], kind: 'record' })
    fields.push({ path: ['snapshot', 'meta', 'confState', 'voters'], kind: 'array' })
    fields.push({ path: ['snapshot', 'meta', 'confState', 'learners'], kind: 'array' })
    for (let i = 0; i < voters.length; i++) {
      fields.push({ path: ['snapshot', 'meta', 'confState', 'voters', i], kind: 'nodeId' })
    }
    for (let i = 0; i < learners.length; i++) {
      fields.push({ path: ['snapshot', 'meta', 'confState', 'learners', i], kind: 'nodeId' })
    }
  }
  return fields
}

/** A deep copy with the value at `path` replaced (structuredClone keeps typed arrays). */
function withField(message: Message, path: Path, value: unknown): unknown {
  const copy = structuredClone(message) as unknown as Record<string | number, unknown>
  let node = copy
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>
  node[path.at(-1) as string | number] = value
  return copy
}

/** Byte arrays come back from msgpackr as Buffers: compare contents, not classes. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) }
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

describe('validateMessage', () => {
  it('passes every well-formed message unchanged', () => {
    fc.assert(
      fc.property(anyMessage, (message) => {
        expect(validateMessage(message)).toStrictEqual(message)
      }),
      { numRuns: 5_000 },
    )
  })

  it('passes every well-formed message through the wire codec unchanged', () => {
    fc.assert(
      fc.property(anyMessage, (message) => {
        const decoded = decodeBody(encodeBody([message])) as unknown[]
        expect(plain(validateMessage(decoded[0]))).toStrictEqual(plain(message))
      }),
      { numRuns: 5_000 },
    )
  })

  it('rejects a message with a wrong-typed value in any field of any message type', () => {
    const corrupted = anyMessage.chain((message) =>
      fc
        .constantFrom(...fieldsOf(message))
        .chain(({ path, kind }) =>
          fc.constantFrom(...wrongValues[kind]).map((value) => ({ message, path, value })),
        ),
    )
    fc.assert(
      fc.property(corrupted, ({ message, path, value }) => {
        expect(validateMessage(withField(message, path, value))).toBeUndefined()
      }),
      { numRuns: 20_000 },
    )
  })

  it('rejects random values without throwing', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withTypedArray: true,
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
        }),
        (value) => {
          expect(validateMessage(value)).toBeUndefined()
        },
      ),
      { numRuns: 10_000 },
    )
  })

  it('rejects random values shaped like messages (right type tag, random fields)', () => {
    const shaped = fc.record({
      type: fc.constantFrom(...everyMessageType(1, 2).map((m) => m.type)),
      from: fc.anything(),
      to: fc.anything(),
      term: fc.anything(),
      entries: fc.anything(),
    })
    fc.assert(
      fc.property(shaped, (value) => {
        const result = validateMessage(value)
        // Only a timeoutNow can be complete with just these fields; then they were well typed.
        if (result !== undefined) expect(result.type).toBe('timeoutNow')
      }),
      { numRuns: 10_000 },
    )
  })

  it('rejects random bytes decoded by msgpackr without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
        const decoded = decodeBody(raw)
        expect(validateMessage(decoded)).toBeUndefined()
        if (Array.isArray(decoded)) for (const item of decoded) expect(validateMessage(item)).toBeUndefined()
      }),
      { numRuns: 20_000 },
    )
  })

  it.each([
    ['a conf entry without its change', { index: 1, term: 1, type: 'conf', data: new Uint8Array(0) }],
    [
      'a normal entry with a change',
      { index: 1, term: 1, type: 'normal', data: new Uint8Array(0), change: { type: 'addVoter', nodeId: 2 } },
    ],
    [
      'a change to node 0',
      { index: 1, term: 1, type: 'conf', data: new Uint8Array(0), change: { type: 'addVoter', nodeId: 0 } },
    ],
    ['a sparse entries array', undefined],
  ])('rejects %s', (_, entry) => {
    const app = everyMessageType(1, 2)[0] as Message & { entries: unknown[] }
    // biome-ignore lint/suspicious/noSparseArray: the point of the case
    const entries = entry === undefined ? [, app.entries[0]] : [{ ...entry, index: 11 }]
    expect(validateMessage({ ...app, entries })).toBeUndefined()
  })

  it('rejects an append whose entries do not follow its index contiguously', () => {
    const app = everyMessageType(1, 2)[0] as Message & { type: 'app' }
    expect(validateMessage(app)).toBeDefined() // index 10, entries 11..14
    expect(validateMessage({ ...app, index: 9 })).toBeUndefined()
    const gap = app.entries.map((e, i) => ({ ...e, index: i === 2 ? 20 : e.index }))
    expect(validateMessage({ ...app, entries: gap })).toBeUndefined()
    const swapped = [app.entries[1], app.entries[0], ...app.entries.slice(2)]
    expect(validateMessage({ ...app, entries: swapped })).toBeUndefined()
  })

  it("keeps an append's commitOnly mark only when it is true", () => {
    const app = { ...(everyMessageType(1, 2)[0] as Message & { type: 'app' }), entries: [] }
    expect(validateMessage({ ...app, commitOnly: true })).toMatchObject({ type: 'app', commitOnly: true })
    for (const commitOnly of [false, 1, 'yes', undefined])
      expect(validateMessage({ ...app, commitOnly })).not.toHaveProperty('commitOnly')
  })

  it('strips unknown fields at every level and keeps Buffer bytes as they are', () => {
    const data = Buffer.from([1, 2, 3])
    const result = validateMessage({
      type: 'prop',
      from: 1,
      to: 2,
      term: 0,
      extra: 'x',
      entries: [{ index: 0, term: 0, type: 'normal', data, __proto__: { polluted: true }, more: 1 }],
    })
    expect(result).toStrictEqual({
      type: 'prop',
      from: 1,
      to: 2,
      term: 0,
      entries: [{ index: 0, term: 0, type: 'normal', data }],
    })
    expect(result?.type === 'prop' && result.entries[0]?.data).toBe(data)
  })

  it('accepts every message type of the fixture', () => {
    for (const message of everyMessageType(3, 4)) expect(validateMessage(message)).toStrictEqual(message)
  })
})
