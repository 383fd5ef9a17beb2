/**
 * Proves the `matches` engine: RE2's syntax and meaning (Go's regexp.MatchString) on a table of
 * cases, Go's syntax errors, RE2's refusals (backreferences, look-around), the instruction limit,
 * linear time on patterns that make a backtracking engine blow up, and agreement with
 * JavaScript's RegExp on random patterns from the syntax both share.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { regexInstructionsMax } from './limits.ts'
import { compileRegex } from './regex-program.ts'
import { RegexSyntaxError } from './regex-syntax.ts'

function matches(pattern: string, input: string): boolean {
  return compileRegex(pattern).test(input)
}

describe('matching', () => {
  const cases: [pattern: string, input: string, expected: boolean][] = [
    ['web', 'the-web-1', true], // unanchored search
    ['^web', 'the-web-1', false],
    ['^web-[0-9]+$', 'web-12', true],
    ['^web-[0-9]+$', 'web-12x', false],
    ['', 'anything', true],
    ['a|b|c', 'xxc', true],
    ['^(a|bc)+$', 'abcbca', true],
    ['^(a|bc)+$', 'abcb', false],
    ['^a{2,3}$', 'aa', true],
    ['^a{2,3}$', 'aaaa', false],
    ['^a{2}$', 'aa', true],
    ['^a{2,}$', 'aaaaa', true],
    ['^a{0}b$', 'b', true],
    ['^a*?b$', 'aab', true],
    ['^a{,2}$', 'a{,2}', true], // not a repeat in RE2: literal text
    ['x{', 'x{', true],
    ['.', '\n', false], // . stops at newlines
    ['(?s).', '\n', true],
    ['^b', 'a\nb', false], // ^ is the start of the text
    ['(?m)^b', 'a\nb', true],
    ['a$', 'a\n', false], // $ is the end of the text (unlike Perl's)
    ['(?m)a$', 'a\nb', true],
    ['\\Aab\\z', 'ab', true],
    ['\\bweb\\b', 'a web b', true],
    ['\\bweb\\b', 'awebb', false],
    ['\\Bwe', 'awe', true],
    ['(?i)WEB', 'web', true],
    ['(?i:W)eb', 'web', true],
    ['(?i:W)EB', 'web', false],
    ['a(?i)b|c', 'aB', true],
    ['(?i)[a-c]+', 'ABC', true],
    ['(?i)[^a]', 'A', false],
    ['(?i)é', 'É', true],
    ['[^a-c]', 'abc', false],
    ['[]a]', ']', true],
    ['[a-]', '-', true],
    ['[\\d.]+', '1.5', true],
    ['^[[:alpha:]]+$', 'abcXYZ', true],
    ['^[[:^digit:]]+$', 'ab1', false],
    ['^\\d+$', '٣', false], // \d is ASCII in RE2
    ['^\\w+$', 'a_1', true],
    ['\\s', '\v', false], // RE2's \s has no \v
    ['\\S', ' ', false],
    ['\\x41\\x{42}', 'AB', true],
    ['\\101', 'A', true],
    ['\\Qa.b\\E', 'a.b', true],
    ['\\Qa.b\\E', 'axb', false],
    ['\\.', 'a', false],
    ['a\\-b', 'a-b', true],
    ['(?P<name>x)(?<other>y)', 'xy', true],
    ['(?:ab)+', 'abab', true],
    ['😀+', 'a😀😀', true],
    ['^.$', '😀', true], // one code point, not two UTF-16 units
    ['(a*)*b', 'aab', true], // empty loops end
    ['(|a)+b', 'ab', true],
  ]
  it.each(cases)('%j on %j is %s', (pattern, input, expected) => {
    expect(matches(pattern, input)).toBe(expected)
  })
})

describe('syntax errors', () => {
  const cases: [pattern: string, message: RegExp][] = [
    ['(a', /missing closing \)/],
    ['a)', /unexpected \)/],
    ['[a', /missing closing \]/],
    ['[]', /missing closing \]/],
    ['*a', /missing argument to repetition operator/],
    ['{2}', /missing argument to repetition operator/],
    ['a**', /invalid nested repetition operator/],
    ['a{2}*', /invalid nested repetition operator/],
    ['a{1001}', /invalid repeat count/],
    ['a{3,2}', /invalid repeat count/],
    ['[z-a]', /invalid character class range/],
    ['[[:nope:]]', /invalid character class range/],
    ['(a)\\1', /backreferences are not supported/],
    ['\\8', /invalid escape sequence/],
    ['\\pL', /Unicode classes are not supported/],
    ['\\q', /invalid escape sequence/],
    ['a\\', /trailing backslash/],
    ['(?=a)', /look-around/],
    ['(?!a)', /look-around/],
    ['(?<=a)b', /look-around/],
    ['(?<!a)b', /look-around/],
    ['(?P<>a)', /invalid named capture/],
    ['(?x)', /invalid or unsupported Perl syntax/],
    ['(?)', /invalid or unsupported Perl syntax/],
    ['(?i-)', /invalid or unsupported Perl syntax/],
    ['\\x{110000}', /invalid escape sequence/],
  ]
  it.each(cases)('%j', (pattern, message) => {
    expect(() => compileRegex(pattern)).toThrow(RegexSyntaxError)
    expect(() => compileRegex(pattern)).toThrow(message)
  })
})

describe('bounds', () => {
  it('refuses a program past regexInstructionsMax, without building it', () => {
    expect(() => compileRegex('a{1000}')).toThrow(/expression too large/)
    const started = performance.now()
    expect(() => compileRegex('((a{1000}){1000}){1000}')).toThrow(/expression too large/)
    expect(performance.now() - started).toBeLessThan(100)
    expect(compileRegex('a{998}').instructions).toBeLessThanOrEqual(regexInstructionsMax)
  })

  it('runs patterns that make a backtracking engine explode in linear time', () => {
    const input = `${'a'.repeat(20_000)}!`
    const started = performance.now()
    for (const pattern of [
      '(a+)+$',
      '^(a|a)*$',
      '(a*)*b',
      'a*a*a*a*a*a*a*a*b',
      '^(?:a|aa)+$',
      '^(\\w+\\s?)*$',
    ]) {
      expect(matches(pattern, input)).toBe(false)
    }
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

/** Random patterns from the syntax on which RE2 and JavaScript (with the u flag) agree. */
const sharedPattern: fc.Arbitrary<string> = fc.letrec<{ node: string; atom: string }>((tie) => ({
  atom: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('a', 'b', 'c', '.', '[ab]', '[^a]', '[a-c]', '\\d', '\\w', '\\s', '\\.', 'x', '-'),
    tie('node').map((inner) => `(${inner})`),
    tie('node').map((inner) => `(?:${inner})`),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('atom'),
    fc
      .tuple(tie('atom'), fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '{0,}', '*?'))
      .map(([a, q]) => a + q),
    fc.array(tie('atom'), { minLength: 2, maxLength: 4 }).map((atoms) => atoms.join('')),
    fc.tuple(tie('node'), tie('node')).map(([a, b]) => `${a}|${b}`),
    fc.constantFrom('^', '$', '\\b', '\\B'),
  ),
})).node

describe('agreement with JavaScript RegExp', () => {
  it('answers as RegExp.test on patterns and strings both read alike', () => {
    fc.assert(
      fc.property(
        sharedPattern,
        fc.string({ unit: fc.constantFrom('a', 'b', 'c', '1', '.', ' ', '-', '\n') }),
        (p, s) => {
          expect(matches(p, s)).toBe(new RegExp(p, 'u').test(s))
        },
      ),
      { numRuns: 2000 },
    )
  })
})
