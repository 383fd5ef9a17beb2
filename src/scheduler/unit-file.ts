/**
 * A unit file's meaning: parseUnitFile turns systemd INI text into a typed UnitFile, or refuses it
 * with a UnitFileError naming file, line and key. docs/units.md is the user's page for every key.
 *
 * Invariants:
 * - A returned UnitFile is complete and valid: exactly one ExecStart, every typed field decoded,
 *   every fleet combination rule checked, every spread rule naming a topology level, a registration's
 *   check only with a ServiceName and of one kind. A refused file yields no partial model (the caller
 *   changes nothing).
 * - [X-Cairn] keys come in three groups: spread (Topology, MaxSkew, Cap) and rolling updates
 *   (UpdateParallelism, UpdateTimeoutSec) for template instances that are not Global; registration
 *   (ServiceName, ServicePort, ServiceTags, Check*) for any unit. `update` is filled for every unit.
 * - Values are specifier-expanded (%n %N %p %i %%) for the name parsed; `options` keeps every
 *   assignment as written, in file order, for the fleet API's `options` and for re-parsing.
 * - Repeated single-valued keys: the last wins. List keys append; an empty assignment resets a list
 *   (and a single-valued key) to its default, as systemd does.
 * - Unknown keys of [Unit] and [Service], and [Install] and X-* sections, are kept in `ignored`
 *   (systemd's business, not Cairn's: they have no effect); unknown [X-Fleet] and [X-Cairn] keys and
 *   any other section are errors.
 * - parseUnitFile throws only UnitFileError and UnitNameError.
 */

import { unitLimits } from './limits.ts'
import { type MetadataRule, metadataRule } from './metadata-rule.ts'
import { parseTimeSpanMs } from './time-span.ts'
import { UnitFileError, UnitNameError, ValueFault } from './unit-error.ts'
import { expandSpecifiers, instanceOf, parseUnitName, type UnitName } from './unit-name.ts'
import { parseUnitSyntax, type UnitOption } from './unit-syntax.ts'
import {
  appendAll,
  oneOf,
  parseBoolean,
  parseCommand,
  parseCount,
  parseEnvironment,
  parseGlobs,
  parseHttpCheck,
  parseMachineId,
  parseMetadataPairs,
  parsePath,
  parsePort,
  parseServiceName,
  parseSpanAtLeast,
  parseSpreadRules,
  parseSystemdNames,
  parseTags,
  parseTcpCheck,
  parseTopology,
  parseUnitRefs,
  parseUser,
  type SpreadRule,
  topologyDefault,
  type UnitCommand,
  type UnitPath,
  words,
} from './unit-values.ts'

export type RestartPolicy = 'no' | 'on-failure' | 'always'
export const restartPolicies: readonly RestartPolicy[] = ['no', 'on-failure', 'always']

/** systemd's defaults, which fleet passed through. */
export const restartMsDefault = 100
export const timeoutStopMsDefault = 90_000
/** [X-Cairn] defaults: a declared check's interval and timeout (Consul's usual 10s/5s). */
export const checkIntervalMsDefault = 10_000
export const checkTimeoutMsDefault = 5_000
/** [X-Cairn] defaults: one instance at a time, each healthy within 60 s or the rollout rolls back. */
export const updateParallelismDefault = 1
export const updateTimeoutMsDefault = 60_000
/** The instance a template is checked as (see checkUnitTemplate). */
export const templateSampleInstance = '1'

export interface UnitSection {
  readonly description: string
  readonly documentation: readonly string[]
  /** Ordering and dependency metadata, kept and shown; Cairn does not order units by them. */
  readonly after: readonly string[]
  readonly before: readonly string[]
  readonly requires: readonly string[]
  readonly wants: readonly string[]
}

export interface ServiceSection {
  readonly type: 'simple' | 'exec'
  readonly execStart: UnitCommand
  readonly execStartPre: readonly UnitCommand[]
  readonly execStop: readonly UnitCommand[]
  /** In assignment order; a later assignment of a name replaces the earlier one. */
  readonly environment: ReadonlyArray<readonly [string, string]>
  readonly environmentFiles: readonly UnitPath[]
  readonly workingDirectory: UnitPath | undefined
  readonly user: string | undefined
  readonly restart: RestartPolicy
  readonly restartMs: number
  /** null: never escalate to SIGKILL (`infinity` or `0`, as systemd). */
  readonly timeoutStopMs: number | null
}

