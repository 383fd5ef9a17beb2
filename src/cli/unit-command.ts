/**
 * `cairn unit ...`: fleetctl's commands over the fleet v1 API of any agent (docs/cli.md).
 *
 *   submit UNIT...            submit unit files (inactive); --replace a changed plain unit
 *   load UNIT... / start UNIT...
 *                             submit what is given as a file, then ask for loaded / launched and
 *                             wait until every unit is there (--no-block, --block-attempts N)
 *   stop / unload UNIT...     ask for loaded / inactive and wait likewise
 *   restart UNIT...           stop (waiting), then start (waiting)
 *   destroy UNIT...           delete the units (instances before their templates)
 *   list-units, list-unit-files, list-machines, status UNIT, journal UNIT, cat UNIT  (unit-views.ts)
 *
 * UNIT is a name with brace expansion (`web@{1..6}.service`) or a path to a unit file.
 * Exit codes: 0 ok, 1 a failure (the agent refused, a unit is missing, a wait gave up), 2 bad
 * arguments (commander's, a malformed name, a bad --block-attempts).
 */
import type { Command } from 'commander'
import type { DesiredState } from '../scheduler/records.ts'
import { parseUnitName, templateOf, type UnitName } from '../scheduler/unit-name.ts'
import { ClientError, type ClientFlags, runClient, withClientFlags } from './endpoint.ts'
import { print } from './output.ts'
import { readUnitFile, type UnitArg, unitArgs } from './unit-args.ts'
import { FleetClient, type FleetUnit, fleetError } from './unit-client.ts'
import { addUnitViewCommands } from './unit-views.ts'
import { waitForState } from './unit-wait.ts'

interface BlockFlags extends ClientFlags {
  block: boolean
  blockAttempts: string
  replace?: boolean
}

export function addUnitCommand(program: Command): void {
  const unit = program.command('unit').description('submit, start and inspect units (fleet v1 API)')

  withClientFlags(
    unit
      .command('submit')
      .description('submit unit files (desired state inactive)')
      .argument('<units...>', 'unit files or names (brace expansion: web@{1..3}.service)')
      .option('--replace', 'replace a submitted plain unit whose file changed'),
  ).action(async (names: string[], flags: ClientFlags & { replace?: boolean }) => {
    process.exitCode = await runClient(() => submitCommand(names, flags))
  })
  for (const [verb, target, what] of [
    ['load', 'loaded', 'submit if given as files, then load on machines (not started)'],
    ['start', 'launched', 'submit if given as files, then start'],
  ] as const) {
    blockOptions(
      withClientFlags(
        unit
          .command(verb)
          .description(what)
          .argument('<units...>')
          .option('--replace', 'replace a submitted plain unit whose file changed'),
      ),
    ).action(async (names: string[], flags: BlockFlags) => {
      process.exitCode = await runClient(() => loadOrStart(names, target, flags))
    })
  }
  for (const [verb, target, what] of [
    ['stop', 'loaded', 'stop launched units (they stay loaded)'],
    ['unload', 'inactive', 'stop and unload units (they stay submitted)'],
  ] as const) {
    blockOptions(withClientFlags(unit.command(verb).description(what).argument('<units...>'))).action(
      async (names: string[], flags: BlockFlags) => {
        process.exitCode = await runClient(() => stopOrUnload(names, target, flags))
      },
    )
  }
  blockOptions(
    withClientFlags(unit.command('restart').description('stop, then start units').argument('<units...>')),
  ).action(async (names: string[], flags: BlockFlags) => {
    process.exitCode = await runClient(() => restart(names, flags))
  })
  withClientFlags(unit.command('destroy').description('destroy units').argument('<units...>')).action(
    async (names: string[], flags: ClientFlags) => {
      process.exitCode = await runClient(() => destroy(names, flags))
    },
  )
  addUnitViewCommands(unit)
}

function blockOptions(command: Command): Command {
  return command
    .option('--no-block', 'do not wait until the units reach the state')
    .option('--block-attempts <n>', 'give up waiting after N polls, 500 ms apart (0: never)', '0')
}

function attemptsOf(flags: BlockFlags): number {
  if (!/^\d{1,9}$/.test(flags.blockAttempts))
    throw new ClientError(`--block-attempts: "${flags.blockAttempts}" is not a whole number`, 2)
  return Number(flags.blockAttempts)
}

const out = (line: string): void => print(`${line}\n`)

/** Submits `text` as `name`: creates it inactive, or gives an existing unit the new content. */
async function submitText(
  client: FleetClient,
  name: UnitName,
  text: string,
  replace: boolean,
): Promise<void> {
  const existing = await client.unit(name.name)
  if (existing === undefined) {
    await client.put(name.name, { desiredState: 'inactive', text })
    return out(`Unit ${name.name} inactive`)
  }
  const reply = await client.putReply(name.name, { text }, replace)
  if (reply.status === 204) return
  if (reply.status === 201)
    return out(
      name.kind === 'template'
        ? `Unit ${name.name} updated: its instances roll to the new version`
        : `Unit ${name.name} replaced`,
    )
  if (reply.headers['x-cairn-error-code'] === 'FLEET_UNIT_IMMUTABLE' && name.kind === 'plain') {
    process.stderr.write(
      `WARNING: Unit ${name.name} in registry differs from local unit file (use --replace to replace it)\n`,
    )
    return
  }
  throw fleetError(reply)
}

