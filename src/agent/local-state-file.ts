/**
 * The agent's own registrations on disk: `<dataDir>/local-services.json`, so a restarted agent
 * picks up its services, checks and maintenance modes where it left them (Consul persists agent
 * registrations too, one file per service and check).
 *
 * One JSON file holds everything: {version, sha256, state}, where sha256 is the hex digest of
 * JSON.stringify(state). It is written as temp file + fsync + rename + directory fsync, so a crash
 * leaves the old file or the new one, never a mix; the checksum catches a file damaged or edited
 * by hand, which is refused rather than half-read (the agent would otherwise deregister whatever
 * it failed to read). The file is mode 0600: check definitions may carry credentials in headers.
 *
 * The state is kept as registration bodies, not as parsed records: the agent parses them again at
 * start with the same validation as a request, so a file from an older version, or a script check
 * on an agent now started without script checks, is judged by today's rules.
 */
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { CairnError } from '../errors.ts'
import { writeFileAtomic } from '../raft/storage/directory.ts'

export const localStateFileName = 'local-services.json'
/** The file's format version. */
export const localStateVersion = 1
/** The largest file written or read: every service and check body at their limits fits well below. */
export const localStateBytesMax = 64 * 1024 * 1024

export interface LocalMaintenance {
  /** '' for node maintenance. */
  readonly serviceId: string
  /** The reason given ('' when none: the default note is shown). */
  readonly reason: string
}

export interface LocalState {
  /** Service registration bodies without checks (serviceBody). */
  readonly services: readonly Record<string, unknown>[]
  /** Check definition bodies with ID, Name and ServiceID filled in. */
  readonly checks: readonly Record<string, unknown>[]
  readonly maintenance: readonly LocalMaintenance[]
}

export function localStatePath(dataDir: string): string {
  return path.join(dataDir, localStateFileName)
}

function digest(stateJson: string): string {
  return createHash('sha256').update(stateJson).digest('hex')
}

/** The file's text for `state`; the caller compares its size with localStateBytesMax before writing. */
export function encodeLocalState(state: LocalState): string {
  const stateJson = JSON.stringify(state)
  return `{"version":${localStateVersion},"sha256":"${digest(stateJson)}","state":${stateJson}}\n`
}

/** Replaces the file with `text` atomically and durably. */
export async function writeLocalState(dataDir: string, text: string): Promise<void> {
  const file = localStatePath(dataDir)
  await writeFileAtomic(file, text, 0o600)
}

function damaged(file: string, why: string): CairnError {
  return new CairnError(
    'CONFIG_INVALID',
    `${file}: ${why}; move the file aside to start the agent without its local registrations`,
  )
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isObjectList(value: unknown): value is Record<string, unknown>[] {
  return Array.isArray(value) && value.every(isObject)
}

function isMaintenanceList(value: unknown): value is LocalMaintenance[] {
  return (
    Array.isArray(value) &&
    value.every((m) => isObject(m) && typeof m.serviceId === 'string' && typeof m.reason === 'string')
  )
}

/** The stored state, or undefined when there is no file yet. Throws CONFIG_INVALID for a bad file. */
export async function readLocalState(dataDir: string): Promise<LocalState | undefined> {
  const file = localStatePath(dataDir)
  let size: number
  try {
    size = (await stat(file)).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  if (size > localStateBytesMax) throw damaged(file, `larger than ${localStateBytesMax} bytes`)
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (error) {
    if (error instanceof SyntaxError) throw damaged(file, 'not JSON')
    throw error
  }
  if (!isObject(parsed)) throw damaged(file, 'not a JSON object')
  if (parsed.version !== localStateVersion) {
    throw damaged(file, `format version ${JSON.stringify(parsed.version)}, expected ${localStateVersion}`)
  }
  const state = parsed.state
  if (!isObject(state) || parsed.sha256 !== digest(JSON.stringify(state))) {
    throw damaged(file, 'checksum mismatch (the file was damaged or edited)')
  }
  const { services, checks, maintenance } = state
  if (!isObjectList(services) || !isObjectList(checks) || !isMaintenanceList(maintenance)) {
    throw damaged(file, 'services, checks or maintenance is malformed')
  }
  return { services, checks, maintenance }
}
