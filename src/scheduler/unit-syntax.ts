/**
 * The systemd INI layer of unit files (systemd.syntax(7)): text in, ordered options out, no meaning.
 *
 * - `[Section]` headers; `Key=Value` assignments with whitespace trimmed around key and value.
 * - Lines whose first non-blank character is `#` or `;` are comments, also in the middle of a
 *   continuation (systemd skips them there too). `#` later in a line is part of the value.
 * - A line ending in an odd number of backslashes continues on the next line; the final backslash
 *   becomes a space. A continuation still open at the end of the file ends there.
 * - A UTF-8 byte order mark is skipped; `\r\n` line ends are accepted.
 * - Sections may repeat (they merge); keys may repeat (the meaning layer decides how).
 *
 * Invariants:
 * - Every refusal is a UnitFileError naming file, line and key; nothing else is thrown.
 * - Options come out in file order, each with the 1-based line where its logical line starts.
 * - Every limit (fileBytesMax, fileLinesMax, lineCharsMax, logicalLineCharsMax,
 *   continuationLinesMax, sectionsMax, sectionKeysMax, nameCharsMax) is checked before the work it
 *   bounds; no character outside tab and printable text (no NUL, no other control) gets through.
 */
import { unitLimits } from './limits.ts'
import { UnitFileError } from './unit-error.ts'

export interface UnitOption {
  readonly section: string
  readonly name: string
  readonly value: string
  /** 1-based physical line where the assignment starts. */
  readonly line: number
}

export interface UnitSyntax {
  readonly options: readonly UnitOption[]
  /** Each section present, with the line of its first header. */
  readonly sections: ReadonlyMap<string, number>
}

const keyRe = /^[A-Za-z0-9_-]+$/
const sectionRe = /^[A-Za-z0-9_ .:-]+$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
const controlRe = /[\x00-\x08\x0a-\x1f\x7f]/

/** Decodes and size-checks the input; bytes must be valid UTF-8. */
export function unitText(input: string | Uint8Array, file: string): string {
  const fault = (reason: string) => new UnitFileError(file, 0, '', reason)
  const tooLarge = `larger than fileBytesMax (${unitLimits.fileBytesMax} bytes)`
  if (typeof input !== 'string') {
    if (input.byteLength > unitLimits.fileBytesMax) throw fault(tooLarge)
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input)
    } catch {
      throw fault('not valid UTF-8')
    }
  }
  // UTF-8 never takes fewer bytes than UTF-16 code units, so a long string is refused unmeasured.
  if (input.length > unitLimits.fileBytesMax || Buffer.byteLength(input) > unitLimits.fileBytesMax) {
    throw fault(tooLarge)
  }
  return input
}

/** Splits a unit file into sections and options. Throws UnitFileError. */
export function parseUnitSyntax(input: string | Uint8Array, file: string): UnitSyntax {
  let text = unitText(input, file)
  if (text.startsWith('\uFEFF')) text = text.slice(1)
  const lines = physicalLines(text, file)
  const state: SyntaxState = { file, section: undefined, options: [], sections: new Map(), keys: new Map() }
  let pending: { text: string; line: number; count: number } | undefined
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!
    const lineNumber = index + 1
    if (isComment(raw)) continue
    const joined = pending === undefined ? raw : pending.text + raw
    const start = pending?.line ?? lineNumber
    const count = (pending?.count ?? 0) + 1
    if (joined.length > unitLimits.logicalLineCharsMax) {
      throw new UnitFileError(
        file,
        start,
        '',
        `continued line longer than logicalLineCharsMax (${unitLimits.logicalLineCharsMax})`,
      )
    }
    if (endsContinued(joined)) {
      if (count >= unitLimits.continuationLinesMax) {
        throw new UnitFileError(
          file,
          start,
          '',
          `continues over more than continuationLinesMax (${unitLimits.continuationLinesMax}) lines`,
        )
      }
      pending = { text: `${joined.slice(0, -1)} `, line: start, count }
      continue
    }
    pending = undefined
    logicalLine(state, joined, start)
  }
  if (pending !== undefined) logicalLine(state, pending.text, pending.line)
  return { options: state.options, sections: state.sections }
}

