/**
 * The server agent's configuration: the raw flag values of `cairn agent --server` checked and turned
 * into one typed object, with every default and limit named here (docs/agent.md lists them).
 *
 * Rules:
 *   - every value is validated before anything is opened, bound or written; a bad one throws
 *     CairnError CONFIG_INVALID with a message naming the flag (the CLI exits 2);
 *   - times follow etcd: a tick is one heartbeat interval; the election timeout is rounded to whole
 *     heartbeats (electionTicks) and is at least electionHeartbeatsMin of them (etcd refuses less
 *     than 5);
 *   - `--initial-cluster` defaults to this member alone at its advertised peer URL;
 *     with `--initial-cluster-state new` it must list this member (`--name`);
 *     with `existing` it is the founders' list (it fixes the cluster id) and need not.
 * Pure: no IO.
 */
import { isIP } from 'node:net'
import { CairnError } from '../errors.ts'
import { defaultKvConfig } from '../kv/limits.ts'
import { peerAddress } from '../raft/member-context.ts'
import { type InitialMember, parseInitialCluster } from './cluster-config.ts'

export interface HostPort {
  host: string
  port: number
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof logLevels)[number]

/** What every agent has, server or client: its name, data, local endpoint, DNS, machine and checks. */
export interface LocalAgentConfig {
  name: string
  dataDir: string
  clientAddr: HostPort
  logLevel: LogLevel
  /** The DNS front end; undefined with `--dns-addr off`. Port 0 picks a free port (tests). */
  dnsAddr: HostPort | undefined
  dnsDomain: string
  dnsOnlyPassing: boolean
  datacenter: string
  /** This machine's address in the catalog (node Address; the default for its services). */
  advertiseAddr: string
  /** `--metadata region=eu,zone=eu-1a`: the node's Meta, used by DNS TXT, filters and placement. */
  metadata: Record<string, string>
  machineTtlMs: number
  enableScriptChecks: boolean
}

/** `cairn agent --join`: a client agent (client-agent.ts). */
export interface ClientAgentConfig extends LocalAgentConfig {
  /** The servers' client URLs, `http://host:port`, in the order they are tried. */
  join: string[]
}

export interface ServerAgentConfig extends LocalAgentConfig {
  /** Where the peer listener binds. */
  peerAddr: HostPort
  /** The URL other members dial to reach this one (from --initial-cluster, else from --peer-addr). */
  peerUrl: string
  initialCluster: InitialMember[]
  initialClusterState: 'new' | 'existing'
  initialClusterToken: string
  /** Given with --cluster-id (a member joining an existing cluster), else derived or stored. */
  clusterId: string | undefined
  heartbeatIntervalMs: number
  electionTimeoutMs: number
  snapshotCount: number
  /** The watch history window (KvConfig.historyRevisionsMax / historyBytesMax). */
  historyRevisions: number
  historyBytes: number
  /** Deliberate bugs for the jepsen-like harness to catch (never in production; docs/agent.md). */
  plantedBugs: ServerPlantedBug[]
}

/**
 * The bugs `--planted-bug` can switch on, so the fault-injection harness can show it fails when it
 * should. stale-quorum-reads: `quorum=true` reads are served locally, without ReadIndex.
 */
export const serverPlantedBugs = ['stale-quorum-reads'] as const
export type ServerPlantedBug = (typeof serverPlantedBugs)[number]

/** The raw flag values, as commander hands them over (strings, undefined when absent). */
export interface ServerAgentFlags {
  name?: string | undefined
  dataDir?: string | undefined
  clientAddr?: string | undefined
  peerAddr?: string | undefined
  initialCluster?: string | undefined
  initialClusterState?: string | undefined
  initialClusterToken?: string | undefined
  clusterId?: string | undefined
  heartbeatInterval?: string | undefined
  electionTimeout?: string | undefined
  snapshotCount?: string | undefined
  historyRevisions?: string | undefined
  historyBytes?: string | undefined
  logLevel?: string | undefined
  plantedBug?: string[] | undefined
  dnsAddr?: string | undefined
  dnsDomain?: string | undefined
  dnsOnlyPassing?: boolean | undefined
  datacenter?: string | undefined
  advertiseAddr?: string | undefined
  metadata?: string | undefined
  machineTtl?: string | undefined
  enableScriptChecks?: boolean | undefined
  join?: string | undefined
}

