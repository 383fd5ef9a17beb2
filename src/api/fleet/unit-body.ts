/**
 * A fleet v1 Unit body in and out: decodeUnitBody checks a PUT body field by field (fleet's
 * `name`, `desiredState`, `options`, plus Cairn's `text`), and the unit file travels as text,
 * serialized from options the way fleet did (go-systemd's Serialize), so a unit submitted as
 * options by a fleet client has fleet's hash.
 *
 * Invariants:
 * - Options never smuggle a line: a section, name or value with a line break, a value ending in a
 *   backslash (it would continue onto the next option), a name that is not a systemd key or a
 *   section that is not a section name is refused before any text is made.
 * - decodeUnitBody throws only FLEET_REQUEST_INVALID; the unit file's meaning is checked by the
 *   caller (parseUnitFile / checkUnitTemplate).
 * - optionsOf never throws: a stored text that no longer parses shows no options.
 */
import { type DesiredState, desiredStates } from '../../scheduler/records.ts'
import { parseUnitSyntax } from '../../scheduler/unit-syntax.ts'
import { invalid } from './http.ts'
import { fleetLimits } from './limits.ts'

export interface FleetUnitOption {
  section: string
  name: string
  value: string
}

export interface UnitBody {
  desiredState: DesiredState | undefined
  /** The unit file, from `text` or serialized from non-empty `options`; undefined when neither. */
  text: string | undefined
}

const optionNameRe = /^[A-Za-z0-9_-]+$/
const sectionRe = /^[A-Za-z0-9_ .:-]+$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
const lineBreakRe = /[\r\n\x00]/

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function decodeDesiredState(value: unknown): DesiredState {
  if (typeof value !== 'string' || !desiredStates.includes(value as DesiredState)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value
    throw invalid(`invalid desiredState ${shown}: want one of ${desiredStates.join(', ')}`)
  }
  return value as DesiredState
}

/** Decodes a PUT body for the unit `name` (the one in the URL). */
export function decodeUnitBody(body: unknown, name: string): UnitBody {
  if (body === undefined) throw invalid('unable to decode body: the body is empty (want a JSON Unit)')
  if (!isObject(body)) throw invalid('unable to decode body: want a JSON object (a Unit)')
  if (body.name !== undefined && body.name !== '' && body.name !== name) {
    const shown = typeof body.name === 'string' ? JSON.stringify(body.name.slice(0, 300)) : typeof body.name
    throw invalid(`name in URL ${JSON.stringify(name)} differs from unit name in request body ${shown}`)
  }
  const desiredState =
    body.desiredState === undefined || body.desiredState === ''
      ? undefined
      : decodeDesiredState(body.desiredState)
  const options = body.options === undefined || body.options === null ? [] : decodeOptions(body.options)
  if (body.text !== undefined && typeof body.text !== 'string')
    throw invalid('text: want a string (a unit file)')
  if (body.text !== undefined && options.length > 0)
    throw invalid('give the unit as options or as text, not both')
  const text =
    typeof body.text === 'string' ? body.text : options.length > 0 ? serializeOptions(options) : undefined
  return { desiredState, text }
}

function decodeOptions(value: unknown): FleetUnitOption[] {
  if (!Array.isArray(value)) throw invalid('options: want an array of {section, name, value}')
  if (value.length > fleetLimits.optionsMax)
    throw invalid(`options: more than optionsMax (${fleetLimits.optionsMax})`)
  return value.map((item, index) => decodeOption(item, index))
}

function decodeOption(item: unknown, index: number): FleetUnitOption {
  const where = `options[${index}]`
  if (!isObject(item)) throw invalid(`${where}: want an object {section, name, value}`)
  const { section, name, value } = item
  if (typeof section !== 'string' || typeof name !== 'string' || typeof value !== 'string')
    throw invalid(`${where}: section, name and value must be strings`)
  if (!sectionRe.test(section))
    throw invalid(`${where}: section ${JSON.stringify(section.slice(0, 64))} is not a section name`)
  if (!optionNameRe.test(name))
    throw invalid(`${where}: name ${JSON.stringify(name.slice(0, 64))} is not a key name`)
  if (lineBreakRe.test(value)) throw invalid(`${where}: the value of ${name} contains a line break`)
  if (/(^|[^\\])(\\\\)*\\$/.test(value))
    throw invalid(`${where}: the value of ${name} ends in a backslash (it would continue onto the next line)`)
  return { section, name, value }
}

/**
 * The unit file of `options`, as go-systemd's Serialize wrote it for fleet: sections in order of
 * first appearance, each with its options in order, a blank line between sections.
 */
export function serializeOptions(options: readonly FleetUnitOption[]): string {
  const bySection = new Map<string, FleetUnitOption[]>()
  for (const option of options) {
    let list = bySection.get(option.section)
    if (list === undefined) bySection.set(option.section, (list = []))
    list.push(option)
  }
  const blocks: string[] = []
  for (const [section, list] of bySection) {
    blocks.push(`[${section}]\n${list.map((o) => `${o.name}=${o.value}\n`).join('')}`)
  }
  return blocks.join('\n')
}

/** The options of a stored unit file, as written; [] when it no longer parses. */
export function optionsOf(text: string, name: string): FleetUnitOption[] {
  try {
    return parseUnitSyntax(text, name).options.map((o) => ({
      section: o.section,
      name: o.name,
      value: o.value,
    }))
  } catch {
    return []
  }
}