export interface FleetSection {
  readonly machineId: string | undefined
  readonly machineOf: readonly string[]
  readonly machineMetadata: MetadataRule
  /** Globs (Go path.Match syntax, see unit-glob.ts) against unit names. */
  readonly conflicts: readonly string[]
  readonly global: boolean
  readonly replaces: readonly string[]
}

/** How a template's instances spread; every level of `topology` has exactly one maxSkew rule. */
export interface Spread {
  /** Widest first; each a machine metadata key, `machine` the machine itself. */
  readonly topology: readonly string[]
  readonly maxSkew: readonly SpreadRule[]
  readonly caps: readonly SpreadRule[]
}

/** The health check a registration declares: exactly one of http and tcp is set. */
export interface RegistrationCheck {
  readonly http?: string
  readonly tcp?: string
  readonly intervalMs: number
  readonly timeoutMs: number
}

/** The Consul service the runner registers while the unit runs (service id = the unit name). */
export interface Registration {
  readonly name: string
  /** 0 when ServicePort is not given (a service without a port, as Consul allows). */
  readonly port: number
  readonly tags: readonly string[]
  readonly check: RegistrationCheck | undefined
}

/** How the engine rolls a template's instances to a new version. */
export interface UpdatePolicy {
  /** Instances replaced at a time. */
  readonly parallelism: number
  /** How long a new instance has to become healthy before the rollout is rolled back. */
  readonly timeoutMs: number
}

export interface UnitFile {
  readonly name: UnitName
  readonly file: string
  readonly options: readonly UnitOption[]
  readonly unit: UnitSection
  readonly service: ServiceSection
  readonly fleet: FleetSection
  /** For template instances that are not Global; undefined otherwise. */
  readonly spread: Spread | undefined
  /** The declared service registration, when [X-Cairn] has a ServiceName. */
  readonly registration: Registration | undefined
  /** Rolling update settings; the defaults for plain and Global units (which are not rolled). */
  readonly update: UpdatePolicy
  /** Assignments kept as metadata with no effect (see the header). */
  readonly ignored: readonly UnitOption[]
}

export interface ParseOptions {
  /** The unit's name: a plain unit or an instance (templates: checkUnitTemplate). */
  name: string
  /** The name errors show; defaults to `name`. */
  file?: string
}

/** Parses a unit file for a plain or instance name. Throws UnitFileError or UnitNameError. */
export function parseUnitFile(input: string | Uint8Array, options: ParseOptions): UnitFile {
  const name = parseUnitName(options.name)
  if (name.kind === 'template') {
    throw new UnitNameError(
      name.name,
      'a template is not run itself: parse an instance, or use checkUnitTemplate',
    )
  }
  return parseNamed(input, name, options.file ?? name.name)
}

/**
 * Checks a template (`web@.service`) as its instance `web@1.service` would be parsed, and returns that
 * sample. Each instance is parsed again with its own name when it is started, so an instance whose
 * expanded file is invalid is refused then.
 */
export function checkUnitTemplate(input: string | Uint8Array, options: ParseOptions): UnitFile {
  const template = parseUnitName(options.name)
  if (template.kind !== 'template') throw new UnitNameError(template.name, 'not a template (name@.service)')
  return parseNamed(input, instanceOf(template, templateSampleInstance), options.file ?? template.name)
}

type Handler = (draft: Draft, value: string, option: UnitOption) => void

interface Draft {
  unit: {
    -readonly [K in keyof UnitSection]: UnitSection[K] extends readonly string[] ? string[] : UnitSection[K]
  }
  type: 'simple' | 'exec'
  execStart: UnitCommand[]
  execStartPre: UnitCommand[]
  execStop: UnitCommand[]
  environment: Array<[string, string]>
  environmentFiles: UnitPath[]
  workingDirectory: UnitPath | undefined
  user: string | undefined
  restart: RestartPolicy
  restartMs: number
  timeoutStopMs: number | null
  machineId: string | undefined
  machineOf: string[]
  metadata: Array<[string, string]>
  conflicts: string[]
  global: boolean
  replaces: string[]
  topology: string[] | undefined
  maxSkew: SpreadRule[]
  caps: SpreadRule[]
  serviceName: string | undefined
  servicePort: number
  serviceTags: string[]
  checkHttp: string | undefined
  checkTcp: string | undefined
  checkIntervalMs: number
  checkTimeoutMs: number
  updateParallelism: number
  updateTimeoutMs: number
  /** The line of the last assignment of each `Section.Key`. */
  lines: Map<string, number>
}

