/**
 * Unit names, templates, instances, specifiers and brace expansion.
 *
 *   web.service          a plain unit            prefix "web", no instance
 *   web@.service         a template              prefix "web", instance ""
 *   web@3.service        an instance of web@.service
 *
 * Invariants:
 * - A valid name is at most unitNameCharsMax characters of `[A-Za-z0-9:_.@-]` (fleet's set), ends
 *   in `.service` (the only kind Cairn runs: there is no systemd to hand a socket or a timer to),
 *   has a non-empty prefix and at most one `@`. An instance string is non-empty.
 * - Specifiers (`%n %N %p %i %%`) expand with systemd's meanings; any other `%` sequence is a fault,
 *   so a unit never silently runs with a literal `%H` it expected to be expanded.
 * - Brace expansion checks the number of names it would produce before producing any, so a hostile
 *   pattern costs at most braceNamesMax names of work.
 */
import { unitLimits } from './limits.ts'
import { UnitNameError, ValueFault } from './unit-error.ts'

export type UnitKind = 'plain' | 'template' | 'instance'

export interface UnitName {
  /** The full name, `web@3.service`. */
  readonly name: string
  readonly kind: UnitKind
  /** The part before `@` (or before the suffix for a plain unit): `web`. */
  readonly prefix: string
  /** The part between `@` and the suffix: `3`; `''` for templates and plain units. */
  readonly instance: string
  /** The type suffix without its dot; always `service` for a name Cairn runs. */
  readonly suffix: 'service'
}

export const unitSuffix = '.service'
const nameCharsRe = /^[A-Za-z0-9:_.@-]+$/
/** Any systemd unit name (for After=, Wants= ...): `name.type`, systemd's character set plus `\`. */
const systemdNameRe = /^[A-Za-z0-9:_.@\\-]+\.[a-z]+$/

/** Parses a unit name Cairn can run. Throws UnitNameError. */
export function parseUnitName(text: string): UnitName {
  const reason = unitNameFault(text)
  if (reason !== undefined) throw new UnitNameError(text, reason)
  const stem = text.slice(0, -unitSuffix.length)
  const at = stem.indexOf('@')
  if (at < 0) return { name: text, kind: 'plain', prefix: stem, instance: '', suffix: 'service' }
  const instance = stem.slice(at + 1)
  return {
    name: text,
    kind: instance === '' ? 'template' : 'instance',
    prefix: stem.slice(0, at),
    instance,
    suffix: 'service',
  }
}

/** Why `text` is not a unit name Cairn can run, or undefined when it is one. */
export function unitNameFault(text: string): string | undefined {
  if (text.length > unitLimits.unitNameCharsMax)
    return `longer than unitNameCharsMax (${unitLimits.unitNameCharsMax})`
  if (!nameCharsRe.test(text)) return 'a unit name is made of A-Z a-z 0-9 : _ . @ - only'
  if (!text.endsWith(unitSuffix)) return 'only .service units are supported'
  const stem = text.slice(0, -unitSuffix.length)
  const at = stem.indexOf('@')
  if (stem === '' || at === 0) return 'the name before the suffix (or before @) is empty'
  if (at >= 0 && stem.indexOf('@', at + 1) >= 0) return 'more than one @'
  return undefined
}

export function isUnitName(text: string): boolean {
  return unitNameFault(text) === undefined
}

/** True for any systemd unit name (`network.target`, `docker.socket`), as After= and Wants= take. */
export function isSystemdUnitName(text: string): boolean {
  return text.length <= unitLimits.unitNameCharsMax && systemdNameRe.test(text)
}

/** The template an instance comes from (`web@3.service` → `web@.service`), else undefined. */
export function templateOf(name: UnitName): string | undefined {
  return name.kind === 'instance' ? `${name.prefix}@${unitSuffix}` : undefined
}

/** `web@.service` + `3` → `web@3.service` (validated). */
export function instanceOf(template: UnitName, instance: string): UnitName {
  if (template.kind !== 'template') throw new UnitNameError(template.name, 'not a template (name@.service)')
  return parseUnitName(`${template.prefix}@${instance}${unitSuffix}`)
}

/**
 * Expands `%n` (full name), `%N` (full name without the suffix), `%p` (prefix), `%i` (instance, empty
 * for templates and plain units) and `%%` in `text`. Throws ValueFault on any other specifier.
 */