interface SyntaxState {
  readonly file: string
  section: string | undefined
  readonly options: UnitOption[]
  readonly sections: Map<string, number>
  /** Distinct keys seen per section (for sectionKeysMax). */
  readonly keys: Map<string, Set<string>>
}

function physicalLines(text: string, file: string): string[] {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  if (lines.length > unitLimits.fileLinesMax) {
    throw new UnitFileError(
      file,
      unitLimits.fileLinesMax + 1,
      '',
      `more than fileLinesMax (${unitLimits.fileLinesMax}) lines`,
    )
  }
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!
    if (line.endsWith('\r')) line = lines[i] = line.slice(0, -1)
    if (line.length > unitLimits.lineCharsMax) {
      throw new UnitFileError(file, i + 1, '', `line longer than lineCharsMax (${unitLimits.lineCharsMax})`)
    }
    const control = controlRe.exec(line)
    if (control !== null) {
      const what =
        control[0] === '\0'
          ? 'a NUL byte'
          : `control character U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')}`
      throw new UnitFileError(file, i + 1, '', `${what} at column ${control.index + 1}`)
    }
  }
  return lines
}

function isComment(line: string): boolean {
  const first = line.trimStart()[0]
  return first === '#' || first === ';'
}

/** An odd run of trailing backslashes continues the line (an even run is escaped backslashes). */
function endsContinued(line: string): boolean {
  let run = 0
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) run++
  return run % 2 === 1
}

function logicalLine(state: SyntaxState, raw: string, line: number): void {
  const text = raw.trim()
  if (text === '' || text[0] === '#' || text[0] === ';') return
  if (text[0] === '[') {
    sectionHeader(state, text, line)
    return
  }
  const eq = text.indexOf('=')
  const key = (eq < 0 ? text : text.slice(0, eq)).trim()
  const shownKey = key.length > unitLimits.nameCharsMax ? `${key.slice(0, unitLimits.nameCharsMax)}...` : key
  if (eq < 0)
    throw new UnitFileError(
      state.file,
      line,
      '',
      `missing '=' (expected Key=Value, a [Section] or a comment)`,
    )
  if (key === '') throw new UnitFileError(state.file, line, '', 'an assignment without a key')
  if (key.length > unitLimits.nameCharsMax)
    throw new UnitFileError(
      state.file,
      line,
      shownKey,
      `key longer than nameCharsMax (${unitLimits.nameCharsMax})`,
    )
  if (!keyRe.test(key))
    throw new UnitFileError(state.file, line, key, 'a key is made of A-Z a-z 0-9 _ - only')
  if (state.section === undefined)
    throw new UnitFileError(state.file, line, key, 'an assignment before any [Section]')
  let keys = state.keys.get(state.section)
  if (keys === undefined) state.keys.set(state.section, (keys = new Set()))
  keys.add(key)
  if (keys.size > unitLimits.sectionKeysMax) {
    throw new UnitFileError(
      state.file,
      line,
      key,
      `more than sectionKeysMax (${unitLimits.sectionKeysMax}) keys in [${state.section}]`,
    )
  }
  state.options.push({ section: state.section, name: key, value: text.slice(eq + 1).trim(), line })
}

function sectionHeader(state: SyntaxState, text: string, line: number): void {
  if (!text.endsWith(']')) throw new UnitFileError(state.file, line, '', 'a section header must end with ]')
  const name = text.slice(1, -1)
  const shown = `[${name.length > unitLimits.nameCharsMax ? `${name.slice(0, unitLimits.nameCharsMax)}...` : name}]`
  if (name.length > unitLimits.nameCharsMax)
    throw new UnitFileError(
      state.file,
      line,
      shown,
      `section name longer than nameCharsMax (${unitLimits.nameCharsMax})`,
    )
  if (!sectionRe.test(name) || name.trim() !== name)
    throw new UnitFileError(state.file, line, shown, 'not a valid section name')
  if (!state.sections.has(name)) {
    if (state.sections.size >= unitLimits.sectionsMax) {
      throw new UnitFileError(
        state.file,
        line,
        shown,
        `more than sectionsMax (${unitLimits.sectionsMax}) sections`,
      )
    }
    state.sections.set(name, line)
  }
  state.section = name
}
