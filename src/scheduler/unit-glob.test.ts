/**
 * Proves Conflicts= globs against Go's path.Match cases (the ones that apply to unit names), the
 * malformed patterns Go calls ErrBadPattern, and (property) that the linear matcher agrees with a
 * naive recursive one on random patterns and names.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileGlob, globMatches, type UnitGlob } from './unit-glob.ts'

const matches = (pattern: string, name: string) => globMatches(compileGlob(pattern), name)

/** The specification: straightforward recursion over the tokens (exponential, tiny inputs only). */
function naive(glob: UnitGlob, name: string[], t = 0, n = 0): boolean {
  const token = glob.tokens[t]
  if (token === undefined) return n === name.length
  if (token.kind === 'star')
    return naive(glob, name, t + 1, n) || (n < name.length && naive(glob, name, t, n + 1))
  if (n >= name.length) return false
  const c = name[n]!
  const one =
    token.kind === 'any' ||
    (token.kind === 'char' && token.c === c) ||
    (token.kind === 'class' && token.ranges.some(([lo, hi]) => lo <= c && c <= hi) !== token.negated)
  return one && naive(glob, name, t + 1, n + 1)
}

describe('unit globs', () => {
  it.each([
    ['web@*.service', 'web@1.service', true],
    ['web@*.service', 'web@.service', true],
    ['web@*.service', 'api@1.service', false],
    ['*', 'anything.service', true],
    ['a*b*c*d*e*', 'axbxcxdxex', true],
    ['a*b*c*d*e*y', 'axbxcxdxex', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'ab', false],
    ['[\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['[\\]a]', ']', true],
    ['web@[0-9].service', 'web@7.service', true],
    ['web@[0-9].service', 'web@17.service', false],
  ])('%j matches %j: %s', (pattern, name, expected) => {
    expect(matches(pattern, name)).toBe(expected)
  })

  it.each(['[', '[^', '[^bc', 'a[', 'a\\', '[]a]', '[-]', '[x-]', '[a-b-c]', 'a[]'])(
    'refuses %j',
    (pattern) => {
      expect(() => compileGlob(pattern)).toThrow()
    },
  )

  it('never backtracks exponentially', () => {
    const started = performance.now()
    expect(matches('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(256))).toBe(false)
    expect(performance.now() - started).toBeLessThan(1_000)
  })

  it('agrees with the naive matcher', () => {
    const char = fc.constantFrom('a', 'b', '-', '@')
    const piece = fc.oneof(char, fc.constant('*'), fc.constant('?'), fc.constant('[ab]'), fc.constant('[^a]'))
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.array(char, { maxLength: 8 }), (pieces, name) => {
        const glob = compileGlob(pieces.join(''))
        expect(globMatches(glob, name.join(''))).toBe(naive(glob, name))
      }),
      { numRuns: 2000 },
    )
  })
})