/** Flags that only a server member takes (a client agent refuses them). */
const serverOnlyFlags = [
  ['peerAddr', '--peer-addr'],
  ['initialCluster', '--initial-cluster'],
  ['initialClusterState', '--initial-cluster-state'],
  ['initialClusterToken', '--initial-cluster-token'],
  ['clusterId', '--cluster-id'],
  ['heartbeatInterval', '--heartbeat-interval'],
  ['electionTimeout', '--election-timeout'],
  ['snapshotCount', '--snapshot-count'],
  ['historyRevisions', '--history-revisions'],
  ['historyBytes', '--history-bytes'],
  ['plantedBug', '--planted-bug'],
] as const

export const agentDefaults = {
  clientAddr: '127.0.0.1:4001',
  peerAddr: '127.0.0.1:7001',
  initialClusterState: 'new',
  initialClusterToken: 'cairn-cluster',
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 1_000,
  snapshotCount: 10_000,
  historyRevisions: defaultKvConfig.historyRevisionsMax,
  historyBytes: defaultKvConfig.historyBytesMax,
  logLevel: 'info',
  dnsAddr: '127.0.0.1:8600',
  dnsDomain: 'cairn',
  datacenter: 'dc1',
  machineTtlMs: 3_000,
} as const

export const agentLimits = {
  heartbeatIntervalMsMin: 10,
  heartbeatIntervalMsMax: 5_000,
  /** etcd caps the election timeout at 50 s. */
  electionTimeoutMsMax: 50_000,
  electionHeartbeatsMin: 5,
  snapshotCountMax: 100_000_000,
  /** The history window is part of every snapshot: these keep one snapshot's history bounded. */
  historyRevisionsMax: 10_000_000,
  historyBytesMax: 4 * 1024 * 1024 * 1024,
  clusterTokenBytesMax: 128,
  dataDirBytesMax: 4_096,
  /** The machine lease: at least 1 s (three keep-alives fit in it), at most 1 min. */
  machineTtlMsMin: 1_000,
  machineTtlMsMax: 60_000,
  metadataPairsMax: 64,
  metadataKeyBytesMax: 128,
  metadataValueBytesMax: 512,
  /** Servers a client agent may be given with --join. */
  joinServersMax: 32,
} as const

const memberNameRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