export function expandSpecifiers(text: string, name: UnitName): string {
  if (!text.includes('%')) return text
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== '%') {
      out += c
      continue
    }
    const spec = text[++i]
    if (spec === 'n') out += name.name
    else if (spec === 'N') out += name.name.slice(0, -unitSuffix.length)
    else if (spec === 'p') out += name.prefix
    else if (spec === 'i') out += name.instance
    else if (spec === '%') out += '%'
    else if (spec === undefined) throw new ValueFault('a lone % ends the value (write %% for a percent sign)')
    else throw new ValueFault(`unsupported specifier %${spec} (Cairn expands %n %N %p %i and %%)`)
  }
  return out
}

type BracePart = { literal: string } | { choices: string[] }

/**
 * Brace expansion for friendly CLI names: `web@{1..6}.service`, `web@{a,b}.service`,
 * `{api,web}@{01..10}.service`. Ranges are ascending or descending non-negative integers, zero-padded
 * to the wider end when either end has a leading zero (bash's rule). Lists may have empty items
 * (`web{,-canary}.service`). No nesting. Names come out in order, duplicates dropped, each validated.
 * Throws UnitNameError.
 */
export function expandUnitNames(pattern: string): string[] {
  if (pattern.length > unitLimits.bracePatternCharsMax) {
    throw new UnitNameError(pattern, `longer than bracePatternCharsMax (${unitLimits.bracePatternCharsMax})`)
  }
  let parts: BracePart[]
  try {
    parts = braceParts(pattern)
  } catch (error) {
    if (error instanceof ValueFault) throw new UnitNameError(pattern, error.message)
    throw error
  }
  let names = ['']
  for (const part of parts) {
    if ('literal' in part) names = names.map((n) => n + part.literal)
    else names = names.flatMap((n) => part.choices.map((c) => n + c))
  }
  const unique = [...new Set(names)]
  for (const name of unique) {
    const reason = unitNameFault(name)
    if (reason !== undefined)
      throw new UnitNameError(pattern, `expands to ${JSON.stringify(name)}: ${reason}`)
  }
  return unique
}

/** Splits a pattern into literals and brace choices, checking the product size first. */
function braceParts(pattern: string): BracePart[] {
  const parts: BracePart[] = []
  let product = 1
  let groups = 0
  let i = 0
  while (i < pattern.length) {
    const open = pattern.indexOf('{', i)
    const close = pattern.indexOf('}', i)
    if (close >= 0 && (open < 0 || close < open)) throw new ValueFault('a } without its {')
    if (open < 0) {
      parts.push({ literal: pattern.slice(i) })
      break
    }
    parts.push({ literal: pattern.slice(i, open) })
    const end = pattern.indexOf('}', open)
    if (end < 0) throw new ValueFault('a { without its }')
    const body = pattern.slice(open + 1, end)
    if (body.includes('{')) throw new ValueFault('nested braces are not supported')
    if (++groups > unitLimits.braceGroupsMax)
      throw new ValueFault(`more than braceGroupsMax (${unitLimits.braceGroupsMax}) brace groups`)
    const count = braceCount(body)
    product *= count
    if (product > unitLimits.braceNamesMax)
      throw new ValueFault(`expands to more than braceNamesMax (${unitLimits.braceNamesMax}) names`)
    parts.push({ choices: braceChoices(body) })
    i = end + 1
  }
  return parts
}

const rangeRe = /^(\d{1,9})\.\.(\d{1,9})$/

/** How many choices a brace body yields, computed without producing them. */
function braceCount(body: string): number {
  const range = rangeRe.exec(body)
  if (range !== null) return Math.abs(Number(range[1]) - Number(range[2])) + 1
  if (!body.includes(',')) throw new ValueFault(`{${body}} is neither a range {1..6} nor a list {a,b}`)
  const items = body.split(',').length
  if (items > unitLimits.braceListItemsMax)
    throw new ValueFault(`more than braceListItemsMax (${unitLimits.braceListItemsMax}) items`)
  return items
}

/** The choices of a body whose count braceCount has already bounded. */
function braceChoices(body: string): string[] {
  const range = rangeRe.exec(body)
  if (range === null) return body.split(',')
  const [, fromText = '', toText = ''] = range
  const from = Number(fromText)
  const to = Number(toText)
  const padded = /^0\d/.test(fromText) || /^0\d/.test(toText)
  const width = padded ? Math.max(fromText.length, toText.length) : 0
  const step = from <= to ? 1 : -1
  const choices: string[] = []
  for (let n = from; n !== to + step; n += step) choices.push(String(n).padStart(width, '0'))
  return choices
}
