/**
 * The `cairn` command. Subcommands arrive with the layers they drive; today: `cairn sim`.
 * Each subcommand returns an exit code; this file only parses and dispatches.
 */
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { runSimCommand } from '../raft/sim/cli.ts'

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

export function buildProgram(): Command {
  const program = new Command('cairn')
    .description('Cairn: coordination and service discovery for fleets of machines')
    .version(packageJson.version)
    .showHelpAfterError()

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

  return program
}

await buildProgram().parseAsync(process.argv)
