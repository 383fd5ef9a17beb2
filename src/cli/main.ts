/**
 * The `cairn` command. Subcommands arrive with the layers they drive: `sim`, `agent`, `dev`, and the
 * client commands `kv`, `member`, `status` (they talk to a running agent's HTTP API).
 * Each subcommand sets an exit code; this file only parses and dispatches.
 *
 * Exit codes: 0 success, 1 operating failure, 2 bad arguments (commander's own parse errors
 * included: unknown option, missing value), with the reason on stderr.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { runSimCommand } from '../raft/sim/cli.ts'
import { addAgentCommand } from './agent-command.ts'
import { addDevCommand } from './dev-command.ts'
import { addKvCommand } from './kv-command.ts'
import { addMemberCommand } from './member-command.ts'
import { addStatusCommand } from './status-command.ts'
import { addUnitCommand } from './unit-command.ts'

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

export const badArgumentsExitCode = 2

export function buildProgram(): Command {
  const program = new Command('cairn')
    .description('Cairn: coordination and service discovery for fleets of machines')
    .version(packageJson.version)
    .showHelpAfterError()
    .exitOverride() // inherited by the subcommands below: parse errors reach main() as exceptions

  program
    .command('sim')
    .description('run the deterministic Raft simulator (see docs/simulation.md)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', '--seeds N [--from S] | --seed S [--trace] | --bug NAME | --scenario JSON')
    .action((args: string[]) => {
      process.exitCode = runSimCommand(args)
    })

  addAgentCommand(program, packageJson.version)
  addDevCommand(program)
  addKvCommand(program)
  addMemberCommand(program)
  addStatusCommand(program)
  addUnitCommand(program)
  return program
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv)
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error
    // Help and --version "fail" with exit code 0; every other parse error is bad arguments.
    process.exitCode = error.exitCode === 0 ? 0 : badArgumentsExitCode
  }
}

await main()
