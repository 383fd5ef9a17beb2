/**
 * `npm run jepsen -- [flags]`: one jepsen-like run (run.ts). Progress goes to stderr; stdout gets
 * exactly two lines at the end: the results folder and `verdict: valid|invalid|unknown`.
 * Exit status: 0 only for valid; 1 for invalid or unknown; 2 for bad flags (nothing started).
 * SIGINT / SIGTERM kill every member process before the harness exits (130 / 143).
 */
import { randomInt } from 'node:crypto'
import { Command, InvalidArgumentError } from 'commander'
import { killLiveProcesses } from './cluster-processes.ts'
import { parseNemeses } from './nemesis.ts'
import { type RunOptions, runDefaults, runJepsen } from './run.ts'
import { type WorkloadName, workloadNames } from './workloads/index.ts'

interface Flags {
  nodes: number
  time: number
  workload: string
  nemesis: string
  seed?: number
  concurrency: number
  rate: number
  out?: string
  bug?: string
  clientTimeoutMs: number
  checkSeconds: number
  heartbeatInterval: number
  electionTimeout: number
  snapshotCount: number
  serverLogLevel: string
  faultSeconds: string
  quietSeconds: string
  keepData: boolean
}

function integer(min: number, max: number) {
  return (text: string): number => {
    const n = Number(text)
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`want an integer in [${min}, ${max}]`)
    return n
  }
}

/** "a-b" or "a" seconds → [ms, ms]. */
function secondsRange(text: string, flag: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(text)
  const min = Number(m?.[1])
  const max = m?.[2] === undefined ? min : Number(m[2])
  if (m === null || !(max >= min) || min <= 0)
    throw new InvalidArgumentError(`${flag}: want SECONDS or MIN-MAX`)
  return [min * 1_000, max * 1_000 + (max === min ? 1 : 0)]
}

function program(): Command {
  const d = runDefaults
  return new Command('jepsen')
    .description('Run Cairn under faults with a workload, check the history, write a results folder.')
    .option('--nodes <n>', 'server members', integer(1, 9), d.nodes)
    .option('--time <seconds>', 'length of the faulty phase', integer(1, 86_400), d.timeS)
    .option('--workload <name>', workloadNames.join('|'), d.workload)
    .option('--nemesis <list>', 'partition,latency,drop,kill,pause,member | all | none', d.nemeses.join(','))
    .option('--seed <n>', 'seed of every random choice (default: random, printed)', integer(0, 0xffff_ffff))
    .option('--concurrency <n>', 'client processes', integer(1, 1_000), d.concurrency)
    .option(
      '--rate <ops>',
      'target client operations per second, all clients together',
      integer(1, 100_000),
      d.rate,
    )
    .option('--out <dir>', 'results folder (default jepsen-like/results/<time>-<workload>-<seed>)')
    .option('--bug <name>', 'pass --planted-bug <name> to every agent (testing the harness)')
    .option(
      '--client-timeout-ms <ms>',
      'deadline of one client request',
      integer(100, 600_000),
      d.clientTimeoutMs,
    )
    .option('--check-seconds <s>', 'time budget of each checker', integer(1, 86_400), d.checkBudgetMs / 1_000)
    .option('--heartbeat-interval <ms>', 'agents --heartbeat-interval', integer(10, 5_000), d.heartbeatMs)
    .option('--election-timeout <ms>', 'agents --election-timeout', integer(50, 50_000), d.electionMs)
    .option('--snapshot-count <n>', 'agents --snapshot-count', integer(1, 10_000_000), d.snapshotCount)
    .option('--server-log-level <level>', 'agents --log-level', d.serverLogLevel)
    .option('--fault-seconds <s>', 'how long faults are held, SECONDS or MIN-MAX', '3-6')
    .option('--quiet-seconds <s>', 'quiet time between faults, SECONDS or MIN-MAX', '2-4')
    .option('--keep-data', 'keep the members data directories (printed on stderr)', false)
    .exitOverride()
}

function toOptions(flags: Flags): RunOptions {
  if (!(workloadNames as readonly string[]).includes(flags.workload)) {
    throw new InvalidArgumentError(`--workload: want one of ${workloadNames.join(', ')}`)
  }
  if (flags.workload === 'watch' && flags.concurrency < 2) {
    throw new InvalidArgumentError('--workload watch needs --concurrency 2 or more (writers and watchers)')
  }
  const seed = flags.seed ?? randomInt(0, 0xffff_ffff)
  const options: RunOptions = {
    nodes: flags.nodes,
    timeS: flags.time,
    workload: flags.workload as WorkloadName,
    nemeses: parseNemeses(flags.nemesis),
    seed,
    concurrency: flags.concurrency,
    rate: flags.rate,
    out: flags.out,
    bug: flags.bug,
    clientTimeoutMs: flags.clientTimeoutMs,
    checkBudgetMs: flags.checkSeconds * 1_000,
    heartbeatMs: flags.heartbeatInterval,
    electionMs: flags.electionTimeout,
    snapshotCount: flags.snapshotCount,
    serverLogLevel: flags.serverLogLevel,
    keepData: flags.keepData,
    faultMs: secondsRange(flags.faultSeconds, '--fault-seconds'),
    quietMs: secondsRange(flags.quietSeconds, '--quiet-seconds'),
  }
  options.command = replayCommand(options, flags)
  return options
}

function replayCommand(o: RunOptions, flags: Flags): string {
  const parts = [
    'npm run jepsen --',
    `--nodes ${o.nodes}`,
    `--time ${o.timeS}`,
    `--workload ${o.workload}`,
    `--nemesis ${o.nemeses.length === 0 ? 'none' : o.nemeses.join(',')}`,
    `--seed ${o.seed}`,
    `--concurrency ${o.concurrency}`,
    `--rate ${o.rate}`,
    `--fault-seconds ${flags.faultSeconds}`,
    `--quiet-seconds ${flags.quietSeconds}`,
  ]
  if (o.bug !== undefined) parts.push(`--bug ${o.bug}`)
  return parts.join(' ')
}

async function main(): Promise<number> {
  let options: RunOptions
  const cmd = program()
  try {
    cmd.parse(process.argv)
  } catch (error) {
    // commander has printed the problem (or the help) already.
    return (error as { code?: string }).code === 'commander.helpDisplayed' ? 0 : 2
  }
  try {
    options = toOptions(cmd.opts<Flags>())
  } catch (error) {
    process.stderr.write(`jepsen: ${(error as Error).message}\n`)
    return 2
  }
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(sig, () => {
      killLiveProcesses()
      process.exit(code)
    })
  }
  process.stderr.write(`jepsen: ${options.command}\n`)
  const result = await runJepsen({ ...options, log: (line) => process.stderr.write(`jepsen: ${line}\n`) })
  process.stdout.write(`${result.dir}\nverdict: ${result.verdict}\n`)
  return result.verdict === 'valid' ? 0 : 1
}

const code = await main()
// Exit at once: the run has stopped every member; nothing else is worth waiting for.
process.stdout.write('', () => process.exit(code))