/** A list key: an empty value resets the list, anything else appends. */
function listKey<T>(
  pick: (d: Draft) => T[],
  parse: (value: string, option: UnitOption) => readonly T[],
): Handler {
  return (draft, value, option) => {
    const list = pick(draft)
    if (value === '') list.length = 0
    else appendAll(list, parse(value, option))
  }
}

/** A single-valued key: an empty value resets it to `empty`, anything else replaces it. */
function singleKey<T>(set: (d: Draft, v: T) => void, empty: T, parse: (value: string) => T): Handler {
  return (draft, value) => set(draft, value === '' ? empty : parse(value))
}

const unitHandlers = new Map<string, Handler>([
  [
    'Description',
    singleKey(
      (d, v) => (d.unit.description = v),
      '',
      (v) => v,
    ),
  ],
  ['Documentation', listKey((d) => d.unit.documentation, words)],
  ['After', listKey((d) => d.unit.after, parseSystemdNames)],
  ['Before', listKey((d) => d.unit.before, parseSystemdNames)],
  ['Requires', listKey((d) => d.unit.requires, parseSystemdNames)],
  ['Wants', listKey((d) => d.unit.wants, parseSystemdNames)],
])

const serviceHandlers = new Map<string, Handler>([
  [
    'Type',
    singleKey<'simple' | 'exec'>(
      (d, v) => (d.type = v),
      'simple',
      (v) => oneOf(v, ['simple', 'exec'] as const),
    ),
  ],
  [
    'ExecStart',
    listKey(
      (d) => d.execStart,
      (v, o) => [parseCommand(v, o.line)],
    ),
  ],
  [
    'ExecStartPre',
    listKey(
      (d) => d.execStartPre,
      (v, o) => [parseCommand(v, o.line)],
    ),
  ],
  [
    'ExecStop',
    listKey(
      (d) => d.execStop,
      (v, o) => [parseCommand(v, o.line)],
    ),
  ],
  ['Environment', (d, v) => setEnvironment(d, v)],
  [
    'EnvironmentFile',
    listKey(
      (d) => d.environmentFiles,
      (v) => [parsePath(v)],
    ),
  ],
  ['WorkingDirectory', singleKey((d, v) => (d.workingDirectory = v), undefined, parsePath)],
  ['User', singleKey((d, v) => (d.user = v), undefined, parseUser)],
  [
    'Restart',
    singleKey<RestartPolicy>(
      (d, v) => (d.restart = v),
      'no',
      (v) => oneOf(v, restartPolicies),
    ),
  ],
  ['RestartSec', singleKey((d, v) => (d.restartMs = v), restartMsDefault, parseTimeSpanMs)],
  ['TimeoutStopSec', singleKey((d, v) => (d.timeoutStopMs = v), timeoutStopMsDefault, parseStopTimeout)],
])

const fleetHandlers = new Map<string, Handler>([
  ['MachineID', singleKey((d, v) => (d.machineId = v), undefined, parseMachineId)],
  ['MachineOf', listKey((d) => d.machineOf, parseUnitRefs)],
  ['MachineMetadata', listKey((d) => d.metadata, parseMetadataPairs)],
  ['Conflicts', listKey((d) => d.conflicts, parseGlobs)],
  ['Global', singleKey((d, v) => (d.global = v), false, parseBoolean)],
  ['Replaces', listKey((d) => d.replaces, parseUnitRefs)],
])

