/**
 * Proves systemd's word splitting as Environment= and ExecStart= use it: quotes around or inside a
 * word, C escapes, and the refusals (unterminated quote, unknown escape, NUL, too many words).
 */
import { describe, expect, it } from 'vitest'
import { splitWords } from './words.ts'

describe('splitWords', () => {
  it.each([
    ['a b\tc', ['a', 'b', 'c']],
    ['  spaced   out  ', ['spaced', 'out']],
    ['"VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"', ['VAR1=word1 word2', 'VAR2=word3', 'VAR3=$word 5 6']],
    ["'single quoted' x", ['single quoted', 'x']],
    ['A="x y"z', ['A=x yz']],
    ['"" x', ['', 'x']],
    ['a\\sb \\x41 \\101 \\n', ['a b', 'A', 'A', '\n']],
    ['"it\\"s" \'don\\\'t\'', ['it"s', "don't"]],
    ['"a # b"', ['a # b']],
    ['', []],
  ])('%j → %j', (text, words) => {
    expect(splitWords(text, 100)).toEqual(words)
  })

  it.each([
    ['"open', 'unterminated " quote'],
    ["it's", "unterminated ' quote"],
    ['a\\q', 'unknown escape \\q'],
    ['a\\', 'a backslash ends the value'],
    ['\\x00', 'NUL'],
    ['\\000', 'NUL'],
  ])('refuses %j', (text, reason) => {
    expect(() => splitWords(text, 100)).toThrow(reason)
  })

  it('refuses more words than allowed', () => {
    expect(splitWords('a b c', 3)).toHaveLength(3)
    expect(() => splitWords('a b c d', 3)).toThrow('more than 3 words')
  })
})
