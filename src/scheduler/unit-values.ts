/**
 * Parsers for the values of unit file keys, one per value shape (a command line, an environment
 * assignment list, a path, a boolean, a spread rule...). Each is pure: a value string in, a typed
 * value out, or a ValueFault with the reason; the caller adds file, line and key.
 *
 * Invariants:
 * - No parser accepts an empty value: empty assignments are resets, handled by the caller.
 * - Every list a parser returns is at most listValuesMax long; every string is bounded by the line.
 */
import { unitLimits } from './limits.ts'
import { ValueFault } from './unit-error.ts'
import { compileGlob } from './unit-glob.ts'
import { isSystemdUnitName, parseUnitName } from './unit-name.ts'
import { splitWords } from './words.ts'

/** A command line of ExecStart=, ExecStartPre= or ExecStop=. */
export interface UnitCommand {
  /** The executable (an absolute path, or a bare name looked up in PATH) and its arguments, unquoted. */
  readonly argv: readonly string[]
  /** The `-` prefix: a failing exit is not a failure. */
  readonly ignoreFailure: boolean
  readonly line: number
}

/** EnvironmentFile= or WorkingDirectory=: an absolute path; `-` prefix: a missing path is no error. */
export interface UnitPath {
  readonly path: string
  readonly optional: boolean
}

export type SpreadMode = 'hard' | 'soft'

/** `MaxSkew=zone:1:hard` or `Cap=machine:2:soft`. `line` is 0 for a default rule. */
export interface SpreadRule {
  readonly level: string
  readonly count: number
  readonly mode: SpreadMode
  readonly line: number
}

/** The `machine` topology level: each machine is its own domain. */
export const machineLevel = 'machine'
export const topologyDefault: readonly string[] = ['region', 'zone', machineLevel]

const envNameRe = /^[A-Za-z_][A-Za-z0-9_]*$/
const userRe = /^(?:[A-Za-z_][A-Za-z0-9_-]{0,30}\$?|\d{1,10})$/
const metadataKeyRe = /^[A-Za-z0-9_.-]+$/

export function words(value: string): string[] {
  return splitWords(value, unitLimits.listValuesMax)
}

/** Appends `items` to `list`, keeping it within listValuesMax. */
export function appendAll<T>(list: T[], items: readonly T[]): void {
  if (list.length + items.length > unitLimits.listValuesMax) {
    throw new ValueFault(`more than listValuesMax (${unitLimits.listValuesMax}) values`)
  }
  list.push(...items)
}

const unsupportedPrefixes: Readonly<Record<string, string>> = {
  '@': 'the @ prefix (a separate argv[0])',
  ':': 'the : prefix (no environment substitution)',
  '+': 'the + prefix (full privileges)',
  '!': 'the ! and !! prefixes (ambient capabilities)',
}

export function parseCommand(value: string, line: number): UnitCommand {
  let rest = value
  let ignoreFailure = false
  for (let c = rest[0]; c !== undefined && '-@:+!'.includes(c); c = rest[0]) {
    const unsupported = unsupportedPrefixes[c]
    if (unsupported !== undefined) throw new ValueFault(`${unsupported} is not supported`)
    ignoreFailure = true
    rest = rest.slice(1)
  }
  const argv = splitWords(rest, unitLimits.commandWordsMax)
  const exe = argv[0]
  if (exe === undefined || exe === '') throw new ValueFault('no command')
  if (!exe.startsWith('/') && exe.includes('/')) {
    throw new ValueFault(`"${exe}": the executable must be an absolute path or a bare name looked up in PATH`)
  }
  return { argv, ignoreFailure, line }
}

/** `A=1 "B=two words"` → [['A','1'], ['B','two words']]. */
export function parseEnvironment(value: string): Array<[string, string]> {
  return words(value).map((word) => {
    const eq = word.indexOf('=')
    const name = eq < 0 ? word : word.slice(0, eq)
    if (eq < 0 || !envNameRe.test(name)) {
      throw new ValueFault(
        `"${word}" is not NAME=value (NAME: letters, digits and _, not starting with a digit)`,
      )
    }
    return [name, word.slice(eq + 1)]
  })
}

