/**
 * `cairn agent`: parses and checks the flags, then runs a server member until SIGTERM or SIGINT.
 *
 * Exit codes: 2 for bad flags (the reason on stderr, nothing started), 1 when the agent could not
 * start (port in use, unreadable data directory...) or did not stop cleanly, 0 after a graceful
 * stop. With --server it runs a server member (server-agent.ts); with --join and no --server, a
 * client agent (client-agent.ts) that serves the same local endpoint from the servers.
 */
import type { Command } from 'commander'
import {
  agentDefaults,
  logLevels,
  parseClientAgentFlags,
  parseServerAgentFlags,
  type ServerAgentFlags,
  serverPlantedBugs,
} from '../agent/agent-config.ts'
import { startClientAgent } from '../agent/client-agent.ts'
import { startIdleGc } from '../agent/idle-gc.ts'
import type { AgentLogger } from '../agent/logger.ts'
import { createAgentLogger } from '../agent/logger.ts'
import { startServerAgent } from '../agent/server-agent.ts'
import { exitOnSignals, shutdownMsMax } from '../agent/shutdown.ts'
import { isCairnError } from '../errors.ts'

const d = agentDefaults

export function addAgentCommand(program: Command, version: string): void {
  program
    .command('agent')
    .description('run a Cairn agent on this machine: a server member (--server) or a client agent (--join)')
    .option('--server', 'run as a server member: hold data and take part in Raft')
    .option(
      '--join <servers>',
      'run as a client agent of these servers, host:port,... (their --client-addr); not with --server',
    )
    .option('--name <name>', "this member's name, unique in the cluster (letters, digits, . _ -)")
    .option('--data-dir <dir>', "directory for this member's data (created if missing)")
    .option('--client-addr <host:port>', `HTTP listener for clients (default ${d.clientAddr})`)
    .option('--peer-addr <host:port>', `TCP listener for other members (default ${d.peerAddr})`)
    .option(
      '--initial-cluster <list>',
      'founding members, name=http://host:port,... (same on every founder; default: this member alone at its --peer-addr)',
    )
    .option(
      '--initial-cluster-state <state>',
      `new: found the cluster on first start; existing: join one, start empty and wait to be added (default ${d.initialClusterState})`,
    )
    .option(
      '--initial-cluster-token <token>',
      `cluster name mixed into member and cluster ids (default ${d.initialClusterToken})`,
    )
    .option(
      '--heartbeat-interval <ms>',
      `leader heartbeat period, one Raft tick (default ${d.heartbeatIntervalMs})`,
    )
    .option(
      '--election-timeout <ms>',
      `follower wait before campaigning, at least 5 heartbeats (default ${d.electionTimeoutMs})`,
    )
    .option(
      '--cluster-id <hex>',
      'the cluster id (X-Etcd-Cluster-ID) when joining an existing cluster; stored in --data-dir at first start',
    )
    .option('--snapshot-count <n>', `applied entries between two snapshots (default ${d.snapshotCount})`)
    .option(
      '--history-revisions <n>',
      `revisions of change events kept for watches from a past index; older ones answer 401 (default ${d.historyRevisions})`,
    )
    .option(
      '--history-bytes <n>',
      `approximate bytes of change events kept for watches (default ${d.historyBytes})`,
    )
    .option('--log-level <level>', `${logLevels.join('|')} (default ${d.logLevel})`)
    .option('--dns-addr <host:port>', `DNS listener, UDP and TCP; "off" for none (default ${d.dnsAddr})`)
    .option(
      '--dns-domain <domain>',
      `the DNS zone served, e.g. consul for drop-in use (default ${d.dnsDomain})`,
    )
    .option('--dns-only-passing', 'DNS leaves out instances in warning too, not only critical ones')
    .option('--datacenter <dc>', `the datacenter this agent reports in the catalog (default ${d.datacenter})`)
    .option(
      '--advertise-addr <ip>',
      "this machine's address in the catalog, the default address of its services (default: the --client-addr host, or 127.0.0.1)",
    )
    .option(
      '--metadata <k=v,...>',
      "this machine's metadata, e.g. region=eu,zone=eu-1a (catalog node Meta, DNS TXT, filters)",
    )
    .option(
      '--machine-ttl <ms>',
      `machine lease: a machine not heard from this long is marked failed (default ${d.machineTtlMs})`,
    )
    .option(
      '--enable-script-checks',
      'allow health checks that run commands (off by default: they run as the agent)',
    )
    .option(
      '--no-idle-gc',
      'never compact the heap when the agent goes quiet after a burst (see docs/agent.md, "Memory at rest")',
    )
    .option(
      '--planted-bug <name>',
      `TESTING ONLY: switch on a deliberate bug for the jepsen-like harness (${serverPlantedBugs.join(', ')}); repeatable`,
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .addHelpText(
      'after',
      [
        '',
        'Logs are JSON lines on stdout. SIGTERM or SIGINT stops the member gracefully (a leader hands',
        'leadership over first) and exits 0. A restart needs the same --name, --data-dir,',
        '--initial-cluster and --initial-cluster-token. See docs/agent.md.',
        '',
        'Example (a client agent on another machine):',
        '  cairn agent --join 10.0.0.1:4001,10.0.0.2:4001,10.0.0.3:4001 --name web-7 \\',
        '    --data-dir /var/lib/cairn --metadata region=eu,zone=eu-1a',
        '',
        'Example (one member of three):',
        '  cairn agent --server --name n1 --data-dir /var/lib/cairn \\',
        '    --peer-addr 10.0.0.1:7001 \\',
        '    --initial-cluster n1=http://10.0.0.1:7001,n2=http://10.0.0.2:7001,n3=http://10.0.0.3:7001',
      ].join('\n'),
    )
    .action(async (flags: AgentCommandFlags) => {
      process.exitCode = await runAgent(flags, version)
    })
}

/** Flags of the process rather than of the member: commander's `--no-idle-gc` sets idleGc false. */
type AgentCommandFlags = ServerAgentFlags & { server?: boolean; idleGc?: boolean }

async function runAgent(flags: AgentCommandFlags, version: string): Promise<number> {
  if (flags.server !== true && flags.join === undefined) {
    process.stderr.write(
      'cairn agent: pass --server (a server member) or --join <servers> (a client agent)\n',
    )
    return 2
  }
  if (flags.server !== true) return runClientAgent(flags, version)
  let config: ReturnType<typeof parseServerAgentFlags>
  try {
    config = parseServerAgentFlags(flags)
  } catch (error) {
    if (!isCairnError(error, 'CONFIG_INVALID')) throw error
    process.stderr.write(`cairn agent: ${error.message}\n`)
    return 2
  }
  const log = createAgentLogger(config.logLevel, config.name)
  const starting = startServerAgent(config, log, version)
  stopOnSignalsFromStart(starting, log)
  try {
    const agent = await starting
    if (flags.idleGc !== false) startIdleGc(log)
    void agent.failed.then((error) => exitOnFailure(agent, error, log))
    return 0
  } catch (error) {
    log.error({ err: error }, 'agent failed to start')
    process.stderr.write(`cairn agent: could not start: ${(error as Error).message}\n`)
    process.exit(1) // whatever half-started part is left must not keep the process alive
  }
}

async function runClientAgent(flags: AgentCommandFlags, version: string): Promise<number> {
  let config: ReturnType<typeof parseClientAgentFlags>
  try {
    config = parseClientAgentFlags(flags)
  } catch (error) {
    if (!isCairnError(error, 'CONFIG_INVALID')) throw error
    process.stderr.write(`cairn agent: ${error.message}\n`)
    return 2
  }
  const log = createAgentLogger(config.logLevel, config.name)
  const starting = startClientAgent(config, log, version)
  stopOnSignalsFromStart(starting, log)
  try {
    await starting
    if (flags.idleGc !== false) startIdleGc(log)
    return 0
  } catch (error) {
    log.error({ err: error }, 'agent failed to start')
    process.stderr.write(`cairn agent: could not start: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

/**
 * SIGTERM and SIGINT stop the agent gracefully from the moment its start begins, not only once it
 * has started: a signal during start-up (a supervisor stopping it, Ctrl-C, `cairn dev` stopping its
 * members while they still start) waits for the start, then stops what started, within
 * shutdownMsMax. Without this, Node's default handler killed a starting agent outright (exit by
 * signal), whatever it had half done. A start that fails exits 1 through its own path.
 */
function stopOnSignalsFromStart(starting: Promise<{ stop(): Promise<void> }>, log: AgentLogger): void {
  exitOnSignals(async () => (await starting).stop(), log)
}

/**
 * The member's Raft loop stopped on its own (a disk that refuses writes, a broken invariant): it can
 * no longer acknowledge anything. Stop what is left (pending requests get RAFT_STOPPED) and exit 1,
 * so a supervisor restarts the member and it recovers from its WAL.
 */
function exitOnFailure(agent: { stop(): Promise<void> }, error: Error, log: AgentLogger): void {
  log.fatal({ err: error }, 'raft loop stopped: exiting')
  process.stderr.write(`cairn agent: stopped: ${error.message}\n`)
  const timer = setTimeout(() => process.exit(1), shutdownMsMax)
  timer.unref()
  agent
    .stop()
    .catch(() => {}) // the stop rethrows the loop's error, already reported
    .finally(() => process.exit(1))
}
