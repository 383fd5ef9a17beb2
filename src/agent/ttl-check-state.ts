/**
 * TTL check statuses on disk, so a restarted agent does not turn every TTL-checked service critical
 * until its application's next update (Consul restores a TTL check's last status the same way).
 *
 * One small file per TTL check: `<dataDir>/check-state/<sha256 of the check id>.json` holding
 * {version, checkId, status, output, expiresAtMs}, where expiresAtMs is the wall-clock time
 * (Date.now() scale) the TTL would have run out after the update that wrote it. A file per check
 * keeps each update's write as small as the check, however many checks the agent has.
 *
 * Invariants:
 *   - A file is written whole or not at all (temp file + fsync + rename + directory fsync), mode
 *     0600 like the registrations file.
 *   - A state is only a hint: a file that is missing, too large, not JSON, of another version or
 *     for another check id reads as "no state" (the check then starts from its definition's
 *     Status), never as an error that would stop the agent.
 *   - Reading never restores a state whose expiresAtMs has passed.
 *   - At start the directory holds files only for the TTL checks the agent has (pruneTtlCheckStates).
 */
import { createHash } from 'node:crypto'
import { readdir, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { CheckStatus } from '../catalog/records.ts'
import { ensureDirectory, writeFileAtomic } from '../raft/storage/directory.ts'

export const ttlStateDirName = 'check-state'
/** The file format's version. */
export const ttlStateVersion = 1
/** The largest state file read: a check's output is capped far below this (outputBytesMax). */
export const ttlStateBytesMax = 1024 * 1024

export interface TtlCheckState {
  readonly checkId: string
  readonly status: CheckStatus
  readonly output: string
  /** Wall-clock ms when the TTL runs out unless updated again. */
  readonly expiresAtMs: number
}

const statuses: ReadonlySet<string> = new Set(['passing', 'warning', 'critical'])

export function ttlStatePath(dataDir: string, checkId: string): string {
  const name = createHash('sha256').update(checkId).digest('hex')
  return path.join(dataDir, ttlStateDirName, `${name}.json`)
}

export async function writeTtlCheckState(dataDir: string, state: TtlCheckState): Promise<void> {
  await ensureDirectory(path.join(dataDir, ttlStateDirName))
  const text = JSON.stringify({ version: ttlStateVersion, ...state })
  await writeFileAtomic(ttlStatePath(dataDir, state.checkId), text, 0o600)
}

/** The check's saved state if it is there, valid and not expired at `nowMs`; else undefined. */
export async function readTtlCheckState(
  dataDir: string,
  checkId: string,
  nowMs: number,
): Promise<TtlCheckState | undefined> {
  const file = ttlStatePath(dataDir, checkId)
  let parsed: unknown
  try {
    if ((await stat(file)).size > ttlStateBytesMax) return undefined
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const s = parsed as Record<string, unknown>
  if (
    s.version !== ttlStateVersion ||
    s.checkId !== checkId ||
    typeof s.status !== 'string' ||
    !statuses.has(s.status) ||
    typeof s.output !== 'string' ||
    typeof s.expiresAtMs !== 'number' ||
    !Number.isFinite(s.expiresAtMs)
  ) {
    return undefined
  }
  if (s.expiresAtMs <= nowMs) return undefined
  return { checkId, status: s.status as CheckStatus, output: s.output, expiresAtMs: s.expiresAtMs }
}

/** Forgets a check's state (it was deregistered or redefined); a missing file is fine. */
export async function removeTtlCheckState(dataDir: string, checkId: string): Promise<void> {
  await rm(ttlStatePath(dataDir, checkId), { force: true })
}

/**
 * Removes every saved state but those of `keepIds`: a file whose check is gone (removed after its
 * deregistration was saved, so a crash in between leaves one behind) must not be read for a later
 * check with the same id. Only this module's file names are touched.
 */
export async function pruneTtlCheckStates(dataDir: string, keepIds: Iterable<string>): Promise<number> {
  const dir = path.join(dataDir, ttlStateDirName)
  const keep = new Set([...keepIds].map((id) => path.basename(ttlStatePath(dataDir, id))))
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return 0 // no directory: nothing saved yet
  }
  let removed = 0
  for (const name of names) {
    if (keep.has(name) || !stateFileName.test(name)) continue
    await rm(path.join(dir, name), { force: true })
    removed++
  }
  return removed
}

/**
 * A state file's name, and on purpose not anchored at the end: the temp file an interrupted
 * writeFileAtomic left (`<name>.json` plus its temp suffix) matches too and is removed.
 */
const stateFileName = /^[0-9a-f]{64}\.json/
