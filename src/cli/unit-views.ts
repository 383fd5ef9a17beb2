/**
 * The read-only `cairn unit` commands: list-units, list-unit-files, list-machines, status,
 * journal, cat. Tables as fleetctl printed them (upper-case header, `--no-legend` drops it,
 * `--fields` picks columns, `-l/--full` shows whole hashes); `-o json` prints the API's objects.
 */
import type { Command } from 'commander'
import { serializeOptions } from '../api/fleet/unit-body.ts'
import { unitHash } from '../scheduler/records.ts'
import { ClientError, type ClientFlags, runClient, withClientFlags } from './endpoint.ts'
import { formatJson, formatTable, print } from './output.ts'
import { unitArgs } from './unit-args.ts'
import {
  FleetClient,
  type FleetMachine,
  type FleetUnit,
  type FleetUnitState,
  type UnitStatus,
} from './unit-client.ts'
import { machineLegend } from './unit-wait.ts'

/** fleetctl's short hash. */
const shortHashChars = 7
/** `journal --lines` default (fleetctl's) and most. */
export const journalLinesDefault = 10
export const journalLinesMax = 10_000

interface ListFlags extends ClientFlags {
  fields?: string
  legend: boolean
  full?: boolean
}

type Columns<T> = Record<string, { header: string; cell: (row: T, full: boolean) => string }>

function listOptions(command: Command, fields: string): Command {
  return withClientFlags(command)
    .option('--fields <list>', `columns, comma-separated (${fields})`)
    .option('--no-legend', 'leave out the header line')
    .option('-l, --full', 'do not shorten hashes')
}

function table<T>(rows: readonly T[], columns: Columns<T>, defaults: string, flags: ListFlags): string {
  const names = (flags.fields ?? defaults).split(',').map((f) => f.trim().toLowerCase())
  for (const name of names) {
    if (columns[name] === undefined)
      throw new ClientError(`--fields: unknown field "${name}" (want ${Object.keys(columns).join(', ')})`, 2)
  }
  const picked = names.map((n) => columns[n] as Columns<T>[string])
  const text = formatTable(
    picked.map((c) => c.header),
    rows.map((row) => picked.map((c) => c.cell(row, flags.full === true))),
  )
  return flags.legend ? text : text.slice(text.indexOf('\n') + 1)
}

const hashCell = (hash: string, full: boolean) => (full ? hash : hash.slice(0, shortHashChars))

export function addUnitViewCommands(unit: Command): void {
  listOptions(
    unit.command('list-units').description('units as their machines report them'),
    unitFields,
  ).action(async (flags: ListFlags) => {
    process.exitCode = await runClient(() => listUnits(flags))
  })
  listOptions(unit.command('list-unit-files').description('submitted units'), fileFields).action(
    async (flags: ListFlags) => {
      process.exitCode = await runClient(() => listUnitFiles(flags))
    },
  )
  listOptions(unit.command('list-machines').description('live machines'), 'machine,ip,metadata').action(
    async (flags: ListFlags) => {
      process.exitCode = await runClient(() => listMachines(flags))
    },
  )
  withClientFlags(unit.command('status').description('where a unit runs and how').argument('<unit>')).action(
    async (name: string, flags: ClientFlags) => {
      process.exitCode = await runClient(() => status(name, flags))
    },
  )
  withClientFlags(
    unit
      .command('journal')
      .description("a unit's output, from the machine that runs it")
      .argument('<unit>')
      .option('--lines <n>', 'last lines to show', String(journalLinesDefault))
      .option('-f, --follow', 'keep printing new lines until Ctrl-C'),
  ).action(async (name: string, flags: ClientFlags & { lines: string; follow?: boolean }) => {
    process.exitCode = await runClient(() => journal(name, flags))
  })
  withClientFlags(unit.command('cat').description("print a unit's file").argument('<unit>')).action(
    async (name: string, flags: ClientFlags) => {
      process.exitCode = await runClient(() => cat(name, flags))
    },
  )
}

/** One unit name (no brace expansion to several). */
function oneName(arg: string): string {
  const names = unitArgs([arg], false)
  if (names.length !== 1) throw new ClientError(`Error: ${arg} names ${names.length} units; give one`, 2)
  return (names[0] as (typeof names)[number]).name.name
}

const unitFields = 'unit,load,active,sub,machine,hash'
type StateRow = FleetUnitState & { machine: string }

async function listUnits(flags: ListFlags): Promise<void> {
  const client = new FleetClient(flags)
  const [states, machines] = await Promise.all([client.states(), client.machines()])
  states.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.machineID < b.machineID ? -1 : 1))
  if (flags.output === 'json') return print(formatJson(states))
  const rows: StateRow[] = states.map((s) => ({ ...s, machine: machineLegend(s.machineID, machines) }))
  const columns: Columns<StateRow> = {
    unit: { header: 'UNIT', cell: (r) => r.name },
    load: { header: 'LOAD', cell: (r) => r.systemdLoadState },
    active: { header: 'ACTIVE', cell: (r) => r.systemdActiveState },
    sub: { header: 'SUB', cell: (r) => r.systemdSubState },
    machine: { header: 'MACHINE', cell: (r) => r.machine },
    hash: { header: 'HASH', cell: (r, full) => hashCell(r.hash, full) },
  }
  print(table(rows, columns, 'unit,machine,active,sub', flags))
}

const fileFields = 'unit,hash,dstate,state,target,global,desc'

