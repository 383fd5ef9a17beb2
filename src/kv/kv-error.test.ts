/**
 * Proves KvError carries etcd's error body (number, exact message, cause, index; cause left out
 * when empty) and etcd 2.3's errorCode → HTTP status table (reference §1.6).
 */
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import { isKvError, KvError, v2HttpStatus } from './kv-error.ts'

describe('KvError', () => {
  it('is a CairnError with etcd fields and body', () => {
    const error = new KvError('KV_COMPARE_FAILED', '[two != one]', 8)
    expect(isCairnError(error, 'KV_COMPARE_FAILED')).toBe(true)
    expect(isKvError(error, 'KV_COMPARE_FAILED')).toBe(true)
    expect(error.v2Body()).toEqual({
      errorCode: 101,
      message: 'Compare failed',
      cause: '[two != one]',
      index: 8,
    })
    expect(new KvError('KV_KEY_NOT_FOUND', '', 3).v2Body()).toEqual({
      errorCode: 100,
      message: 'Key not found',
      index: 3,
    })
  })

  it.each([
    [100, 404],
    [101, 412],
    [102, 403],
    [104, 400],
    [105, 412],
    [107, 400],
    [108, 403],
    [110, 401],
    [209, 400],
    [300, 500],
    [301, 500],
    [401, 400],
    [999, 400],
  ])('errorCode %i answers HTTP %i', (errorCode, status) => {
    expect(v2HttpStatus(errorCode)).toBe(status)
  })
})