/** Submits what the argument names as a local file (its own, or an instance's template). */
async function submitFiles(client: FleetClient, arg: UnitArg, replace: boolean): Promise<boolean> {
  if (arg.file !== undefined) {
    await submitText(client, arg.name, readUnitFile(arg.file), replace)
    return true
  }
  if (arg.templateFile !== undefined) {
    const template = parseUnitName(templateOf(arg.name) as string)
    await submitText(client, template, readUnitFile(arg.templateFile), replace)
  }
  return false
}

async function submitCommand(names: string[], flags: ClientFlags & { replace?: boolean }): Promise<void> {
  const args = unitArgs(names, true)
  const client = new FleetClient(flags)
  for (const arg of args) {
    if (await submitFiles(client, arg, flags.replace === true)) continue
    if (arg.name.kind === 'instance' && (await client.unit(arg.name.name)) === undefined) {
      // An instance of a submitted template is created from it.
      await client.put(arg.name.name, { desiredState: 'inactive' })
      out(`Unit ${arg.name.name} inactive`)
      continue
    }
    if (arg.templateFile === undefined && (await client.unit(arg.name.name)) === undefined)
      throw new ClientError(
        `Error: unable to find unit file ${arg.name.name} (no such file, and not submitted)`,
      )
  }
}

function refuseTemplates(args: readonly UnitArg[], verb: string): void {
  const template = args.find((a) => a.name.kind === 'template')
  if (template !== undefined) {
    throw new ClientError(
      `Error: ${template.name.name} is a template: it is not run itself; ${verb} its instances, like ${template.name.prefix}@1.service`,
    )
  }
}

function isGlobal(unit: FleetUnit): boolean {
  const option = unit.options.findLast((o) => o.section === 'X-Fleet' && o.name === 'Global')
  return option !== undefined && /^(1|yes|y|true|t|on)$/i.test(option.value.trim())
}

/** Waits for the non-global units among `names` (or says it triggered them, with --no-block). */
async function settle(
  client: FleetClient,
  names: readonly string[],
  target: DesiredState,
  verb: string,
  flags: BlockFlags,
): Promise<void> {
  const waited: string[] = []
  for (const name of names) {
    const unit = await client.unit(name)
    if (unit !== undefined && isGlobal(unit)) out(`Triggered global unit ${name} ${verb}`)
    else if (!flags.block) out(`Triggered unit ${name} ${verb}`)
    else waited.push(name)
  }
  await waitForState(client, waited, target, attemptsOf(flags), out)
}

async function loadOrStart(names: string[], target: 'loaded' | 'launched', flags: BlockFlags): Promise<void> {
  attemptsOf(flags)
  const args = unitArgs(names, true)
  const verb = target === 'launched' ? 'start' : 'load'
  refuseTemplates(args, verb)
  const client = new FleetClient(flags)
  for (const arg of args) await submitFiles(client, arg, flags.replace === true)
  const changed: string[] = []
  for (const arg of args) {
    const unit = await client.unit(arg.name.name)
    // load never takes a launched unit back down (fleetctl's load leaves started units alone).
    if (target === 'loaded' && unit?.desiredState === 'launched') continue
    if (unit?.desiredState !== target) await client.put(arg.name.name, { desiredState: target })
    changed.push(arg.name.name)
  }
  await settle(client, changed, target, verb, flags)
}

async function existingUnits(client: FleetClient, args: readonly UnitArg[]): Promise<FleetUnit[]> {
  const units: FleetUnit[] = []
  for (const arg of args) {
    const unit = await client.unit(arg.name.name)
    if (unit === undefined) throw new ClientError(`Error: unit ${arg.name.name} does not exist`)
    units.push(unit)
  }
  return units
}

async function stopOrUnload(
  names: string[],
  target: 'loaded' | 'inactive',
  flags: BlockFlags,
): Promise<void> {
  attemptsOf(flags)
  const args = unitArgs(names, false)
  const client = new FleetClient(flags)
  const verb = target === 'loaded' ? 'stop' : 'unload'
  const changed: string[] = []
  for (const unit of await existingUnits(client, args)) {
    // stop acts on launched units only; unload on anything loaded or launched.
    if (target === 'loaded' ? unit.desiredState !== 'launched' : unit.desiredState === 'inactive') continue
    await client.put(unit.name, { desiredState: target })
    changed.push(unit.name)
  }
  await settle(client, changed, target, verb, flags)
}

async function restart(names: string[], flags: BlockFlags): Promise<void> {
  attemptsOf(flags)
  const args = unitArgs(names, false)
  refuseTemplates(args, 'restart')
  const client = new FleetClient(flags)
  const units = await existingUnits(client, args)
  const launched = units.filter((u) => u.desiredState === 'launched').map((u) => u.name)
  for (const name of launched) await client.put(name, { desiredState: 'loaded' })
  await settle(client, launched, 'loaded', 'stop', flags)
  for (const unit of units) await client.put(unit.name, { desiredState: 'launched' })
  await settle(
    client,
    units.map((u) => u.name),
    'launched',
    'start',
    flags,
  )
}

async function destroy(names: string[], flags: ClientFlags): Promise<void> {
  const args = unitArgs(names, false)
  // Instances before their templates: a template with instances cannot be destroyed.
  const ordered = [
    ...args.filter((a) => a.name.kind !== 'template'),
    ...args.filter((a) => a.name.kind === 'template'),
  ]
  const client = new FleetClient(flags)
  const missing: string[] = []
  for (const arg of ordered) {
    if (await client.destroy(arg.name.name)) out(`Destroyed ${arg.name.name}`)
    else missing.push(arg.name.name)
  }
  if (missing.length > 0) throw new ClientError(`Error: no such unit: ${missing.join(', ')}`)
}