export function parsePath(value: string): UnitPath {
  const optional = value.startsWith('-')
  const path = optional ? value.slice(1) : value
  if (!path.startsWith('/')) throw new ValueFault(`"${path}" is not an absolute path`)
  return { path, optional }
}

export function parseUser(value: string): string {
  if (!userRe.test(value)) throw new ValueFault(`"${value}" is not a user name or numeric id`)
  return value
}

/** systemd's booleans (parse_boolean), case-insensitive. */
export function parseBoolean(value: string): boolean {
  const v = value.toLowerCase()
  if (['1', 'yes', 'y', 'true', 't', 'on'].includes(v)) return true
  if (['0', 'no', 'n', 'false', 'f', 'off'].includes(v)) return false
  throw new ValueFault(`"${value}" is not a boolean (true/false, yes/no, on/off, 1/0)`)
}

export function oneOf<T extends string>(value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new ValueFault(`"${value}" is not one of ${allowed.join(', ')}`)
}

/** Unit names for After=, Before=, Requires=, Wants= (any systemd unit type). */
export function parseSystemdNames(value: string): string[] {
  const names = words(value)
  for (const name of names) if (!isSystemdUnitName(name)) throw new ValueFault(`"${name}" is not a unit name`)
  return names
}

/** Unit names for MachineOf= and Replaces=: Cairn units, not templates. */
export function parseUnitRefs(value: string): string[] {
  const names = words(value)
  for (const name of names) {
    const kind = parseUnitNameOrFault(name)
    if (kind === 'template') throw new ValueFault(`"${name}" is a template; name an instance`)
  }
  return names
}

function parseUnitNameOrFault(name: string): string {
  try {
    return parseUnitName(name).kind
  } catch (error) {
    throw new ValueFault(error instanceof Error ? error.message : String(error))
  }
}

/** `"region=eu" "disk=ssd"` → pairs. Keys as the agent's --metadata keys, values non-empty. */
export function parseMetadataPairs(value: string): Array<[string, string]> {
  return words(value).map((word) => {
    const eq = word.indexOf('=')
    const key = word.slice(0, Math.max(eq, 0))
    const v = word.slice(eq + 1)
    if (eq <= 0 || !metadataKeyRe.test(key) || v === '') {
      throw new ValueFault(`"${word}" is not key=value (only equality: fleet has no != or negation)`)
    }
    if (Buffer.byteLength(key) > unitLimits.metadataKeyBytesMax)
      throw new ValueFault(`key longer than metadataKeyBytesMax`)
    if (Buffer.byteLength(v) > unitLimits.metadataValueBytesMax)
      throw new ValueFault(`value longer than metadataValueBytesMax`)
    return [key, v]
  })
}

export function parseGlobs(value: string): string[] {
  const globs = words(value)
  for (const glob of globs) compileGlob(glob)
  return globs
}

export function parseMachineId(value: string): string {
  const ids = words(value)
  const id = ids[0]
  if (ids.length !== 1 || id === undefined || id === '') throw new ValueFault('exactly one machine id')
  if (id.length > unitLimits.machineIdCharsMax)
    throw new ValueFault(`longer than machineIdCharsMax (${unitLimits.machineIdCharsMax})`)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters
  if (/[\s\x00-\x1f\x7f]/.test(id)) throw new ValueFault('a machine id has no blanks or control characters')
  return id
}

/** `region,zone,machine`: distinct metadata keys, widest first; `machine`, if present, last. */
export function parseTopology(value: string): string[] {
  const levels = value.split(',').map((level) => level.trim())
  if (levels.length > unitLimits.topologyLevelsMax) {
    throw new ValueFault(`more than topologyLevelsMax (${unitLimits.topologyLevelsMax}) levels`)
  }
  for (const [i, level] of levels.entries()) {
    if (!metadataKeyRe.test(level) || Buffer.byteLength(level) > unitLimits.metadataKeyBytesMax) {
      throw new ValueFault(`"${level}" is not a metadata key (A-Z a-z 0-9 _ . -)`)
    }
    if (levels.indexOf(level) !== i) throw new ValueFault(`"${level}" is given twice`)
    if (level === machineLevel && i !== levels.length - 1)
      throw new ValueFault('"machine" is the narrowest level: put it last')
  }
  return levels
}

