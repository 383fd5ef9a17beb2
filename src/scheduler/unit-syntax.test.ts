/**
 * Proves the systemd INI layer (systemd.syntax(7)): comments, continuations (with comments inside
 * them, escaped trailing backslashes, one open at the end of the file), BOM and CRLF, merged
 * sections, trimming; and that every refusal, including each named limit, names file and line.
 */
import { describe, expect, it } from 'vitest'
import { unitLimits } from './limits.ts'
import { UnitFileError } from './unit-error.ts'
import { parseUnitSyntax } from './unit-syntax.ts'

function options(text: string | Uint8Array) {
  return parseUnitSyntax(text, 'f.service').options.map((o) => [o.section, o.name, o.value, o.line])
}

function refusal(text: string | Uint8Array): UnitFileError {
  try {
    parseUnitSyntax(text, 'f.service')
  } catch (error) {
    expect(error).toBeInstanceOf(UnitFileError)
    return error as UnitFileError
  }
  throw new Error('expected a refusal')
}

describe('unit syntax', () => {
  it('reads sections and trimmed assignments in order, skipping comments and blank lines', () => {
    const text =
      '# head\n; also\n[Unit]\n  Description =  a # not a comment  \n\n[Service]\nExecStart=/bin/x\n'
    expect(options(text)).toEqual([
      ['Unit', 'Description', 'a # not a comment', 4],
      ['Service', 'ExecStart', '/bin/x', 7],
    ])
  })

  it('joins a trailing backslash with a space and reports the first line', () => {
    expect(options('[S]\nA=one \\\n  two\\\nthree\nB=x')).toEqual([
      ['S', 'A', 'one    two three', 2],
      ['S', 'B', 'x', 5],
    ])
  })

  it('skips comment lines inside a continuation (systemd does too)', () => {
    expect(options('[S]\nA=one \\\n# comment \\\n; other\ntwo')).toEqual([['S', 'A', 'one  two', 2]])
  })

  it('an even run of trailing backslashes does not continue', () => {
    expect(options('[S]\nA=x\\\\\nB=y')).toEqual([
      ['S', 'A', 'x\\\\', 2],
      ['S', 'B', 'y', 3],
    ])
  })

  it('a continuation open at the end of the file ends there', () => {
    expect(options('[S]\nA=x \\')).toEqual([['S', 'A', 'x', 2]])
  })

  it('accepts a BOM, CRLF line ends, bytes, and merges repeated sections', () => {
    const text = '\uFEFF[A]\r\nK=1\r\n[B]\r\nK=2\r\n[A]\r\nK=3\r\n'
    expect(options(new TextEncoder().encode(text))).toEqual([
      ['A', 'K', '1', 2],
      ['B', 'K', '2', 4],
      ['A', 'K', '3', 6],
    ])
    expect([...parseUnitSyntax(text, 'f').sections]).toEqual([
      ['A', 1],
      ['B', 3],
    ])
  })

  it('keeps an empty value (a reset) and a value with = in it', () => {
    expect(options('[S]\nA=\nB=c=d')).toEqual([
      ['S', 'A', '', 2],
      ['S', 'B', 'c=d', 3],
    ])
  })

  it.each([
    ['[S]\nnot an assignment', 2, '', "missing '='"],
    ['A=1', 1, 'A', 'before any [Section]'],
    ['[S]\n=1', 2, '', 'without a key'],
    ['[S]\nA B=1', 2, 'A B', 'A-Z a-z 0-9'],
    ['[S\nA=1', 1, '', 'must end with ]'],
    ['[S]]\nA=1', 1, '[S]]', 'not a valid section name'],
    ['[]\nA=1', 1, '[]', 'not a valid section name'],
    ['[S]\nA=a\0b', 2, '', 'a NUL byte at column 4'],
    ['[S]\nA=a\x1bb', 2, '', 'control character U+001b'],
    ['[S]\nA=a\rb', 2, '', 'control character U+000d'],
  ])('refuses %j at line %i, key %j', (text, line, key, reason) => {
    const error = refusal(text)
    expect(error.code).toBe('UNIT_INVALID')
    expect([error.file, error.line, error.key]).toEqual(['f.service', line, key])
    expect(error.reason).toContain(reason)
    expect(error.message).toContain(`f.service:${line}: `)
  })

  it('refuses a file over fileBytesMax (as a string or as bytes) and bytes that are not UTF-8', () => {
    const big = `[S]\n${'#'.repeat(unitLimits.fileBytesMax)}`
    expect(refusal(big)).toMatchObject({ line: 0, reason: expect.stringContaining('fileBytesMax') })
    expect(refusal(new TextEncoder().encode(big))).toMatchObject({ line: 0 })
    const multiByte = `[S]\n#${'é'.repeat(unitLimits.fileBytesMax / 2)}`
    expect(multiByte.length).toBeLessThan(unitLimits.fileBytesMax)
    expect(refusal(multiByte).reason).toContain('fileBytesMax')
    expect(refusal(new Uint8Array([0x5b, 0xff, 0x5d])).reason).toBe('not valid UTF-8')
  })

  it('refuses more than fileLinesMax lines, a line over lineCharsMax, and too long a continuation', () => {
    expect(refusal('\n'.repeat(unitLimits.fileLinesMax + 1)).reason).toContain('fileLinesMax')
    expect(refusal(`[S]\nA=${'x'.repeat(unitLimits.lineCharsMax)}`)).toMatchObject({ line: 2 })
    const deep = `[S]\nA=x\\\n${'y\\\n'.repeat(unitLimits.continuationLinesMax)}z`
    expect(refusal(deep)).toMatchObject({ line: 2, reason: expect.stringContaining('continuationLinesMax') })
    const wide = `[S]\nA=x\\\n${`${'y'.repeat(4000)}\\\n`.repeat(5)}z`
    expect(refusal(wide)).toMatchObject({ line: 2, reason: expect.stringContaining('logicalLineCharsMax') })
  })

  it('refuses more than sectionsMax sections and sectionKeysMax keys in one section', () => {
    const manySections = Array.from({ length: unitLimits.sectionsMax + 1 }, (_, i) => `[S${i}]`).join('\n')
    expect(refusal(manySections)).toMatchObject({
      line: unitLimits.sectionsMax + 1,
      key: `[S${unitLimits.sectionsMax}]`,
    })
    const manyKeys = `[S]\n${Array.from({ length: unitLimits.sectionKeysMax + 1 }, (_, i) => `K${i}=1`).join('\n')}`
    expect(refusal(manyKeys)).toMatchObject({ line: unitLimits.sectionKeysMax + 2 })
    // Repeating one key many times is not many keys.
    expect(options(`[S]\n${'K=1\n'.repeat(unitLimits.sectionKeysMax + 5)}`)).toHaveLength(
      unitLimits.sectionKeysMax + 5,
    )
  })

  it('refuses a key or section name over nameCharsMax without echoing all of it', () => {
    const long = 'K'.repeat(unitLimits.nameCharsMax + 1)
    const error = refusal(`[S]\n${long}=1`)
    expect(error.reason).toContain('nameCharsMax')
    expect(error.key.length).toBeLessThan(long.length + 4)
  })
})
