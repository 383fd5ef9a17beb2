/**
 * The typed errors of unit files and unit names.
 *
 * Invariants:
 * - A UnitFileError always names the file, a 1-based line (0 when the file as a whole is at fault:
 *   too large, not UTF-8) and the key (`''` for a line that is not an assignment, `[Section]` for a
 *   section header). Its message reads `file:line: key: reason`, the shape editors and compilers use.
 * - Both are CairnErrors with a stable code from src/errors.ts (UNIT_INVALID, UNIT_NAME_INVALID);
 *   nothing else is ever thrown by the parsers on bad input (a property test checks it).
 */
import { CairnError } from '../errors.ts'

export class UnitFileError extends CairnError {
  declare readonly code: 'UNIT_INVALID'
  /** The file name the caller gave (by default the unit name). */
  readonly file: string
  /** 1-based physical line where the offending logical line starts; 0 for the whole file. */
  readonly line: number
  /** The key (`ExecStart`), `[Section]` for a header, `''` when the line has no key. */
  readonly key: string
  /** The reason alone, without file, line and key. */
  readonly reason: string

  constructor(file: string, line: number, key: string, reason: string) {
    super('UNIT_INVALID', `${file}:${line}: ${key === '' ? '' : `${key}: `}${reason}`)
    this.name = 'UnitFileError'
    this.file = file
    this.line = line
    this.key = key
    this.reason = reason
  }
}

export class UnitNameError extends CairnError {
  declare readonly code: 'UNIT_NAME_INVALID'
  /** The name or brace pattern as given (cut to 300 characters for the message). */
  readonly unitName: string
  readonly reason: string

  constructor(unitName: string, reason: string) {
    const shown = unitName.length > 300 ? `${unitName.slice(0, 300)}...` : unitName
    super('UNIT_NAME_INVALID', `${JSON.stringify(shown)}: ${reason}`)
    this.name = 'UnitNameError'
    this.unitName = shown
    this.reason = reason
  }
}

/**
 * Internal: a value-level fault raised by the pure helpers (words, time spans, specifiers, globs),
 * which know the value but not its file, line or key. The unit file parser catches it at the one
 * place that knows all three and raises a UnitFileError instead; it never escapes the parser.
 */
export class ValueFault extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'ValueFault'
  }
}
