/**
 * The pure helpers of the client commands: table layout, key paths (escaping, slashes) and the
 * `ACTION KEY VALUE` line of a watch event.
 */
import { describe, expect, it } from 'vitest'
import { eventLine, keyPath } from './kv-command.ts'
import { formatTable } from './output.ts'

describe('formatTable', () => {
  it('pads every column but the last to its widest cell, two spaces apart, no trailing spaces', () => {
    expect(
      formatTable(
        ['ID', 'NAME', 'LEADER'],
        [
          ['1', 'long-name', '*'],
          ['22', 'n', ''],
        ],
      ),
    ).toBe('ID  NAME       LEADER\n1   long-name  *\n22  n\n')
  })
  it('prints the header alone when there are no rows', () => {
    expect(formatTable(['A', 'B'], [])).toBe('A  B\n')
  })
})

describe('keyPath', () => {
  it.each([
    ['/a/b', '/v2/keys/a/b'],
    ['a/b', '/v2/keys/a/b'],
    ['//a//b/', '/v2/keys/a/b'],
    ['/', '/v2/keys/'],
    ['a b/c?d#e%', '/v2/keys/a%20b/c%3Fd%23e%25'],
  ])('%j → %j', (key, path) => {
    expect(keyPath(key)).toBe(path)
  })
})

describe('eventLine', () => {
  it.each([
    [{ action: 'set', node: { key: '/k', value: 'v' } }, 'set /k v'],
    [{ action: 'delete', node: { key: '/k' }, prevNode: { key: '/k', value: 'old' } }, 'delete /k'],
    [{ action: 'set', node: { key: '/k', value: 'two words' } }, 'set /k two words'],
  ])('%j → %j', (answer, line) => {
    expect(eventLine(answer)).toBe(line)
  })
})