function optionValue(unit: FleetUnit, section: string, name: string): string | undefined {
  return unit.options.findLast((o) => o.section === section && o.name === name)?.value
}

async function listUnitFiles(flags: ListFlags): Promise<void> {
  const client = new FleetClient(flags)
  const [units, machines] = await Promise.all([client.units(), client.machines()])
  if (flags.output === 'json') return print(formatJson(units))
  const columns: Columns<FleetUnit> = {
    unit: { header: 'UNIT', cell: (u) => u.name },
    hash: { header: 'HASH', cell: (u, full) => hashCell(unitHash(serializeOptions(u.options)), full) },
    dstate: { header: 'DSTATE', cell: (u) => u.desiredState },
    state: { header: 'STATE', cell: (u) => u.currentState },
    target: { header: 'TARGET', cell: (u) => machineLegend(u.machineID, machines) },
    global: {
      header: 'GLOBAL',
      cell: (u) =>
        /^(1|yes|y|true|t|on)$/i.test(optionValue(u, 'X-Fleet', 'Global')?.trim() ?? '') ? 'global' : '-',
    },
    desc: { header: 'DESC', cell: (u) => optionValue(u, 'Unit', 'Description') || '-' },
  }
  print(table(units, columns, 'unit,hash,dstate,state,target', flags))
}

async function listMachines(flags: ListFlags): Promise<void> {
  const machines = await new FleetClient(flags).machines()
  if (flags.output === 'json') return print(formatJson(machines))
  const metadata = (m: FleetMachine) => {
    const pairs = Object.keys(m.metadata)
      .sort()
      .map((k) => `${k}=${m.metadata[k]}`)
    return pairs.length === 0 ? '-' : pairs.join(',')
  }
  const columns: Columns<FleetMachine> = {
    machine: { header: 'MACHINE', cell: (m) => m.id },
    ip: { header: 'IP', cell: (m) => m.primaryIP || '-' },
    metadata: { header: 'METADATA', cell: metadata },
  }
  print(table(machines, columns, 'machine,ip,metadata', flags))
}

function since(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
}

/** The status lines of one unit (exported for tests of the wording). */
export function statusLines(s: UnitStatus, machines: readonly FleetMachine[]): string[] {
  const description = optionValue(s.unit, 'Unit', 'Description')
  const lines = [`${s.unit.name}${description ? ` - ${description}` : ''}`]
  const row = (key: string, value: string) => lines.push(`  ${`${key}:`.padEnd(10)} ${value}`)
  row('Desired', s.unit.desiredState)
  row('Current', s.unit.currentState)
  if (s.assignments.length === 0) row('Machine', '- (not assigned)')
  for (const a of s.assignments) row('Machine', `${machineLegend(a.machineID, machines)} (${a.desiredState})`)
  for (const st of s.states) {
    if (s.states.length > 1 || s.assignments.length !== 1) row('On', machineLegend(st.machineID, machines))
    row('State', `${st.loadState}/${st.activeState}/${st.subState} since ${since(st.sinceMs)}`)
    if (st.pid !== undefined) row('Main PID', String(st.pid))
    if (st.exitCode !== undefined && st.exitCode !== null) row('Exit code', String(st.exitCode))
    if (st.exitSignal !== undefined && st.exitSignal !== null) row('Signal', st.exitSignal)
    row('Restarts', String(st.restarts))
    if (st.health !== undefined) row('Health', st.health)
    if (st.message !== undefined) row('Message', st.message)
  }
  if (s.unplaced !== undefined) row('Unplaced', s.unplaced.reason)
  if (s.rollout !== undefined) {
    const r = s.rollout
    const updated = r.updated.length === 0 ? 'none updated' : `updated: ${r.updated.join(', ')}`
    row(
      'Rollout',
      `${r.state} ${r.from.slice(0, shortHashChars)} -> ${r.to.slice(0, shortHashChars)}, ${updated}`,
    )
    if (r.reason !== undefined) row('Reason', r.reason)
  }
  if (s.instances !== undefined) row('Instances', s.instances.length === 0 ? '-' : s.instances.join(', '))
  return lines
}

async function status(arg: string, flags: ClientFlags): Promise<void> {
  const client = new FleetClient(flags)
  const s = await client.status(oneName(arg))
  if (flags.output === 'json') return print(formatJson(s))
  const machines = await client.machines()
  print(
    statusLines(s, machines)
      .map((l) => `${l}\n`)
      .join(''),
  )
}

async function journal(arg: string, flags: ClientFlags & { lines: string; follow?: boolean }): Promise<void> {
  if (!/^\d{1,9}$/.test(flags.lines) || Number(flags.lines) > journalLinesMax)
    throw new ClientError(`--lines: want a whole number from 0 to ${journalLinesMax}`, 2)
  const client = new FleetClient(flags)
  await client.journal(oneName(arg), Number(flags.lines), flags.follow === true, (line) => {
    if (flags.output === 'json') return print(`${line}\n`)
    try {
      const { ts, stream, text } = JSON.parse(line) as { ts: number; stream: string; text: string }
      const tag = stream === 'stdout' ? '' : `[${stream}] `
      print(`${new Date(ts).toISOString()} ${tag}${text}\n`)
    } catch {
      print(`${line}\n`)
    }
  })
}

async function cat(arg: string, flags: ClientFlags): Promise<void> {
  const s = await new FleetClient(flags).status(oneName(arg))
  if (flags.output === 'json') return print(formatJson(s.file ?? { options: s.unit.options }))
  print(s.file?.text ?? serializeOptions(s.unit.options))
}