const cairnHandlers = new Map<string, Handler>([
  ['Topology', singleKey((d, v) => (d.topology = v), undefined, parseTopology)],
  [
    'MaxSkew',
    listKey(
      (d) => d.maxSkew,
      (v, o) => parseSpreadRules(v, o.line, 1),
    ),
  ],
  [
    'Cap',
    listKey(
      (d) => d.caps,
      (v, o) => parseSpreadRules(v, o.line, 1),
    ),
  ],
  ['ServiceName', singleKey((d, v) => (d.serviceName = v), undefined, parseServiceName)],
  ['ServicePort', singleKey((d, v) => (d.servicePort = v), 0, parsePort)],
  ['ServiceTags', listKey((d) => d.serviceTags, parseTags)],
  ['CheckHTTP', singleKey((d, v) => (d.checkHttp = v), undefined, parseHttpCheck)],
  ['CheckTCP', singleKey((d, v) => (d.checkTcp = v), undefined, parseTcpCheck)],
  [
    'CheckInterval',
    singleKey(
      (d, v) => (d.checkIntervalMs = v),
      checkIntervalMsDefault,
      (v) => parseSpanAtLeast(v, unitLimits.checkIntervalMsMin, parseTimeSpanMs),
    ),
  ],
  [
    'CheckTimeout',
    singleKey(
      (d, v) => (d.checkTimeoutMs = v),
      checkTimeoutMsDefault,
      (v) => parseSpanAtLeast(v, 1, parseTimeSpanMs),
    ),
  ],
  [
    'UpdateParallelism',
    singleKey(
      (d, v) => (d.updateParallelism = v),
      updateParallelismDefault,
      (v) => parseCount(v, 1, unitLimits.updateParallelismMax, 'updateParallelismMax'),
    ),
  ],
  [
    'UpdateTimeoutSec',
    singleKey(
      (d, v) => (d.updateTimeoutMs = v),
      updateTimeoutMsDefault,
      (v) => parseSpanAtLeast(v, 1, parseTimeSpanMs),
    ),
  ],
])

/** [X-Cairn] keys for a template's instances only (not plain units, not Global units). */
const spreadKeys = new Set(['Topology', 'MaxSkew', 'Cap'])
const updateKeys = new Set(['UpdateParallelism', 'UpdateTimeoutSec'])
const checkKeys = ['CheckHTTP', 'CheckTCP', 'CheckInterval', 'CheckTimeout'] as const

/** Sections whose unknown keys are kept (systemd's own) or refused (ours). */
const sections = new Map<string, { handlers: Map<string, Handler>; unknownKeys: 'keep' | 'refuse' }>([
  ['Unit', { handlers: unitHandlers, unknownKeys: 'keep' }],
  ['Service', { handlers: serviceHandlers, unknownKeys: 'keep' }],
  ['X-Fleet', { handlers: fleetHandlers, unknownKeys: 'refuse' }],
  ['X-Cairn', { handlers: cairnHandlers, unknownKeys: 'refuse' }],
])

const deprecatedFleetKeys = new Map([
  ['X-ConditionMachineID', 'MachineID'],
  ['X-ConditionMachineOf', 'MachineOf'],
  ['X-ConditionMachineMetadata', 'MachineMetadata'],
  ['X-Conflicts', 'Conflicts'],
])

function parseStopTimeout(value: string): number | null {
  if (value === 'infinity') return null
  const ms = parseTimeSpanMs(value)
  return ms === 0 ? null : ms
}

function setEnvironment(draft: Draft, value: string): void {
  if (value === '') {
    draft.environment.length = 0
    return
  }
  for (const [name, v] of parseEnvironment(value)) {
    const at = draft.environment.findIndex(([n]) => n === name)
    if (at >= 0) draft.environment.splice(at, 1)
    appendAll(draft.environment, [[name, v]])
  }
}

function emptyDraft(): Draft {
  return {
    unit: { description: '', documentation: [], after: [], before: [], requires: [], wants: [] },
    type: 'simple',
    execStart: [],
    execStartPre: [],
    execStop: [],
    environment: [],
    environmentFiles: [],
    workingDirectory: undefined,
    user: undefined,
    restart: 'no',
    restartMs: restartMsDefault,
    timeoutStopMs: timeoutStopMsDefault,
    machineId: undefined,
    machineOf: [],
    metadata: [],
    conflicts: [],
    global: false,
    replaces: [],
    topology: undefined,
    maxSkew: [],
    caps: [],
    serviceName: undefined,
    servicePort: 0,
    serviceTags: [],
    checkHttp: undefined,
    checkTcp: undefined,
    checkIntervalMs: checkIntervalMsDefault,
    checkTimeoutMs: checkTimeoutMsDefault,
    updateParallelism: updateParallelismDefault,
    updateTimeoutMs: updateTimeoutMsDefault,
    lines: new Map(),
  }
}