export function parseServerAgentFlags(flags: ServerAgentFlags): ServerAgentConfig {
  if (flags.join !== undefined) invalid('--join is for client agents: leave out --server')
  const local = parseLocalFlags(flags)
  const { name, clientAddr } = local
  const peerAddr = hostPort(flags.peerAddr ?? agentDefaults.peerAddr, '--peer-addr')
  const state = flags.initialClusterState ?? agentDefaults.initialClusterState
  if (state !== 'new' && state !== 'existing') {
    invalid(`--initial-cluster-state: "${state}" (want new or existing)`)
  }
  const token = flags.initialClusterToken ?? agentDefaults.initialClusterToken
  if (token === '' || Buffer.byteLength(token) > agentLimits.clusterTokenBytesMax) {
    invalid(`--initial-cluster-token: 1..${agentLimits.clusterTokenBytesMax} bytes`)
  }
  const clusterIdFlag = flags.clusterId?.toLowerCase()
  if (clusterIdFlag !== undefined && !/^[0-9a-f]{1,14}$/.test(clusterIdFlag)) {
    invalid(`--cluster-id: "${flags.clusterId}" (want the hex id from X-Etcd-Cluster-ID)`)
  }
  const ownUrl = `http://${advertisedHost(peerAddr.host)}:${peerAddr.port}`
  const initialCluster = parseInitialCluster(flags.initialCluster ?? `${name}=${ownUrl}`)
  const listed = initialCluster.find((m) => m.name === name)
  if (state === 'new' && listed === undefined) {
    invalid(`--initial-cluster does not list this member (--name ${name})`)
  }
  const heartbeatIntervalMs = integer(
    flags.heartbeatInterval,
    '--heartbeat-interval',
    agentDefaults.heartbeatIntervalMs,
    agentLimits.heartbeatIntervalMsMin,
    agentLimits.heartbeatIntervalMsMax,
  )
  const electionTimeoutMs = integer(
    flags.electionTimeout,
    '--election-timeout',
    agentDefaults.electionTimeoutMs,
    heartbeatIntervalMs * agentLimits.electionHeartbeatsMin,
    agentLimits.electionTimeoutMsMax,
  )
  const snapshotCount = integer(
    flags.snapshotCount,
    '--snapshot-count',
    agentDefaults.snapshotCount,
    1,
    agentLimits.snapshotCountMax,
  )
  const historyRevisions = integer(
    flags.historyRevisions,
    '--history-revisions',
    agentDefaults.historyRevisions,
    1,
    agentLimits.historyRevisionsMax,
  )
  const historyBytes = integer(
    flags.historyBytes,
    '--history-bytes',
    agentDefaults.historyBytes,
    1,
    agentLimits.historyBytesMax,
  )
  const plantedBugs = (flags.plantedBug ?? []).map((bug) => {
    if (!(serverPlantedBugs as readonly string[]).includes(bug)) {
      invalid(`--planted-bug: "${bug}" (want one of ${serverPlantedBugs.join(', ')})`)
    }
    return bug as ServerPlantedBug
  })
  return {
    ...local,
    clientAddr,
    peerAddr,
    peerUrl: listed?.peerUrl ?? ownUrl,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: token,
    clusterId: clusterIdFlag,
    heartbeatIntervalMs,
    electionTimeoutMs,
    snapshotCount,
    historyRevisions,
    historyBytes,
    plantedBugs,
  }
}

/**
 * `cairn agent --join h1:4001,h2:4001 ...` (no --server): the local flags, and the servers' client
 * addresses (host:port, or http:// URLs). Server-only flags are refused, naming the flag.
 */
export function parseClientAgentFlags(flags: ServerAgentFlags): ClientAgentConfig {
  for (const [field, flag] of serverOnlyFlags) {
    if (flags[field] !== undefined)
      invalid(`${flag} is for server members (--server); a client agent takes --join`)
  }
  const local = parseLocalFlags(flags)
  const list = required(flags.join, '--join')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
  if (list.length === 0) invalid('--join: no server given')
  if (list.length > agentLimits.joinServersMax)
    invalid(`--join: more than ${agentLimits.joinServersMax} servers`)
  const join = list.map((item) => {
    if (/^https?:\/\//.test(item)) {
      try {
        const url = new URL(item)
        if (url.pathname === '/' && url.search === '') return url.origin
      } catch {}
      invalid(`--join: "${item}" is not host:port or http://host:port`)
    }
    const { host, port } = hostPort(item, '--join')
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  })
  return { ...local, join }
}

