/**
 * The set checker: every acknowledged add is in the final read, nothing in it comes from nowhere
 * (never attempted, attempted only after the read, or refused), unknown outcomes may go either way,
 * and without an ok final read there is no verdict.
 */
import { describe, expect, it } from 'vitest'
import { validateHistory } from '../history.ts'
import { buildHistory, invokeIndexOf, type OpSpec } from './history-builder.ts'
import { checkSet } from './set.ts'

const add = (
  process: number,
  element: number,
  call: number,
  ret?: number,
  type?: OpSpec['type'],
): OpSpec => ({
  process,
  f: 'add',
  key: 's',
  value: element,
  call,
  ...(ret === undefined ? {} : { ret }),
  ...(type === undefined ? {} : { type }),
})
const finalRead = (elements: unknown, call = 100, ret = 101): OpSpec => ({
  process: 9,
  f: 'read',
  key: 's',
  call,
  ret,
  result: elements,
})

function judge(specs: OpSpec[]) {
  const history = buildHistory(specs)
  validateHistory(history)
  return { history, result: checkSet(history) }
}

describe('set checker', () => {
  it('all ok adds present, info adds either way: valid', () => {
    const { result } = judge([
      add(0, 1, 0, 1),
      add(1, 2, 0, 2),
      add(2, 3, 1, 3, 'info'),
      add(3, 4, 1, 4, 'info'),
      add(0, 5, 5),
      finalRead([1, 2, 3, 5]),
    ])
    expect(result.verdict).toBe('valid')
    expect(result.details).toMatchObject({
      sets: [{ key: 's', counts: { okAdds: 2, unknownAdds: 3, present: 4, unknownAddsPresent: 2 } }],
    })
  })

  it('a lost element is invalid; the culprit is its add and the final read', () => {
    const lost = add(1, 2, 3, 4)
    const { history, result } = judge([add(0, 1, 0, 1), lost, finalRead([1])])
    expect(result.verdict).toBe('invalid')
    expect(result.summary).toContain('1 lost')
    expect(result.details).toMatchObject({ sets: [{ lost: [2], unexpected: [] }] })
    expect(result.culprit).toEqual({
      opIndexes: [invokeIndexOf(history, lost), invokeIndexOf(history, finalRead([]))],
      window: { start: 3, end: 4 },
    })
  })

  it('an element from nowhere is invalid', () => {
    const { result } = judge([add(0, 1, 0, 1), finalRead([1, 77])])
    expect(result.verdict).toBe('invalid')
    expect(result.details).toMatchObject({ sets: [{ unexpected: [77] }] })
    expect(result.culprit?.window).toEqual({ start: 100, end: 101 })
  })

  it('a refused (fail) add that appears is invalid', () => {
    const { result } = judge([add(0, 1, 0, 1, 'fail'), finalRead([1])])
    expect(result.verdict).toBe('invalid')
    expect(result.details).toMatchObject({ sets: [{ refused: [1] }] })
  })

  it('an element whose add began after the final read returned came from nowhere', () => {
    const { result } = judge([finalRead([1], 0, 1), add(0, 1, 5, 6)])
    expect(result.verdict).toBe('invalid')
  })

  it('an ok add concurrent with the final read may be missing', () => {
    expect(judge([add(0, 1, 99, 100), finalRead([])]).result.verdict).toBe('valid')
  })

  it('the last ok read is the final one; earlier partial reads do not count', () => {
    const { result } = judge([add(0, 1, 0, 1), finalRead([], 0.5, 0.6), add(1, 2, 2, 3), finalRead([1, 2])])
    expect(result.verdict).toBe('valid')
  })

  it('duplicates are counted, not judged', () => {
    const { result } = judge([add(0, 1, 0, 1), finalRead([1, 1])])
    expect(result.verdict).toBe('valid')
    expect(result.details).toMatchObject({ sets: [{ duplicates: [1] }] })
  })

  it('no ok final read: unknown', () => {
    const { result } = judge([add(0, 1, 0, 1), { ...finalRead(null), type: 'info' }])
    expect(result.verdict).toBe('unknown')
    expect(judge([]).result.verdict).toBe('unknown')
  })

  it('a final read that is not a list: unknown', () => {
    expect(judge([add(0, 1, 0, 1), finalRead('oops')]).result.verdict).toBe('unknown')
  })
})