function parseNamed(input: string | Uint8Array, name: UnitName, file: string): UnitFile {
  const syntax = parseUnitSyntax(input, file)
  for (const [section, line] of syntax.sections) checkSection(section, line, file)
  const draft = emptyDraft()
  const ignored: UnitOption[] = []
  for (const option of syntax.options) {
    const section = sections.get(option.section)
    const handler = section?.handlers.get(option.name)
    if (handler === undefined) {
      if (section?.unknownKeys === 'refuse') throw unknownKey(option, file)
      ignored.push(option)
      continue
    }
    try {
      handler(draft, expandSpecifiers(option.value, name), option)
    } catch (error) {
      if (error instanceof ValueFault) throw new UnitFileError(file, option.line, option.name, error.message)
      throw error
    }
    draft.lines.set(`${option.section}.${option.name}`, option.line)
  }
  return finish(draft, name, file, syntax.options, syntax.sections, ignored)
}

function checkSection(section: string, line: number, file: string): void {
  if (sections.has(section) || section === 'Install' || section.startsWith('X-')) return
  throw new UnitFileError(
    file,
    line,
    `[${section}]`,
    'unknown section: Cairn runs .service units ([Unit], [Service], [Install], [X-Fleet], [X-Cairn], X-* extensions)',
  )
}

function unknownKey(option: UnitOption, file: string): UnitFileError {
  const current = deprecatedFleetKeys.get(option.name)
  const known = [...(sections.get(option.section)?.handlers.keys() ?? [])].join(', ')
  const reason =
    current === undefined
      ? `unknown key in [${option.section}] (known: ${known})`
      : `deprecated fleet key: use ${current}`
  return new UnitFileError(file, option.line, option.name, reason)
}

function finish(
  draft: Draft,
  name: UnitName,
  file: string,
  options: readonly UnitOption[],
  sectionLines: ReadonlyMap<string, number>,
  ignored: UnitOption[],
): UnitFile {
  const [execStart, second] = draft.execStart
  if (second !== undefined) {
    throw new UnitFileError(
      file,
      second.line,
      'ExecStart',
      'more than one ExecStart (use ExecStartPre for commands run before it)',
    )
  }
  if (execStart === undefined)
    throw new UnitFileError(file, sectionLines.get('Service') ?? 0, 'ExecStart', 'missing')
  checkFleetRules(draft, name, file)
  return {
    name,
    file,
    options,
    unit: draft.unit,
    service: {
      type: draft.type,
      execStart,
      execStartPre: draft.execStartPre,
      execStop: draft.execStop,
      environment: draft.environment,
      environmentFiles: draft.environmentFiles,
      workingDirectory: draft.workingDirectory,
      user: draft.user,
      restart: draft.restart,
      restartMs: draft.restartMs,
      timeoutStopMs: draft.timeoutStopMs,
    },
    fleet: {
      machineId: draft.machineId,
      machineOf: draft.machineOf,
      machineMetadata: metadataRule(draft.metadata),
      conflicts: draft.conflicts,
      global: draft.global,
      replaces: draft.replaces,
    },
    spread: resolveSpread(draft, name, file, options),
    registration: resolveRegistration(draft, file),
    update: { parallelism: draft.updateParallelism, timeoutMs: draft.updateTimeoutMs },
    ignored,
  }
}

/** fleet's combination rules (Global, Replaces), and no unit placed relative to itself. */
function checkFleetRules(draft: Draft, name: UnitName, file: string): void {
  const fault = (key: string, reason: string) =>
    new UnitFileError(file, draft.lines.get(`X-Fleet.${key}`) ?? 0, key, reason)
  if (draft.global) {
    if (draft.machineId !== undefined)
      throw fault('MachineID', 'a Global unit takes only MachineMetadata and Conflicts')
    if (draft.machineOf.length > 0)
      throw fault('MachineOf', 'a Global unit takes only MachineMetadata and Conflicts')
    if (draft.replaces.length > 0)
      throw fault('Replaces', 'a Global unit takes only MachineMetadata and Conflicts')
  }
  if (draft.replaces.length > 0 && draft.conflicts.length > 0)
    throw fault('Replaces', 'Replaces cannot be combined with Conflicts')
  if (draft.machineOf.includes(name.name)) throw fault('MachineOf', 'a unit cannot follow itself')
  if (draft.replaces.includes(name.name)) throw fault('Replaces', 'a unit cannot replace itself')
}

