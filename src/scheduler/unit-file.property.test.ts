/**
 * Proves that hostile input never crashes the parsers: for random text (unit-file-shaped lines, raw
 * strings with NUL and control characters, random bytes), parseUnitFile and expandUnitNames either
 * succeed or throw a UnitFileError / UnitNameError with a stable code, never anything else; and that
 * huge lines, deep continuations and huge files are refused quickly by their named limits.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import { unitLimits } from './limits.ts'
import { UnitFileError, UnitNameError } from './unit-error.ts'
import { parseUnitFile } from './unit-file.ts'
import { expandUnitNames } from './unit-name.ts'

function onlyTypedErrors(run: () => unknown): void {
  try {
    run()
  } catch (error) {
    const typed = error instanceof UnitFileError || error instanceof UnitNameError
    if (!typed || !isCairnError(error)) throw error
    expect(['UNIT_INVALID', 'UNIT_NAME_INVALID']).toContain(error.code)
    if (error instanceof UnitFileError) {
      expect(error.line).toBeGreaterThanOrEqual(0)
      expect(error.message).toContain(`${error.file}:${error.line}: `)
    }
  }
}

const section = fc.constantFrom(
  '[Unit]',
  '[Service]',
  '[X-Fleet]',
  '[X-Cairn]',
  '[Install]',
  '[X-Other]',
  '[Bad]',
  '[',
)
const key = fc.constantFrom(
  'Description',
  'After',
  'ExecStart',
  'ExecStartPre',
  'ExecStop',
  'Environment',
  'EnvironmentFile',
  'WorkingDirectory',
  'User',
  'Restart',
  'RestartSec',
  'TimeoutStopSec',
  'Type',
  'MachineID',
  'MachineOf',
  'MachineMetadata',
  'Conflicts',
  'Global',
  'Replaces',
  'Topology',
  'MaxSkew',
  'Cap',
  'Unknown',
)
const valueChar = fc.constantFrom(
  'a',
  '1',
  ' ',
  '"',
  "'",
  '\\',
  '%',
  'i',
  'n',
  '=',
  ':',
  ',',
  '/',
  '-',
  '*',
  '[',
  '{',
  '\0',
  '\t',
  's',
)
const value = fc.array(valueChar, { maxLength: 20 }).map((cs) => cs.join(''))
const line = fc.oneof(
  section,
  fc.tuple(key, value).map(([k, v]) => `${k}=${v}`),
  value,
  fc.constantFrom('# c', '; c', '', 'ExecStart=/bin/x', 'X=\\', 'MaxSkew=zone:1:soft', 'Cap=machine:2'),
)
const unitText = fc.array(line, { maxLength: 30 }).map((lines) => lines.join('\n'))
const name = fc.constantFrom('web.service', 'web@1.service', 'web@.service', 'bad', 'a@b@c.service')

describe('hostile unit input', () => {
  it('unit-shaped random files parse or raise only the typed error', () => {
    fc.assert(
      fc.property(unitText, name, (text, n) => {
        onlyTypedErrors(() => parseUnitFile(`[Service]\nExecStart=/bin/x\n${text}`, { name: n }))
        onlyTypedErrors(() => parseUnitFile(text, { name: n }))
      }),
      { numRuns: 3000 },
    )
  })

  it('arbitrary strings and bytes raise only the typed error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        onlyTypedErrors(() => parseUnitFile(text, { name: 'web@1.service' }))
        onlyTypedErrors(() => expandUnitNames(text))
      }),
      { numRuns: 2000 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        onlyTypedErrors(() => parseUnitFile(bytes, { name: 'web.service' }))
      }),
      { numRuns: 1000 },
    )
  })

  it('brace patterns parse or raise only UNIT_NAME_INVALID', () => {
    const piece = fc.constantFrom('web', '@', '{', '}', ',', '..', '1', '99', '0', '.service', 'a')
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        onlyTypedErrors(() => expandUnitNames(pieces.join('')))
      }),
      { numRuns: 3000 },
    )
  })

  it('huge lines, deep continuations, huge files and NUL bytes are refused quickly', () => {
    const started = performance.now()
    const cases = [
      `[Service]\nExecStart=/bin/${'x'.repeat(1 << 20)}`,
      `[Service]\nExecStart=/bin/x \\\n${'y \\\n'.repeat(10_000)}`,
      `[Service]\n${'ExecStartPre=/bin/x\n'.repeat(50_000)}`,
      `[Service]\nExecStart=/bin/x\0`,
      '\\\n'.repeat(30_000),
      `[Service]\nEnvironment=${'"'.repeat(4000)}`,
    ]
    for (const text of cases) {
      expect(() => parseUnitFile(text, { name: 'web.service' })).toThrow(UnitFileError)
    }
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('a file exactly at the limits is accepted', () => {
    const pre = 'ExecStartPre=/bin/true\n'.repeat(unitLimits.listValuesMax)
    const unit = parseUnitFile(`[Service]\nExecStart=/bin/x\n${pre}`, { name: 'web.service' })
    expect(unit.service.execStartPre).toHaveLength(unitLimits.listValuesMax)
  })
})
