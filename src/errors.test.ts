/**
 * Proves that docs/errors.md lists every code in the error catalogue, and that CairnError carries
 * its code and the catalogue's message.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CairnError, errorCatalogue, isCairnError } from './errors.ts'

describe('error catalogue', () => {
  const page = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')

  it.each(Object.keys(errorCatalogue))('docs/errors.md lists %s', (code) => {
    expect(page).toContain(`\`${code}\``)
  })

  it('a CairnError carries its stable code and the catalogue message with detail', () => {
    const error = new CairnError('RAFT_NO_LEADER', 'term 7')
    expect(error.code).toBe('RAFT_NO_LEADER')
    expect(error.message).toBe(`${errorCatalogue.RAFT_NO_LEADER}: term 7`)
    expect(isCairnError(error, 'RAFT_NO_LEADER')).toBe(true)
    expect(isCairnError(error, 'RAFT_NOT_MEMBER')).toBe(false)
    expect(isCairnError(new Error('x'))).toBe(false)
  })
})