function resolveSpread(
  draft: Draft,
  name: UnitName,
  file: string,
  options: readonly UnitOption[],
): Spread | undefined {
  const first = options.find(
    (o) => o.section === 'X-Cairn' && (spreadKeys.has(o.name) || updateKeys.has(o.name)),
  )
  if (first !== undefined && (name.kind === 'plain' || draft.global)) {
    const what = spreadKeys.has(first.name) ? 'spread' : 'rolling updates'
    const reason =
      name.kind === 'plain'
        ? `${what} applies to the instances of a template: name the unit name@.service`
        : `a Global unit runs on every matching machine: it takes no ${what}`
    throw new UnitFileError(file, first.line, first.name, reason)
  }
  if (name.kind === 'plain' || draft.global) return undefined
  const topology = draft.topology ?? [...topologyDefault]
  const maxSkew = checkRules(draft.maxSkew, 'MaxSkew', topology, file)
  const caps = checkRules(draft.caps, 'Cap', topology, file)
  return {
    topology,
    maxSkew: topology.map(
      (level) => maxSkew.find((r) => r.level === level) ?? { level, count: 1, mode: 'soft', line: 0 },
    ),
    caps,
  }
}

/** A registration needs a ServiceName; its check is one of CheckHTTP and CheckTCP. */
function resolveRegistration(draft: Draft, file: string): Registration | undefined {
  const line = (key: string) => draft.lines.get(`X-Cairn.${key}`)
  // Set after resets: `CheckHTTP=` on its own sets nothing.
  const set: Record<string, boolean> = {
    ServicePort: draft.servicePort !== 0,
    ServiceTags: draft.serviceTags.length > 0,
    CheckHTTP: draft.checkHttp !== undefined,
    CheckTCP: draft.checkTcp !== undefined,
    CheckInterval: draft.checkIntervalMs !== checkIntervalMsDefault,
    CheckTimeout: draft.checkTimeoutMs !== checkTimeoutMsDefault,
  }
  const given = (key: string) => set[key] === true
  if (draft.serviceName === undefined) {
    const orphan = ['ServicePort', 'ServiceTags', ...checkKeys].find(given)
    if (orphan !== undefined)
      throw new UnitFileError(file, line(orphan) ?? 0, orphan, 'without a ServiceName to register')
    return undefined
  }
  if (draft.serviceTags.length > unitLimits.serviceTagsMax) {
    const reason = `more than serviceTagsMax (${unitLimits.serviceTagsMax}) tags`
    throw new UnitFileError(file, line('ServiceTags') ?? 0, 'ServiceTags', reason)
  }
  if (draft.checkHttp !== undefined && draft.checkTcp !== undefined) {
    const later = (line('CheckHTTP') ?? 0) > (line('CheckTCP') ?? 0) ? 'CheckHTTP' : 'CheckTCP'
    throw new UnitFileError(
      file,
      line(later) ?? 0,
      later,
      'a registration has one check: CheckHTTP or CheckTCP',
    )
  }
  const target =
    draft.checkHttp !== undefined
      ? { http: draft.checkHttp }
      : draft.checkTcp !== undefined
        ? { tcp: draft.checkTcp }
        : undefined
  if (target === undefined) {
    const orphan = ['CheckInterval', 'CheckTimeout'].find(given)
    if (orphan !== undefined)
      throw new UnitFileError(file, line(orphan) ?? 0, orphan, 'without a check (CheckHTTP or CheckTCP)')
  }
  return {
    name: draft.serviceName,
    port: draft.servicePort,
    tags: draft.serviceTags,
    check:
      target === undefined
        ? undefined
        : { ...target, intervalMs: draft.checkIntervalMs, timeoutMs: draft.checkTimeoutMs },
  }
}

/** Each rule names a topology level, at most one rule per level. */
function checkRules(
  rules: SpreadRule[],
  key: string,
  topology: readonly string[],
  file: string,
): SpreadRule[] {
  const seen = new Set<string>()
  for (const rule of rules) {
    if (!topology.includes(rule.level)) {
      throw new UnitFileError(
        file,
        rule.line,
        key,
        `"${rule.level}" is not a Topology level (${topology.join(',')})`,
      )
    }
    if (seen.has(rule.level))
      throw new UnitFileError(file, rule.line, key, `a second rule for "${rule.level}"`)
    seen.add(rule.level)
  }
  return rules
}
