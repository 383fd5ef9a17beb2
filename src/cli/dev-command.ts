/**
 * `cairn dev`: a local cluster of 1, 3 or 5 server members as child processes of this command
 * (plan in src/agent/dev-plan.ts). Their logs go to this terminal.
 *
 * Children run in their own process group, so Ctrl-C reaches this command only, and it sends every
 * child one SIGTERM (a graceful stop); a second Ctrl-C sends SIGKILL. If this command exits for
 * any other reason, it SIGTERMs the children on its way out (a SIGKILL of this command leaves
 * them running: stop them by pid). A child that dies alone is reported and the others keep
 * running (kill -9 one member to watch a failover). Exit code: 0 when every child stopped with 0,
 * 1 otherwise, 2 for bad flags.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { devDefaults, devPlan } from '../agent/dev-plan.ts'
import { isCairnError } from '../errors.ts'

const bin = fileURLToPath(new URL('../../bin/cairn', import.meta.url))
export const devDataDirDefault = path.join(tmpdir(), 'cairn-dev')

interface DevFlags {
  nodes: string
  dataDir: string
  basePort: string
  logLevel?: string
}

export function addDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run a local cluster (1, 3 or 5 members) as child processes; Ctrl-C stops all')
    .option('--nodes <n>', 'members: 1, 3 or 5', String(devDefaults.nodes))
    .option('--data-dir <dir>', "parent of the members' data directories", devDataDirDefault)
    .option(
      '--base-port <port>',
      'client port of member 1; member i serves on base+i-1 and peers on base+3000+i-1',
      String(devDefaults.basePort),
    )
    .option('--log-level <level>', 'passed to every member (default info)')
    .action(async (flags: DevFlags) => {
      process.exitCode = await runDev(flags)
    })
}

async function runDev(flags: DevFlags): Promise<number> {
  let plan: ReturnType<typeof devPlan>
  try {
    if (!/^\d+$/.test(flags.nodes) || !/^\d+$/.test(flags.basePort)) {
      throw new Error(`--nodes and --base-port take whole numbers`)
    }
    plan = devPlan(Number(flags.nodes), path.resolve(flags.dataDir), Number(flags.basePort))
  } catch (error) {
    process.stderr.write(`cairn dev: ${isCairnError(error) ? error.message : (error as Error).message}\n`)
    return 2
  }
  const extra = flags.logLevel === undefined ? [] : ['--log-level', flags.logLevel]
  const children = new Map<string, ChildProcess>()
  const exits = plan.map(
    (member) =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [bin, ...member.args, ...extra], {
          stdio: ['ignore', 'inherit', 'inherit'],
          detached: true,
        })
        children.set(member.name, child)
        child.on('error', (error) => {
          process.stderr.write(`cairn dev: ${member.name} could not start: ${error.message}\n`)
          resolve(1)
        })
        child.on('exit', (code, signal) => {
          children.delete(member.name)
          if (!stopping) process.stderr.write(`cairn dev: ${member.name} exited (${signal ?? code})\n`)
          resolve(code ?? 1)
        })
      }),
  )
  let stopping = false
  const signalAll = (signal: NodeJS.Signals) => {
    for (const child of children.values()) child.kill(signal)
  }
  const onSignal = () => {
    signalAll(stopping ? 'SIGKILL' : 'SIGTERM')
    stopping = true
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', () => signalAll('SIGTERM'))
  process.stderr.write(
    `cairn dev: ${plan.length} member(s): ${plan.map((m) => `${m.name} ${m.clientUrl}`).join(', ')}\n` +
      `cairn dev: data in ${path.resolve(flags.dataDir)}; Ctrl-C stops all\n`,
  )
  const codes = await Promise.all(exits)
  return codes.every((c) => c === 0) ? 0 : 1
}