/** `zone:1`, `machine:2:soft` (mode defaults to hard). */
export function parseSpreadRules(value: string, line: number, min: number): SpreadRule[] {
  return words(value).map((word) => {
    const [level = '', countText = '', mode = 'hard', extra] = word.split(':')
    const count = /^\d{1,9}$/.test(countText) ? Number(countText) : Number.NaN
    if (extra !== undefined || !metadataKeyRe.test(level) || !(count >= min)) {
      throw new ValueFault(`"${word}" is not <level>:<count>[:hard|soft] with a count of at least ${min}`)
    }
    if (count > unitLimits.spreadCountMax)
      throw new ValueFault(`count above spreadCountMax (${unitLimits.spreadCountMax})`)
    return { level, count, mode: oneOf(mode, ['hard', 'soft'] as const), line }
  })
}

const serviceNameRe = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/

/** ServiceName=: one DNS label (letters, digits, `-`, `_`), so `<name>.service.cairn` resolves. */
export function parseServiceName(value: string): string {
  if (value.length > unitLimits.serviceNameCharsMax) {
    throw new ValueFault(`longer than serviceNameCharsMax (${unitLimits.serviceNameCharsMax})`)
  }
  if (!serviceNameRe.test(value)) {
    throw new ValueFault(
      `"${value}" is not a service name (letters, digits, - and _, starting and ending with a letter or digit)`,
    )
  }
  return value
}

/** ServicePort=: 1..65535, written in decimal. */
export function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN
  if (!(port >= 1 && port <= 65_535)) throw new ValueFault(`"${value}" is not a port (1..65535)`)
  return port
}

/** ServiceTags=: words, each non-empty and at most serviceTagBytesMax bytes. */
export function parseTags(value: string): string[] {
  const tags = words(value)
  for (const tag of tags) {
    if (tag === '') throw new ValueFault('an empty tag')
    if (Buffer.byteLength(tag) > unitLimits.serviceTagBytesMax) {
      throw new ValueFault(`a tag longer than serviceTagBytesMax (${unitLimits.serviceTagBytesMax} bytes)`)
    }
  }
  return tags
}

function checkTargetLength(value: string): void {
  if (value.length > unitLimits.checkTargetCharsMax) {
    throw new ValueFault(`longer than checkTargetCharsMax (${unitLimits.checkTargetCharsMax})`)
  }
}

/** CheckHTTP=: an absolute http:// or https:// URL. */
export function parseHttpCheck(value: string): string {
  checkTargetLength(value)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ValueFault(`"${value}" is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValueFault(`"${value}" is not an http:// or https:// URL`)
  }
  if (url.hostname === '') throw new ValueFault(`"${value}" has no host`)
  return value
}

/** CheckTCP=: `host:port`, an IPv6 address in brackets (`[::1]:80`). */
export function parseTcpCheck(value: string): string {
  checkTargetLength(value)
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(value)
  const port = m === null ? Number.NaN : Number(m[3])
  if (m === null || !(port >= 1 && port <= 65_535)) {
    throw new ValueFault(`"${value}" is not host:port (a port in 1..65535; IPv6 as [::1]:80)`)
  }
  return value
}

/** A time span that must be at least `minMs` (CheckInterval, CheckTimeout, UpdateTimeoutSec). */
export function parseSpanAtLeast(value: string, minMs: number, parse: (v: string) => number): number {
  const ms = parse(value)
  if (ms < minMs) throw new ValueFault(`shorter than the minimum, ${minMs} ms`)
  return ms
}

/** A whole number in min..max, written in decimal (UpdateParallelism). */
export function parseCount(value: string, min: number, max: number, limitName: string): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
  if (!(n >= min)) throw new ValueFault(`"${value}" is not a whole number of at least ${min}`)
  if (n > max) throw new ValueFault(`above ${limitName} (${max})`)
  return n
}