function parseLocalFlags(flags: ServerAgentFlags): LocalAgentConfig {
  const name = required(flags.name, '--name')
  if (!memberNameRe.test(name)) {
    invalid(`--name: "${name}" is not a member name (letters, digits, . _ -; at most 63)`)
  }
  const dataDir = required(flags.dataDir, '--data-dir')
  if (Buffer.byteLength(dataDir) > agentLimits.dataDirBytesMax) invalid('--data-dir: path too long')
  const clientAddr = hostPort(flags.clientAddr ?? agentDefaults.clientAddr, '--client-addr')
  const logLevel = flags.logLevel ?? agentDefaults.logLevel
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    invalid(`--log-level: "${logLevel}" (want one of ${logLevels.join(', ')})`)
  }
  const dnsAddrText = flags.dnsAddr ?? agentDefaults.dnsAddr
  const dnsAddr = dnsAddrText === 'off' ? undefined : listenAddr(dnsAddrText, '--dns-addr')
  const dnsDomain = (flags.dnsDomain ?? agentDefaults.dnsDomain).replace(/\.$/, '').toLowerCase()
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(dnsDomain)) {
    invalid(`--dns-domain: "${flags.dnsDomain}" is not a domain name`)
  }
  const datacenter = flags.datacenter ?? agentDefaults.datacenter
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(datacenter))
    invalid(`--datacenter: "${datacenter}" (letters, digits, _ -)`)
  const advertiseAddr = flags.advertiseAddr ?? defaultAdvertise(clientAddr.host)
  if (isIP(advertiseAddr) === 0) invalid(`--advertise-addr: "${advertiseAddr}" is not an IP address`)
  const machineTtlMs = integer(
    flags.machineTtl,
    '--machine-ttl',
    agentDefaults.machineTtlMs,
    agentLimits.machineTtlMsMin,
    agentLimits.machineTtlMsMax,
  )
  return {
    name,
    dataDir,
    clientAddr,
    logLevel: logLevel as LogLevel,
    dnsAddr,
    dnsDomain,
    dnsOnlyPassing: flags.dnsOnlyPassing === true,
    datacenter,
    advertiseAddr,
    metadata: parseMetadata(flags.metadata ?? ''),
    machineTtlMs,
    enableScriptChecks: flags.enableScriptChecks === true,
  }
}

/** `host:port` (IPv6 as `[::1]:4001`); port 0 is refused (the address must be known to others). */
/** Raft ticks per election timeout (a tick is one heartbeat interval). */
export function electionTicksOf(config: ServerAgentConfig): number {
  return Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs)
}

export function hostPort(text: string, flag: string): HostPort {
  const address = /^[a-z]+:\/\//.test(text) ? undefined : peerAddress(text)
  if (address === undefined) invalid(`${flag}: "${text}" is not host:port`)
  return address
}

/** A listen address whose port may be 0 (a free one, for tests). */
function listenAddr(text: string, flag: string): HostPort {
  const match = /^(\[[^\]]+\]|[^:/[\]]+):(\d{1,5})$/.exec(text)
  const port = Number(match?.[2])
  if (match === null || port > 65535) invalid(`${flag}: "${text}" is not host:port (or off)`)
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
}

function defaultAdvertise(host: string): string {
  if (host === '0.0.0.0' || host === '' || isIP(host) === 0) return '127.0.0.1'
  if (host === '::') return '::1'
  return host
}

/** `k=v,k2=v2` into a map; keys and values within the named limits, no duplicate keys. */
export function parseMetadata(text: string): Record<string, string> {
  const meta: Record<string, string> = {}
  if (text.trim() === '') return meta
  const pairs = text.split(',')
  if (pairs.length > agentLimits.metadataPairsMax)
    invalid(`--metadata: more than ${agentLimits.metadataPairsMax} pairs`)
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    const key = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    if (eq <= 0 || !/^[A-Za-z0-9_.-]+$/.test(key)) invalid(`--metadata: "${pair}" is not key=value`)
    if (Buffer.byteLength(key) > agentLimits.metadataKeyBytesMax) invalid(`--metadata: key "${key}" too long`)
    if (Buffer.byteLength(value) > agentLimits.metadataValueBytesMax)
      invalid(`--metadata: value of "${key}" too long`)
    if (Object.hasOwn(meta, key)) invalid(`--metadata: "${key}" given twice`)
    meta[key] = value
  }
  return meta
}

/** A wildcard bind address cannot be dialled; advertise loopback instead. */
function advertisedHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') invalid(`${flag} is required`)
  return value
}

function integer(text: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text)) invalid(`${flag}: "${text}" is not a whole number`)
  const value = Number(text)
  if (value < min || value > max) invalid(`${flag}: ${value} is out of range ${min}..${max}`)
  return value
}

function invalid(message: string): never {
  throw new CairnError('CONFIG_INVALID', message)
}
